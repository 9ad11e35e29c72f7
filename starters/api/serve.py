"""Running the API: `ccs serve` on its own, or inside `ccs up` next to the worker."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

import uvicorn

from models.settings import Settings
from starters.api.app import Services, connect_services, create_app
from starters.api.settings import ApiSettings
from starters.client import CcsError

FIRST_ADMIN = "admin"


class _Quiet(uvicorn.Server):
    """A server that leaves signal handling to `ccs up`."""

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass

    @contextmanager
    def capture_signals(self):  # newer uvicorn
        yield


def _config(app, api: ApiSettings) -> uvicorn.Config:
    return uvicorn.Config(app, host=api.host, port=api.port, log_level="warning", lifespan="on",
                          proxy_headers=False, server_header=False)


async def serve(settings: Settings, api: ApiSettings, echo=print) -> None:
    """`ccs serve`: the API against the configured Temporal and PostgreSQL."""
    echo(f"HTTP API on http://{api.host}:{api.port}/api/v1 (OpenAPI at /openapi.json); Ctrl-C stops it")
    await uvicorn.Server(_config(create_app(settings, api), api)).serve()


async def first_admin(services: Services, echo=print) -> None:
    """On an empty users table: an administrator whose one-time password is printed once."""
    if await services.users.count() > 0:
        return
    try:
        password = await services.users.add(FIRST_ADMIN, "admin", None)
    except CcsError:  # another process made it first
        return
    echo(f"  first administrator   user {FIRST_ADMIN}, one-time password {password}")
    echo("    (shown only now: sign in with `ccs login admin`, add people with `ccs user add`)")


async def start_in_stack(settings: Settings, api: ApiSettings, echo=print) -> tuple[_Quiet, asyncio.Task]:
    """Start the API inside `ccs up`; stop it with ``server.should_exit = True`` then await the task."""
    services = await connect_services(settings, api)
    await first_admin(services, echo)
    server = _Quiet(_config(create_app(settings, api, services=services), api))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await services.engine.dispose()
            task.result()
            raise CcsError(f"the HTTP API did not start on {api.host}:{api.port}")
        await asyncio.sleep(0.05)
    task.add_done_callback(lambda _: asyncio.ensure_future(services.engine.dispose()))
    return server, task
