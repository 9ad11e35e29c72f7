"""`ccs up` (the whole stack on one machine: database, Temporal, codec server, worker, HTTP
API and web app) and `ccs codec-server`. The worker side is workers/stack.py."""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import AsyncExitStack

from activities.db import make_engine, reach_embedded, session_factory, stop_embedded
from activities.policy import publish_policy
from activities.rendering import PROCESS as letter_rendering
from models.converter import EncryptionCodec, load_keyring
from models.errors import CcsError
from models.policy import load_policy
from models.settings import Settings
from starters.api.codec_auth import phi_readers_only
from workers.codec_server import start_codec_server
from workers.schedules import ensure_purge_schedule, set_namespace_retention
from workers.stack import (
    cache_bytecode,
    database_url,
    dev_server_args,
    host_port,
    migrate,
    port_free,
    stop_signals,
    temporal_binary,
    terminate,
    wait_for_temporal,
)
from workers.worker import build_activities, build_worker, ensure_search_attributes


async def up(settings: Settings, echo=print, demo: bool = False) -> None:
    from starters.api.serve import start_in_stack
    from starters.api.settings import ApiSettings

    cache_bytecode()
    api = ApiSettings()
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    host, port = host_port(settings.temporal_address)
    wanted = (("Temporal", host, port), ("Temporal Web UI", host, settings.temporal_ui_port),
              ("codec server", settings.codec_host, settings.codec_port), ("HTTP API", api.host, api.port))
    by_port: dict[int, str] = {}
    for what, _, p in wanted:
        if p in by_port:
            raise CcsError(f"the {by_port[p]} and the {what} are both set to port {p}: give each its own")
        by_port[p] = what
    for what, h, p in wanted:
        if not port_free(h if h != "localhost" else "127.0.0.1", p):
            raise CcsError(f"port {p} ({what}) is already taken: is `ccs up` already running? "
                           "Stop it, or set another port in the environment")
    binary = temporal_binary()  # fail early, before starting anything
    stop = stop_signals()
    keyring = load_keyring(settings)
    async with AsyncExitStack() as stack:
        url = await database_url(settings, stack)
        await migrate(url)
        # The codec server binds first: the dev server takes random ports of its own.
        codec_db = make_engine(url, pool_size=2)
        stack.push_async_callback(codec_db.dispose)
        runner = await _codec_server(settings, keyring, f"http://localhost:{settings.temporal_ui_port}",
                                     session_factory(codec_db))
        stack.push_async_callback(runner.cleanup)
        log_file = open(settings.home_dir / "temporal.log", "ab")
        stack.callback(log_file.close)
        proc = subprocess.Popen(dev_server_args(settings, host, port), stdout=log_file, stderr=log_file,
                                start_new_session=True)
        stack.callback(terminate, proc)
        client = await wait_for_temporal(settings, proc, keyring)
        await ensure_search_attributes(client, settings.temporal_namespace)
        await set_namespace_retention(client, settings.temporal_retention)
        policy = load_policy(settings.policy_file)
        await ensure_purge_schedule(client, settings.task_queue, policy.timezone)
        activities, engine = build_activities(settings, url)
        stack.push_async_callback(engine.dispose)
        stack.callback(letter_rendering.shutdown)  # the worker's letter rendering process
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


async def _codec_server(settings: Settings, keyring, cors_origin: str, sessions):
    try:
        return await start_codec_server(EncryptionCodec(keyring.keys, keyring.active), settings.codec_host,
                                        settings.codec_port, cors_origin, phi_readers_only(settings, sessions))
    except OSError as e:
        raise CcsError(f"the codec server cannot listen on {settings.codec_host}:{settings.codec_port}: "
                       f"{e.strerror}") from None


async def _stop_api(server, task) -> None:
    server.should_exit = True
    await task


async def codec_server(settings: Settings, echo=print) -> None:
    url = settings.database_url or reach_embedded(settings.home_dir / "pg")
    if not url:
        raise CcsError("`ccs codec-server` needs DATABASE_URL (or `ccs up` running): it checks that a "
                       "signed-in person is still enabled")
    stop = stop_signals()
    engine = make_engine(url, pool_size=2)
    try:
        runner = await _codec_server(settings, load_keyring(settings), settings.codec_cors_origin,
                                     session_factory(engine))
        echo(f"codec server on http://{settings.codec_host}:{settings.codec_port}")
        await stop.wait()
        await runner.cleanup()
    finally:
        await engine.dispose()
