"""Static checks of the production deployment: docker-compose.yml and the Dockerfile.

No Docker engine is needed: the files are parsed and checked against the SPEC's
contract (search attributes) and the settings the product actually reads.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydantic import AliasChoices, AliasPath  # noqa: E402

from models.settings import Settings  # noqa: E402

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# SPEC §2: the search attributes and their types.
SPEC_SEARCH_ATTRIBUTES = {
    "CcsStage": "Keyword",
    "CcsStageSince": "Datetime",
    "CcsCounty": "Keyword",
    "CcsCaseManager": "Keyword",
    "CcsNextDeadline": "Datetime",
}

EXPECTED_SERVICES = {
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-search-attributes",
    "temporal-ui",
    "ccs-migrate",
    "ccs-worker",
    "ccs-codec",
    "ccs-api",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, object]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        out: dict[str, object] = {}
        for item in env:
            key, sep, value = str(item).partition("=")
            out[key] = value if sep else None
        return out
    return dict(env)


def _script(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if value is None:
            continue
        parts.extend(value if isinstance(value, list) else [value])
    return "\n".join(str(p) for p in parts)


def _ports(service: dict) -> list[tuple[int, int]]:
    """(published, target) pairs from short or long port syntax."""
    out = []
    for spec in service.get("ports") or []:
        if isinstance(spec, dict):
            out.append((int(spec["published"]), int(spec["target"])))
            continue
        spec = str(spec).split("/")[0]
        pieces = spec.rsplit(":", 2)
        if len(pieces) == 1:
            out.append((int(pieces[0]), int(pieces[0])))
        else:
            out.append((int(pieces[-2]), int(pieces[-1])))
    return out


def _settings_aliases() -> set[str]:
    names: set[str] = set()

    def add(alias) -> None:
        if alias is None:
            return
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            for choice in alias.choices:
                add(choice)
        elif isinstance(alias, AliasPath):
            first = alias.path[0] if alias.path else None
            if isinstance(first, str):
                names.add(first)

    from starters.api.settings import ApiSettings

    for field in [*Settings.model_fields.values(), *ApiSettings.model_fields.values()]:
        add(field.validation_alias)
        add(field.alias)
    # pydantic-settings matches environment names case-insensitively by default.
    return {n.upper() for n in names}


def _is_ccs_service(name: str) -> bool:
    return name.startswith("ccs-")


def test_expected_services_exist(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_no_auto_setup_image(services):
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        assert "auto-setup" not in image, f"{name} uses the deprecated auto-setup image"


def test_images_are_pinned(services):
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    assert services["postgresql"]["image"].startswith("postgres:16")
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")


def test_admin_tools_match_server_version(services):
    server_version = services["temporal"]["image"].split(":", 1)[1]
    for name in ("temporal-schema", "temporal-search-attributes"):
        image = services[name]["image"]
        assert image.startswith("temporalio/admin-tools:"), name
        assert image.split(":", 1)[1].startswith(server_version), (
            f"{name} ({image}) must match temporalio/server:{server_version}"
        )


def test_postgresql_has_volume_and_healthcheck(services):
    pg = services["postgresql"]
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in pg.get("volumes", []))
    test = pg["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))


def test_ccs_database_is_created(services):
    scripts = "\n".join(_script(s) for s in services.values())
    assert "CREATE DATABASE ccs" in scripts


def test_schema_job_uses_temporal_sql_tool(services):
    job = services["temporal-schema"]
    assert job["image"].startswith("temporalio/admin-tools:")
    assert job["depends_on"]["postgresql"]["condition"] == "service_healthy"
    script = _script(job)
    assert "temporal-sql-tool" in script
    assert "--plugin postgres12" in script
    for db, schema_dir in (
        ("temporal", "/etc/temporal/schema/postgresql/v12/temporal/versioned"),
        ("temporal_visibility", "/etc/temporal/schema/postgresql/v12/visibility/versioned"),
    ):
        assert re.search(rf"--db {db} create\b", script), db
        assert re.search(rf"--db {db} setup-schema -v 0\.0\b", script), db
        assert f"--db {db} update-schema -d {schema_dir}" in script, db


def test_temporal_waits_for_schema_job(services):
    temporal = services["temporal"]
    assert temporal["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    env = _env(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    for key in ("DB_PORT", "POSTGRES_USER", "POSTGRES_PWD"):
        assert env.get(key), key


def test_dynamic_config_is_mounted_where_the_server_reads_it(compose, services):
    temporal = services["temporal"]
    path = _env(temporal).get("DYNAMIC_CONFIG_FILE_PATH")
    if path is None:
        return
    full = path if str(path).startswith("/") else f"/etc/temporal/{path}"
    targets = {c["target"]: c["source"] for c in temporal.get("configs", []) if isinstance(c, dict)}
    volume_targets = {str(v).split(":")[1] for v in temporal.get("volumes", []) if ":" in str(v)}
    assert full in targets or any(full.startswith(t.rstrip("/") + "/") for t in volume_targets)
    if full in targets:
        content = compose["configs"][targets[full]]["content"]
        assert isinstance(yaml.safe_load(content), dict)


def test_search_attributes_registered_with_spec_types(services):
    job = services["temporal-search-attributes"]
    assert job["image"].startswith("temporalio/admin-tools:")
    script = _script(job)
    registered = {}
    for line in script.splitlines():
        if not re.search(r"--name\s", line):
            continue
        m = re.search(r"--name\s+(\S+)\s+--type\s+(\S+)", line)
        assert m, line
        assert "--namespace default" in line, line
        registered[m.group(1)] = m.group(2)
    assert registered == SPEC_SEARCH_ATTRIBUTES
    assert "search-attribute create" in script
    assert "already exists" in script  # re-runs tolerate existing attributes


def test_spec_search_attributes_match_code():
    pytest.importorskip("temporalio")
    from temporalio.api.enums.v1 import IndexedValueType

    from models import search

    in_code = {
        key.name: IndexedValueType.Name(key.indexed_value_type)
        .removeprefix("INDEXED_VALUE_TYPE_")
        .capitalize()
        for key in search.ALL
    }
    assert in_code == SPEC_SEARCH_ATTRIBUTES


def test_ui_codec_endpoint_is_the_codec_servers_published_port(services):
    ui_env = _env(services["temporal-ui"])
    codec = services["ccs-codec"]
    codec_env = _env(codec)

    endpoint = urlparse(str(ui_env["TEMPORAL_CODEC_ENDPOINT"]))
    # The browser fetches it, so it is a host address, not the compose service name.
    assert endpoint.hostname in {"localhost", "127.0.0.1"}
    published = dict(_ports(codec))
    assert endpoint.port in published, "codec endpoint port is not published by ccs-codec"
    assert published[endpoint.port] == int(codec_env["CCS_CODEC_PORT"])
    assert codec_env["CCS_CODEC_HOST"] == "0.0.0.0"

    ui_published = [p for p, target in _ports(services["temporal-ui"]) if target == 8080]
    assert ui_published, "temporal-ui must publish 8080"
    assert codec_env["CCS_CODEC_CORS_ORIGIN"] == f"http://localhost:{ui_published[0]}"
    assert ui_env["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_product_services_build_from_repo_dockerfile(services):
    for name in ("ccs-migrate", "ccs-worker", "ccs-codec"):
        build = services[name]["build"]
        if isinstance(build, str):
            context, dockerfile = build, "Dockerfile"
        else:
            context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
        assert (COMPOSE_FILE.parent / context).resolve() == ROOT, name
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, name
    assert services["ccs-worker"]["command"] in (["ccs", "worker"], "ccs worker")
    assert services["ccs-codec"]["command"] in (["ccs", "codec-server"], "ccs codec-server")
    assert services["ccs-migrate"]["command"] in (["ccs", "migrate"], "ccs migrate")
    assert services["ccs-worker"]["deploy"]["replicas"] == 2


def test_ccs_environment_names_are_settings_aliases(services):
    known = _settings_aliases()
    checked = 0
    for name, svc in services.items():
        if not _is_ccs_service(name):
            continue
        for key in _env(svc):
            checked += 1
            assert key.upper() in known, f"{name}: {key} is not read by models.settings.Settings"
    assert checked


def test_ccs_environment_values(services, compose):
    shared = compose["x-ccs-env"]
    assert shared["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert shared["TEMPORAL_NAMESPACE"] == "default"
    assert shared["CCS_TASK_QUEUE"] == "ccs-cases"
    assert shared["CCS_HOME"] == "/data"
    assert str(shared["DATABASE_URL"]).startswith("postgresql+asyncpg://")
    assert urlparse(str(shared["DATABASE_URL"])).path == "/ccs"
    # The operator must supply the key: no default may be baked in.
    assert re.fullmatch(r"\$\{CCS_ENCRYPTION_KEYS:\?[^}]*\}", shared["CCS_ENCRYPTION_KEYS"])
    for name in ("ccs-migrate", "ccs-worker", "ccs-codec"):
        env = _env(services[name])
        for key, value in shared.items():
            assert env.get(key) == value, f"{name} does not use the shared x-ccs-env {key}"


def test_shell_dollars_are_escaped_for_compose():
    """Compose interpolates every `$`; shell variables in scripts must be written `$$`."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    body = body.replace("$$", "")
    bad = re.findall(r"\$(?!\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\})", body)
    assert not bad, "unescaped $ in docker-compose.yml (compose would interpolate it)"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_ccs_worker_as_non_root():
    assert DOCKERFILE.is_file()
    instructions = _dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms and froms[0].startswith("python:3.11-slim")

    cmds = [rest for word, rest in instructions if word == "CMD"]
    assert cmds, "Dockerfile has no CMD"
    cmd = cmds[-1]
    argv = json.loads(cmd) if cmd.startswith("[") else shlex.split(cmd)
    assert argv == ["ccs", "worker"]

    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, "image must run as a non-root user"
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert re.search(r"pip install[^&]*-e \.", runs), "project must be installed editable"


def test_dockerignore_keeps_secrets_and_state_out():
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".git", ".ccs", ".env", "__pycache__"):
        assert entry in ignore, entry
    assert "reference" not in ignore
