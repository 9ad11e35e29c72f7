"""Migrations against a fresh database: upgrade to head, down to base and up again, and
the ORM tables (activities/tables.py) agree with what the migrations build."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from activities.db import async_url
from activities.tables import Base
from migrations import alembic_config, upgrade

TABLES = {"cases", "audit_log", "tasks", "outbox", "payments", "identity_keys", "case_records", "record_snapshots",
          "legal_holds", "users", "sign_in_failures", "access_log", "idempotency_keys", "letters",
          "policy_versions", "policy_publications"}


@pytest.fixture
async def fresh_db(database_url):
    """A new, empty database on the test server, dropped afterwards."""
    name = f"ccs_migrate_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(async_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(async_url(database_url)).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def in_db(url: str, fn):
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def tables(conn) -> set[str]:
    return set(inspect(conn).get_table_names())


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


async def test_upgrade_downgrade_upgrade(fresh_db):
    assert await in_db(fresh_db, tables) == set()
    await asyncio.to_thread(upgrade, fresh_db)
    assert await in_db(fresh_db, tables) == TABLES | {"alembic_version"}
    await asyncio.to_thread(upgrade, fresh_db)  # already at head: nothing to do, no error

    await asyncio.to_thread(downgrade, fresh_db)
    assert await in_db(fresh_db, tables) == {"alembic_version"}
    functions = await in_db(fresh_db, lambda c: c.execute(text(
        "SELECT proname FROM pg_proc WHERE proname = 'audit_log_append_only'")).all())
    assert functions == []

    await asyncio.to_thread(upgrade, fresh_db)
    assert await in_db(fresh_db, tables) == TABLES | {"alembic_version"}
    version = await in_db(fresh_db, lambda c: c.execute(text("SELECT version_num FROM alembic_version")).scalar())
    assert version == ScriptDirectory.from_config(alembic_config(fresh_db)).get_current_head()


async def test_audit_log_stays_append_only_after_reupgrade(fresh_db):
    await asyncio.to_thread(upgrade, fresh_db)
    await asyncio.to_thread(downgrade, fresh_db)
    await asyncio.to_thread(upgrade, fresh_db)
    engine = create_async_engine(fresh_db)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO audit_log (case_id, source, seq, at, actor_id, actor_role, action, stage, county, detail)"
                " VALUES ('c', 'c', 1, now(), 'a', 'system', 'refer', 'intake', 'Kern', '{}')"))
        for statement in ("UPDATE audit_log SET actor_id = 'b'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM audit_log")) == 1
    finally:
        await engine.dispose()


async def test_orm_metadata_matches_migrated_schema(fresh_db):
    await asyncio.to_thread(upgrade, fresh_db)

    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, Base.metadata)

    assert await in_db(fresh_db, diff) == []
