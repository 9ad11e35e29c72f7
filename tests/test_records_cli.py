"""The record verbs an operator types: `ccs keys`. (`ccs hold` and `ccs release-hold` go
through the API: tests/test_front_door.py.)"""

from __future__ import annotations

import asyncio
import base64
import json

from migrations import upgrade_async
from starters.cli import main
from tests.conftest import KEYRING


def test_keys_verbs(database_url, tmp_path, monkeypatch, capsys):
    keys = ",".join(f"{kid}:{base64.b64encode(k).decode()}" for kid, k in KEYRING.keys.items())
    for name, value in {"DATABASE_URL": database_url, "CCS_HOME": str(tmp_path), "CCS_ENCRYPTION_KEYS": keys,
                        "CCS_CASE_ID_SECRET": base64.b64encode(KEYRING.case_id_secret).decode()}.items():
        monkeypatch.setenv(name, value)
    asyncio.run(upgrade_async(database_url))  # at head already when other tests ran first
    assert main(["keys", "rotate"]) == 2
    assert "CCS_ENCRYPTION_KEYS is set" in capsys.readouterr().err
    assert main(["keys", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["active"] == KEYRING.active
