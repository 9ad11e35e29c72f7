"""The one rig of real processes, for the tests that need them (tests/test_faults.py,
tests/histories/record.py) and for the benchmarks (bench/common.py): an embedded PostgreSQL,
the Temporal dev server as `ccs up` starts it, and `ccs worker` as a subprocess configured
through its environment as an operator would.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client

from activities.db import start_embedded
from models.converter import Keyring
from models.settings import Settings
from tests.helpers import free_port
from workers.stack import dev_server_args

BIN = Path(sys.executable).parent
CCS = str(BIN / "ccs")


def start_postgres(pgdata: Path) -> str:
    """An embedded PostgreSQL in ``pgdata``; its URL. (Started as its own system user when we
    are root: it must reach the directory.)"""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.parent.chmod(0o755)
    return start_embedded(pgdata)


def stack_settings(home: Path, address: str, database_url: str | None = None, task_queue: str = "bench",
                   max_cached: int = 1000) -> Settings:
    """Settings of a throw-away stack in ``home``: nothing read from the environment."""
    values = {
        "CCS_HOME": str(home), "TEMPORAL_ADDRESS": address, "CCS_TASK_QUEUE": task_queue,
        "CCS_MAX_CACHED_WORKFLOWS": max_cached, "CCS_NOTIFY_CHANNEL": "mailbox",
        "CCS_TEMPORAL_UI_PORT": free_port(), "CCS_CODEC_PORT": free_port(),
    }
    if database_url:
        values["DATABASE_URL"] = database_url
    return Settings(_env_file=None, **values)


def keyring_env(keyring: Keyring) -> dict[str, str]:
    """The keyring as `ccs worker` reads it (the first key encrypts)."""
    keys = ",".join(f"{kid}:{base64.b64encode(k).decode()}" for kid, k in keyring.keys.items())
    assert keys.startswith(keyring.active + ":")
    return {"CCS_ENCRYPTION_KEYS": keys, "CCS_CASE_ID_SECRET": base64.b64encode(keyring.case_id_secret).decode()}


def worker_env(home: Path, database_url: str, address: str, queue: str, keyring: Keyring, **extra: str) -> dict:
    """`ccs worker`'s environment: this process's, without any CCS_/TEMPORAL_/DATABASE_URL
    setting of its own, then the stack's and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCS_", "TEMPORAL_")) and k != "DATABASE_URL"}
    env.update(keyring_env(keyring))
    env.update(TEMPORAL_ADDRESS=address, DATABASE_URL=database_url, CCS_TASK_QUEUE=queue, CCS_HOME=str(home),
               CCS_ENV_FILE=str(home / "no.env"), **extra)
    return env


class DevServer:
    """`temporal server start-dev` with the flags `ccs up` uses (workers/stack.py): persisted to
    SQLite in ``home``, the product's search attributes; restartable on the same file and port."""

    def __init__(self, home: Path, headless: bool = True) -> None:
        self.home, self.headless = home, headless
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.settings = stack_settings(home, self.address)
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        self.home.mkdir(parents=True, exist_ok=True)
        args = dev_server_args(self.settings, "127.0.0.1", self.port) + (["--headless"] if self.headless else [])
        with open(self.home / f"temporal-{self.runs}.log", "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    async def connect(self, data_converter, timeout: float = 60) -> Client:
        """A client once the server accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dev server exited ({self.proc.returncode}): {self.logs()}")
            try:
                return await Client.connect(self.address, data_converter=data_converter)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def stop_async(self, sig: int = signal.SIGTERM) -> None:
        await asyncio.to_thread(self.stop, sig)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.home.glob("temporal-*.log")))

    def db_size_mb(self) -> float:
        return sum(p.stat().st_size for p in self.home.glob("temporal.db*")) / 1024 / 1024


class WorkerProcess:
    """`ccs worker` (or ``argv``) as a subprocess with ``env``: started, stopped, restarted;
    each start logs to its own ``worker-N.log`` in ``home``."""

    def __init__(self, env: dict, home: Path, argv: list[str] | None = None) -> None:
        self.env, self.home = env, home
        self.argv = argv or [CCS, "worker"]
        self.proc: subprocess.Popen | None = None
        self.started = 0

    def start(self) -> None:
        self.started += 1
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / f"worker-{self.started}.log", "wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.home, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, timeout: float = 240) -> None:
        """Until the worker says it polls (``worker on ...``)."""
        deadline = time.monotonic() + timeout
        log = self.home / f"worker-{self.started}.log"
        while "worker on" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`ccs worker` did not start: {self.logs()}")
            await asyncio.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.home.glob("worker-*.log")))

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (the worker drains), then SIGKILL after ``timeout`` seconds."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def stop_async(self, timeout: float = 20) -> None:
        await asyncio.to_thread(self.stop, timeout)
