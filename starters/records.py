"""The case record from the user's side: reading a case Temporal no longer has, legal
holds, and re-encrypting the records under a new key. ``Records`` is what `ccs show`
(and the API and web app) fall back to when the workflow is gone."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from activities.records import audit_record_event, seal, unseal
from activities.tables import CaseRecordRow, CaseRow, LegalHoldRow, SnapshotRow
from models.case import Actor, CaseStatus
from models.converter import EncryptionCodec, parse_keys
from models.records import MATTER
from models.request_kinds import REQUEST_KINDS, case_of
from models.settings import Settings
from starters.client import CcsError

STATUS_MODELS = {"case": CaseStatus, **{k.kind: k.status for k in REQUEST_KINDS.values()}}


class Records:
    """Case records in PostgreSQL, read and kept with the deployment's keyring."""

    def __init__(self, sessions: async_sessionmaker, codec: EncryptionCodec) -> None:
        self.sessions, self.codec = sessions, codec

    async def status(self, source: str):
        """The last recorded status of a case or request, marked ``from_record``; None if never recorded."""
        async with self.sessions() as session:
            row = await session.get(SnapshotRow, source)
            if row is None:
                case_id = case_of(source)
                rec = await session.get(CaseRecordRow, case_id)
                if rec is not None and rec.purged_at is not None:
                    raise CcsError(f"the record of case {case_id} was purged on {rec.purged_at:%Y-%m-%d} "
                                   "(past retention); only its audit trail remains")
                return None
        data = await unseal(self.codec, row.key_id, row.ciphertext)
        return STATUS_MODELS[row.kind].model_validate({**data, "from_record": True})

    # ---- legal holds ---------------------------------------------------------------

    async def place_hold(self, case_id: str, actor: Actor, matter: str) -> dict:
        """Stop the purge of a case's record until the hold is released; works without the workflow."""
        _check_hold(actor, matter, "place")
        async with self.sessions.begin() as session:
            rec = await _lock_record(session, case_id)
            if rec.purged_at is not None:
                raise CcsError(f"the record of case {case_id} was already purged on {rec.purged_at:%Y-%m-%d}")
            held = await session.scalar(select(LegalHoldRow.id).where(
                LegalHoldRow.case_id == case_id, LegalHoldRow.matter == matter, LegalHoldRow.released_at.is_(None)))
            if held is not None:
                raise CcsError(f"case {case_id} is already on hold for matter {matter}")
            now = datetime.now(timezone.utc)
            session.add(LegalHoldRow(case_id=case_id, matter=matter, placed_by=actor.id, placed_at=now))
            await audit_record_event(session, case_id, actor.id, actor.role, "place_hold", {"matter": matter})
        return {"case_id": case_id, "matter": matter, "placed_by": actor.id, "placed_at": now.isoformat()}

    async def release_hold(self, case_id: str, actor: Actor, matter: str) -> dict:
        _check_hold(actor, matter, "release")
        async with self.sessions.begin() as session:
            await _lock_record(session, case_id)
            now = datetime.now(timezone.utc)
            released = await session.execute(
                update(LegalHoldRow).where(LegalHoldRow.case_id == case_id, LegalHoldRow.matter == matter,
                                           LegalHoldRow.released_at.is_(None))
                .values(released_by=actor.id, released_at=now).returning(LegalHoldRow.id))
            if released.first() is None:
                raise CcsError(f"case {case_id} has no hold for matter {matter}")
            await audit_record_event(session, case_id, actor.id, actor.role, "release_hold", {"matter": matter})
        return {"case_id": case_id, "matter": matter, "released_by": actor.id, "released_at": now.isoformat()}

    async def holds(self, case_id: str) -> list[dict]:
        async with self.sessions() as session:
            rows = (await session.execute(select(LegalHoldRow).where(LegalHoldRow.case_id == case_id)
                                          .order_by(LegalHoldRow.id))).scalars().all()
        return [{"matter": r.matter, "placed_by": r.placed_by, "placed_at": r.placed_at.isoformat(),
                 "released_by": r.released_by, "released_at": r.released_at and r.released_at.isoformat()}
                for r in rows]

    # ---- key rotation ------------------------------------------------------------

    async def key_usage(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = await session.execute(select(SnapshotRow.key_id, func.count()).group_by(SnapshotRow.key_id))
        return dict(rows.all())

    async def reencrypt(self, batch: int = 200) -> int:
        """Re-seal every snapshot not under the active key, a committed batch at a time: stopped
        halfway, the next run carries on. One pass in key order, so a worker still sealing under
        an old key cannot keep it running."""
        done, after = 0, ""
        while True:
            async with self.sessions.begin() as session:
                rows = (await session.execute(
                    select(SnapshotRow).where(SnapshotRow.key_id != self.codec.active, SnapshotRow.source > after)
                    .order_by(SnapshotRow.source).limit(batch).with_for_update(skip_locked=True))).scalars().all()
                for row in rows:
                    status = await unseal(self.codec, row.key_id, row.ciphertext)
                    row.key_id, row.ciphertext = await seal(self.codec, status)
                done += len(rows)
            if len(rows) < batch:
                return done
            after = rows[-1].source


def _check_hold(actor: Actor, matter: str, verb: str) -> None:
    if actor.role != "supervisor":
        raise CcsError(f"only a supervisor may {verb} a legal hold (you are {actor.role})")
    if not re.match(MATTER, matter):
        raise CcsError(f"matter {matter!r} is not a reference: letters, digits and . _ : / - (up to 64), no names",
                       {"matter": "e.g. LIT-2026-014"})


async def _lock_record(session, case_id: str) -> CaseRecordRow:
    """The case's record row, locked (the purge takes the same lock); made for a case recorded
    before records existed."""
    rec = await session.get(CaseRecordRow, case_id, with_for_update=True)
    if rec is not None:
        return rec
    case = await session.get(CaseRow, case_id)
    if case is None:
        raise CcsError(f"no record of case {case_id}")
    rec = CaseRecordRow(case_id=case_id, closed_at=case.closed_at, events=0)
    session.add(rec)
    await session.flush()
    return await session.get(CaseRecordRow, case_id, with_for_update=True)


def add_key(settings: Settings) -> str:
    """A new key, first in ``CCS_HOME/keys.json`` (it encrypts; the old ones still decrypt)."""
    if settings.encryption_keys:
        raise CcsError("CCS_ENCRYPTION_KEYS is set: put a new key first in it (kid:$(openssl rand -base64 32)), "
                       "restart the workers, then run `ccs keys rotate --no-new-key`")
    path = settings.home_dir / "keys.json"
    if not path.exists():
        raise CcsError(f"no keyring in {path}: nothing to rotate")
    stored = json.loads(path.read_text())
    keys, _ = parse_keys(stored["encryption_keys"])
    n = len(keys) + 1
    while f"k{n}" in keys:
        n += 1
    kid = f"k{n}"
    stored["encryption_keys"] = f"{kid}:{base64.b64encode(os.urandom(32)).decode()}," + stored["encryption_keys"]
    _write_private(path, json.dumps(stored, indent=2))
    return kid


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def records_for_cli(settings: Settings, keyring) -> Records | None:
    """Records when a database is reachable (configured, or `ccs up`'s embedded one), else None."""
    from activities.db import make_engine, reach_embedded, session_factory

    url = settings.database_url or reach_embedded(settings.home_dir / "pg")
    if url is None:
        return None
    return Records(session_factory(make_engine(url, pool_size=2)), EncryptionCodec(keyring.keys, keyring.active))


# ---- CLI verbs -----------------------------------------------------------------------

def add_verbs(verb) -> None:
    for name, fn, help in (("hold", cmd_hold, "place a legal hold on a case's record (supervisor): stops its purge"),
                           ("release-hold", cmd_release_hold, "release a legal hold (supervisor)")):
        sp = verb(name, fn, help)
        sp.add_argument("case_id")
        sp.add_argument("--matter", required=True, help="the matter's reference, e.g. LIT-2026-014 (no names)")
        sp.add_argument("--actor", help=argparse.SUPPRESS)  # gone: you are who you signed in as
        sp.add_argument("--role", help=argparse.SUPPRESS)
    sp = verb("keys", cmd_keys, "encryption keys of the case records: status, or rotate")
    sp.add_argument("op", choices=["status", "rotate"])
    sp.add_argument("--no-new-key", action="store_true",
                    help="re-encrypt under the active key only (keys from CCS_ENCRYPTION_KEYS)")
    sp.add_argument("--batch", type=int, default=200, help="snapshots per transaction")
    verb("purge", cmd_purge, "run the daily purge of records past retention now")
    sp = verb("backup", cmd_backup, "back up the embedded stack (PostgreSQL dump + Temporal database) into DIR")
    sp.add_argument("dir")
    sp = verb("restore", cmd_restore, "restore a `ccs backup` DIR into a new CCS_HOME")
    sp.add_argument("dir")


def _records(settings: Settings) -> Records:
    from models.converter import load_keyring
    from starters.supervisor import database_url_for_cli

    from activities.db import make_engine, session_factory

    keyring = load_keyring(settings)
    engine = make_engine(database_url_for_cli(settings), pool_size=2)
    return Records(session_factory(engine), EncryptionCodec(keyring.keys, keyring.active))


async def _hold(args, place: bool) -> None:
    """Through the API as the signed-in supervisor (`ccs login`): the service checks role and county."""
    from urllib.parse import quote

    from starters.api.cli_verbs import _no_actor_flags, call
    from starters.console import emit as _emit

    _no_actor_flags(args)
    case = quote(args.case_id, safe="")
    if place:
        done = call("POST", f"/api/v1/cases/{case}/holds", json={"matter": args.matter})
    else:
        done = call("POST", f"/api/v1/cases/{case}/holds/{quote(args.matter, safe='')}/release")
    what = "placed on" if place else "released from"
    _emit(args, done, f"legal hold {args.matter} {what} case {args.case_id}")


async def cmd_hold(args) -> None:
    await _hold(args, place=True)


async def cmd_release_hold(args) -> None:
    await _hold(args, place=False)


async def cmd_keys(args) -> None:
    from starters.console import emit as _emit, load_settings as _settings

    settings = _settings()
    if args.batch < 1:
        raise CcsError("--batch must be at least 1")
    added = None
    if args.op == "rotate" and not args.no_new_key:
        added = add_key(settings)
    records = _records(settings)
    done = await records.reencrypt(args.batch) if args.op == "rotate" else 0
    usage = await records.key_usage()
    result = {"active": records.codec.active, "added": added, "reencrypted": done, "snapshots_by_key": usage}
    lines = [f"active key {records.codec.active}" + (" (new)" if added else "")]
    if args.op == "rotate":
        lines.append(f"re-encrypted {done} snapshot(s)")
        if added:
            lines.append("restart `ccs up` / the workers so new records use the new key, then run "
                         "`ccs keys rotate --no-new-key` once more")
    lines += [f"  {kid}: {n} snapshot(s)" for kid, n in sorted(usage.items())]
    _emit(args, result, "\n".join(lines))


async def cmd_purge(args) -> None:
    from starters.console import open_cases as _cases, emit as _emit, load_settings as _settings
    from workers.schedules import PURGE_SCHEDULE_ID

    cases = await _cases(_settings())
    await cases.client.get_schedule_handle(PURGE_SCHEDULE_ID).trigger()
    _emit(args, {"triggered": PURGE_SCHEDULE_ID}, f"purge started (schedule {PURGE_SCHEDULE_ID}); "
          "its result is in the Temporal Web UI and the audit log")


async def cmd_backup(args) -> None:
    from starters.backup import backup
    from starters.console import emit as _emit, load_settings as _settings

    manifest = await backup(_settings(), Path(args.dir).resolve())
    keys = "keys.json included: keep this backup as secret as the keys" if manifest["keys_included"] else \
        "keys not included (CCS_ENCRYPTION_KEYS): keep them with the backup"
    _emit(args, manifest, f"backed up {manifest['rows'].get('cases', 0)} case(s) into {args.dir}; {keys}")


async def cmd_restore(args) -> None:
    from starters.backup import restore
    from starters.console import emit as _emit, load_settings as _settings

    settings = _settings()
    manifest = await restore(settings, Path(args.dir).resolve())
    _emit(args, manifest, f"restored the backup of {manifest['taken_at']} into {settings.home_dir}; start it with "
          "`ccs up`")
