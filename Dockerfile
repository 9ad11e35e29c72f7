# CCS case orchestrator image: one image for every `ccs` verb.
#   default:          ccs worker        (Temporal worker)
#   docker-compose:   ccs migrate       (Alembic migrations, one-shot)
#                     ccs codec-server  (payload codec server for the Web UI)
#
# The project is installed editable from /app because it reads reference/
# (JSON data) relative to the source tree at run time.

FROM python:3.11-slim

# Bytecode stays on and is compiled at build: the workflow sandbox re-imports the
# workflow modules for every case it loads, and compiling them from source each time
# cost about 20% of a worker's throughput (bench/RESULTS.md).
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Unprivileged runtime user; the source tree stays root-owned and read-only to it.
RUN groupadd --system --gid 10001 ccs \
 && useradd --system --uid 10001 --gid ccs --no-create-home \
        --home-dir /data --shell /usr/sbin/nologin ccs

# Letters: WeasyPrint renders with Pango; the tagline block needs fonts for its scripts, and
# fontconfig's fc-match to find the faces it cuts down to the taglines' characters.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
        fontconfig fonts-dejavu-core fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code edits keep this layer cached.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The source tree (see .dockerignore), installed in place.
COPY . .
RUN pip install --no-deps -e . \
 && python -m compileall -q /app \
 && mkdir -p /data \
 && chown ccs:ccs /data

# CCS_HOME: mailbox and other local state; mount a named volume at /data.
ENV CCS_HOME=/data

USER ccs

CMD ["ccs", "worker"]
