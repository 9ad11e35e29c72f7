"""The `ccs` command: case managers' and supervisors' tool. Every verb has --json."""

from __future__ import annotations

import argparse
import asyncio
import os
import json
import logging
import sys
from typing import Any

from pydantic import ValidationError

from models.case import CaseStatus
from models.policy import load_policy
from models.settings import Settings
from starters.client import Cases, CcsError, connect, fields_of


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        raise CcsError("invalid settings", fields_of(e)) from None


async def _cases(settings: Settings) -> Cases:
    from models.converter import load_keyring

    try:
        policy = load_policy(settings.policy_file)
    except ValidationError as e:
        raise CcsError(f"invalid policy file {settings.policy_file}", fields_of(e)) from None
    except ValueError as e:
        raise CcsError(str(e)) from None
    keyring = load_keyring(settings)
    client = await connect(settings, keyring)
    from starters.records import records_for_cli

    return Cases(client, settings.task_queue, policy, keyring.case_id_secret,
                 records=records_for_cli(settings, keyring))


def _fmt_dt(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def _task_lines(tasks, id_width: int) -> list[str]:
    lines = ["  open tasks"]
    lines += [f"    {t.id:<{id_width}} due {_fmt_dt(t.due)}  {t.assignee:<24} {t.title}" for t in tasks or []]
    return lines if tasks else lines + ["    (none)"]


def render_status(s: CaseStatus) -> str:
    lines = [
        f"case {s.case_id}",
        f"  stage           {s.stage} (since {_fmt_dt(s.stage_since)})",
        f"  waiting for     {s.waiting_for}",
        f"  county          {s.county} ({'county' if s.jurisdiction == 'county' else 'State'} medical determination)",
        f"  managed by      {s.case_management}",
        f"  case manager    {s.case_manager or '(unassigned)'}",
        f"  child           {s.child.first_name} {s.child.last_name}, born {s.child.date_of_birth}",
        f"  referral date   {s.referral_date}   application date {s.application_date or '-'}",
        "  conditions",
    ]
    for c in s.conditions:
        det = c.determination
        by = f" by {det.decided_by} ({det.decided_by_actor}) on {det.decided_on}" if det else ""
        lines.append(f"    {c.id} {c.icd10:<8} {c.status:<12} {c.description}{by}")
    if s.eligibility:
        lines.append(f"  eligibility     {'eligible' if s.eligibility.eligible else 'not eligible'}: {s.eligibility.basis}")
    if s.denial:
        lines.append(f"  denied          {s.denial.reason}; appeal until {_fmt_dt(s.denial.appeal_until)}")
    if s.appeal:
        lines.append(f"  appeal          filed {s.appeal.filed_on}, outcome {s.appeal.outcome or 'pending'}")
    if s.renewal_due:
        lines.append(f"  renewal due     {s.renewal_due}")
    if s.closure:
        lines.append(f"  closed          {s.closure.on}: {s.closure.reason} ({s.closure.note or ''})")
    lines += _task_lines(s.open_tasks, id_width=5)
    lines.append("  deadlines")
    for name, at in sorted(s.deadlines.items(), key=lambda kv: kv[1]):
        lines.append(f"    {_fmt_dt(at)}  {name}")
    if s.requests:
        lines.append("  requests (ccs show REQUEST_ID)")
        for r in s.requests:
            lines.append(f"    {r.request_id:<32} {r.kind:<14} {r.state:<22} {r.summary}")
    return "\n".join(lines)


def render_request(r) -> str:
    lines = [
        f"request {r.request_id} ({r.kind.replace('_', ' ')}) of case {r.case_id}",
        f"  state           {r.state}{' (case closed)' if r.case_closed else ''}",
        f"  decision due    {_fmt_dt(r.decision_due)}",
    ]
    if r.decision:
        d = r.decision.model_dump(mode="json", exclude_none=True)
        lines.append(f"  decision        {d.pop('outcome')} by {d.pop('by')} ({d.pop('role')}) at {d.pop('at')}")
        lines += [f"    {k.replace('_', ' '):<13} {v}" for k, v in d.items()]
    for name in ("route", "receipts_due", "reimbursement", "payment"):
        value = getattr(r, name, None)
        if value:
            shown = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
            lines.append(f"  {name.replace('_', ' '):<15} {shown}")
    if r.outcome_note:
        lines.append(f"  note            {r.outcome_note}")
    lines += _task_lines(r.open_tasks, id_width=8)
    return "\n".join(lines)


def render(status) -> str:
    text = render_status(status) if isinstance(status, CaseStatus) else render_request(status)
    if getattr(status, "from_record", False):
        text += "\n  (from the case record: Temporal no longer holds this closed workflow)"
    return text


def _emit(args, payload: Any, text: str) -> None:
    if args.json:
        if hasattr(payload, "model_dump"):
            payload = payload.model_dump(mode="json")
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


async def cmd_reindex(args) -> None:
    from activities.db import make_engine, session_factory
    from starters.identity import reindex
    from starters.supervisor import database_url_for_cli

    settings = _settings()
    cases = await _cases(settings)
    engine = make_engine(database_url_for_cli(settings), pool_size=2)
    try:
        counts = await reindex(cases, session_factory(engine))
    finally:
        await engine.dispose()
    _emit(args, counts, f"{counts['cases']} open cases indexed, {counts['keys_added']} identity keys added")


async def cmd_up(args) -> None:
    from workers.stack import up

    await up(_settings(), demo=args.demo)


async def cmd_worker(args) -> None:
    from workers.stack import worker

    await worker(_settings())


async def cmd_codec_server(args) -> None:
    from workers.stack import codec_server

    await codec_server(_settings())


async def cmd_migrate(args) -> None:
    from workers.stack import migrate

    settings = _settings()
    if not settings.database_url:
        raise CcsError("`ccs migrate` needs DATABASE_URL (`ccs up` migrates the embedded database itself)")
    await migrate(settings.database_url)
    _emit(args, {"migrated": True}, "migrations applied")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ccs", description="California Children's Services case orchestrator")
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--json", action="store_true", help="one JSON document on stdout")
        sp.set_defaults(fn=fn)
        return sp

    verb("up", cmd_up, "run the whole stack on this machine").add_argument(
        "--demo", action="store_true", help="add demo people (passwords printed once) and synthetic children")
    verb("worker", cmd_worker, "run a worker against the configured services")
    verb("codec-server", cmd_codec_server, "run the codec server for the Web UI and CLI")
    verb("migrate", cmd_migrate, "apply database migrations to DATABASE_URL")
    verb("reindex", cmd_reindex, "add open cases to the identity index (cases opened before it existed)")
    from starters.api import cli_verbs

    cli_verbs.add_verbs(verb)  # sign-in, users, and the person verbs: clients of the HTTP API
    from starters import records

    records.add_verbs(verb)
    from starters import letters

    letters.add_verbs(verb)
    from starters import counties

    counties.add_verbs(verb)
    from starters import policy_cli

    policy_cli.add_verbs(verb)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        asyncio.run(args.fn(args))
    except CcsError as e:
        if getattr(args, "json", False):
            print(json.dumps(e.to_json(), indent=2))
        else:
            print(f"error: {e.message}", file=sys.stderr)
            for field, msg in e.fields.items():
                print(f"  {field}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ccs show ... | head`
        return 0
    return 0


def entry() -> None:
    """Console entry point. Exits without interpreter teardown: the Temporal client's native
    runtime threads can crash a finalizing interpreter after the work is done."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
