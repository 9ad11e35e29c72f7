"""`ccs backup` on a running `ccs up` with open and closed cases, `ccs restore` into a new
CCS_HOME: every case answers `ccs show` with the same status, a closed case whose workflow
is then deleted still answers from its record, and running timers still fire.
(bench/backup_restore.py does the same with 1,000 cases.)"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.helpers import referral
from tests.test_cli_up import ccs, start, stack_env, stop  # noqa: F401  (stack_env is a fixture)
from tests.test_records import delete_workflow

OPEN, CLOSED = 2, 1


async def _delete(address: str, workflow_id: str) -> None:
    from temporalio.client import Client

    await delete_workflow(await Client.connect(address), workflow_id)


def reminders(status: dict) -> int:
    return sum("/records_reminder/" in k for k in status["notices_sent"])


def same(status: dict) -> dict:
    return {k: status[k] for k in ("case_id", "stage", "stage_since", "closure", "child", "conditions",
                                   "application_date", "requests")}


@pytest.mark.timeout(420)  # two stack start-ups and ~20 `ccs` processes: minutes on a loaded 2-core machine
def test_backup_running_stack_and_restore_into_new_home(stack_env, tmp_path):
    env = stack_env
    files = tmp_path / "referrals"
    files.mkdir()
    proc = start(env)
    try:
        # The person verbs go through the API as a signed-in person.
        password = json.loads(ccs(env, "user", "add", "sup.backup", "--role", "supervisor", "--county", "Kern",
                                  "--json").stdout)["password"]
        ccs(env, "login", "sup.backup", "--password-stdin", input=password + "\n")
        ids = []
        for n in range(OPEN + CLOSED):
            path = files / f"r{n}.json"
            path.write_text(json.dumps(referral(first_name=f"Backup{n}", last_name="Fernhollow")))
            ids.append(json.loads(ccs(env, "refer", str(path), "--json").stdout)["case_id"])
        for cid in ids[:OPEN]:
            ccs(env, "act", cid, "record_application", "--data", "examples/actions/record_application.json")
        for cid in ids[OPEN:]:
            ccs(env, "act", cid, "close_case", "--data", "examples/actions/close_case.json")
        time.sleep(3)  # a reminder or two, and the closed cases' final records
        out = tmp_path / "backup"
        taken = json.loads(ccs(env, "backup", str(out), "--json").stdout)
        assert taken["rows"]["cases"] == OPEN + CLOSED and taken["keys_included"]
        assert ccs(env, "backup", str(out), ok=False).returncode == 2  # never over an earlier backup
        original = {cid: same(json.loads(ccs(env, "show", cid, "--json").stdout)) for cid in ids}
    finally:
        stop(proc)

    # Beside the original home: the embedded server runs as its own user, outside pytest's 0700 dirs.
    restored = dict(env, CCS_HOME=str(Path(env["CCS_HOME"]).parent / "restored"))
    ccs(restored, "restore", str(out))
    again = ccs(restored, "restore", str(out), ok=False)
    assert again.returncode == 2 and "new CCS_HOME" in again.stderr
    proc = start(restored)
    try:
        ccs(restored, "login", "sup.backup", "--password-stdin", input=password + "\n")  # restored with the users
        before = {cid: json.loads(ccs(restored, "show", cid, "--json").stdout) for cid in ids}
        for cid, status in before.items():
            assert status["stage"] == ("records" if cid in ids[:OPEN] else "closed")
            assert same(status) == original[cid]
        # Running timers still fire: the 2-second records reminders go on.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = json.loads(ccs(restored, "show", ids[0], "--json").stdout)
            if reminders(now) > reminders(before[ids[0]]):
                break
            time.sleep(1)
        else:
            raise AssertionError("no reminder fired after the restore")
        # A closed case gone from Temporal still answers, from its record.
        gone = ids[-1]
        asyncio.run(_delete(env["TEMPORAL_ADDRESS"], gone))
        seen = []
        for _ in range(10):
            t0 = time.monotonic()
            result = ccs(restored, "show", gone, "--json", ok=False)
            seen.append((round(time.monotonic() - t0, 1), result.returncode, result.stdout[:300], result.stderr[-300:]))
            if result.returncode == 0 and json.loads(result.stdout).get("from_record"):
                break
            time.sleep(0.3)
        assert seen[-1][1] == 0, seen
        shown = json.loads(seen[-1][2] and result.stdout)
        assert shown["from_record"] and same(shown) == same(before[gone])
    finally:
        stop(proc)
