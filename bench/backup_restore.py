"""Backup and restore of a running `ccs up` with many cases (issue 17's 1,000).

`ccs up` runs in a subprocess with its own CCS_HOME; N cases are referred and moved to
`records`, a tenth of them closed; 20 of them run under a policy with a records reminder
every 30 s (a case keeps the policy it was referred with), the others under the default; `ccs backup` runs while
the stack keeps working; then the stack stops, `ccs restore` fills a fresh CCS_HOME, `ccs up`
starts there, and every case must answer with the same stage, closure and child, and the
reminders must keep firing. Writes the backup_restore section of bench/RESULTS.md.

    .venv/bin/python -m bench.backup_restore --cases 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.common import ROOT, bounded, command_line, free_port, loadavg, log, machine_md, referral, write_section
from models.case import Actor
from models.converter import load_keyring
from models.policy import RecordsPolicy, load_policy
from models.settings import Settings
from starters.client import Cases, connect
from starters.records import records_for_cli

CCS = str(Path(sys.executable).parent / "ccs")
CM = Actor(id="cm.bench", role="case_manager")
INTAKE = Actor(id="clerk.bench", role="intake_clerk")


def start(env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([CCS, "up"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "Press Ctrl-C" in line:
            return proc
    raise SystemExit(f"ccs up did not start (exit {proc.wait()})")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)


def ccs(env: dict, *args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([CCS, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ccs {' '.join(args)} failed: {done.stderr}")
    return time.perf_counter() - t0


async def client_for(env: dict) -> Cases:
    settings = Settings(**{k: v for k, v in env.items() if k.startswith(("CCS_", "TEMPORAL_"))})
    keyring = load_keyring(settings)
    client = await connect(settings, keyring)
    return Cases(client, settings.task_queue, load_policy(settings.policy_file), keyring.case_id_secret,
                 records=records_for_cli(settings, keyring))


def view(status) -> dict:
    d = status.model_dump(mode="json")
    return {k: d[k] for k in ("case_id", "stage", "stage_since", "closure", "child", "conditions", "application_date")}


def reminders(status) -> int:
    return sum("/records_reminder/" in k for k in status.notices_sent)


async def main(n: int, concurrency: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ccs-bench-backup-"))
    tmp.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCS_", "TEMPORAL_")) and k != "DATABASE_URL"}
    env.update(CCS_HOME=str(tmp / "home"), TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
               CCS_TEMPORAL_UI_PORT=str(free_port()), CCS_CODEC_PORT=str(free_port()))
    load_before = loadavg()
    proc = start(env)
    try:
        cases = await client_for(env)
        t0 = time.perf_counter()

        fast = Cases(cases.client, cases.task_queue, cases.policy.model_copy(
            update={"records": RecordsPolicy(reminder_every=timedelta(seconds=30))}), cases.secret, cases.records)

        async def one(i: int) -> str:
            status = await (fast if i % 50 == 1 else cases).refer(referral(i, tag="Bk"), INTAKE)
            day = status.referral_date.isoformat()
            await cases.act(status.case_id, "record_application", {"actor": CM.model_dump(), "received_on": day})
            if i % 10 == 0:
                await cases.act(status.case_id, "close_case", {"actor": CM.model_dump(), "reason": "family_withdrew"})
            return status.case_id

        ids = await bounded(range(n), concurrency, one)
        made = time.perf_counter() - t0
        log(f"{n} cases in {made:.0f}s")
        await asyncio.sleep(5)
        backup_s = ccs(env, "backup", str(tmp / "backup"))
        manifest = json.loads((tmp / "backup" / "manifest.json").read_text())
        size_mb = sum(p.stat().st_size for p in (tmp / "backup").iterdir()) / 1e6
        before = {cid: view(await cases.show(cid)) for cid in ids}
        log(f"backup in {backup_s:.1f}s, {size_mb:.1f} MB")
    finally:
        stop(proc)

    restored = dict(env, CCS_HOME=str(tmp / "restored"))
    restore_s = ccs(restored, "restore", str(tmp / "backup"))
    t0 = time.perf_counter()
    proc = start(restored)
    up_s = time.perf_counter() - t0
    try:
        cases = await client_for(restored)
        after = {cid: await cases.show(cid) for cid in ids}
        same = sum(view(after[cid]) == before[cid] for cid in ids)
        open_ids = [cid for i, cid in enumerate(ids) if i % 50 == 1]
        counts = {cid: reminders(after[cid]) for cid in open_ids}
        fired, deadline = 0, time.monotonic() + 120
        while time.monotonic() < deadline:
            fired = sum([reminders(await cases.show(cid)) > counts[cid] for cid in open_ids])
            if fired == len(open_ids):
                break
            await asyncio.sleep(5)
    finally:
        stop(proc)
    closed = sum(1 for v in before.values() if v["stage"] == "closed")
    body = f"""## Backup and restore of a running `ccs up`

`{command_line()}`: {n} cases referred and moved to `records` ({closed} of them then closed),
{concurrency} at a time through starters.client.Cases, against `ccs up` in a subprocess; `ccs backup`
while the stack ran (records reminders every 30 s for 1 case in 50), stop, `ccs restore` into a new CCS_HOME, `ccs up`.

{machine_md()} Load average before: {load_before}; after: {loadavg()}.

| step | result |
|---|---|
| making the cases | {made:.0f} s |
| `ccs backup` (whole command) | {backup_s:.1f} s, {size_mb:.1f} MB ({manifest['rows'].get('cases')} cases, {manifest['rows'].get('audit_log')} audit rows, {manifest['rows'].get('record_snapshots')} snapshots) |
| `ccs restore` (whole command) | {restore_s:.1f} s |
| `ccs up` on the restored home | {up_s:.1f} s |
| cases answering with the same stage, closure, child and conditions | {same} of {n} |
| sampled open cases whose reminder timer fired after the restore | {fired} of {len(open_ids)} |
"""
    write_section("backup_restore", body)
    print(body)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=20)
    a = p.parse_args()
    asyncio.run(main(a.cases, a.concurrency))
