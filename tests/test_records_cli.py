"""The record verbs as a supervisor types them: `ccs hold`, `ccs release-hold`, `ccs keys`."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

from sqlalchemy import select

from activities.db import make_engine, session_factory
from activities.tables import AuditRow, CaseRecordRow
from migrations import upgrade_async
from starters.cli import main
from tests.conftest import KEYRING


async def _db(url: str, fn):
    engine = make_engine(url, pool_size=1)
    try:
        async with session_factory(engine).begin() as s:
            return await fn(s)
    finally:
        await engine.dispose()


def test_hold_release_and_keys_verbs(database_url, tmp_path, monkeypatch, capsys):
    keys = ",".join(f"{kid}:{base64.b64encode(k).decode()}" for kid, k in KEYRING.keys.items())
    for name, value in {"DATABASE_URL": database_url, "CCS_HOME": str(tmp_path), "CCS_ENCRYPTION_KEYS": keys,
                        "CCS_CASE_ID_SECRET": base64.b64encode(KEYRING.case_id_secret).decode()}.items():
        monkeypatch.setenv(name, value)
    asyncio.run(upgrade_async(database_url))  # at head already when other tests ran first
    cid = f"case-{uuid.uuid4().hex[:20]}"

    async def closed_case(s):
        s.add(CaseRecordRow(case_id=cid, closed_at=None, events=0))
    asyncio.run(_db(database_url, closed_case))

    assert main(["hold", cid, "--matter", "LIT-2026-030", "--actor", "sup.ortiz", "--role", "supervisor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["placed_by"] == "sup.ortiz"
    assert main(["hold", cid, "--matter", "LIT-2026-031", "--actor", "cm.rivera", "--role", "case_manager"]) == 2
    assert "only a supervisor" in capsys.readouterr().err
    assert main(["release-hold", cid, "--matter", "LIT-2026-030", "--actor", "sup.ortiz"]) == 0
    assert "released" in capsys.readouterr().out
    assert main(["hold", f"case-{uuid.uuid4().hex[:20]}", "--matter", "LIT-1"]) == 2
    assert "no record of case" in capsys.readouterr().err

    async def audit(s):
        return (await s.execute(select(AuditRow.action, AuditRow.actor_id).where(AuditRow.case_id == cid)
                                .order_by(AuditRow.seq))).all()
    assert asyncio.run(_db(database_url, audit)) == [("place_hold", "sup.ortiz"), ("release_hold", "sup.ortiz")]

    assert main(["keys", "rotate"]) == 2
    assert "CCS_ENCRYPTION_KEYS is set" in capsys.readouterr().err
    assert main(["keys", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["active"] == KEYRING.active
