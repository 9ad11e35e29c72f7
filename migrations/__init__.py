"""Alembic migrations: one per schema change. Applied by `ccs migrate` and `ccs up`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; run it off the event loop)."""
    from activities.db import async_url

    command.upgrade(alembic_config(async_url(url)), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
