"""What every `ccs` verb shares (starters/cli.py and the modules of its verbs): settings,
the case client, how an answer is printed, and how a case or request reads in a terminal."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from models.case import CaseStatus
from models.policy import load_policy
from models.settings import Settings
from starters.client import Cases, CcsError, connect, fields_of


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        raise CcsError("invalid settings", fields_of(e)) from None


async def open_cases(settings: Settings, with_records: bool = True) -> Cases:
    """The client of cases, with the case records when a database is reachable (a caller with a
    pool of its own passes ``with_records=False`` and sets ``records`` on that pool)."""
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
                 records=records_for_cli(settings, keyring) if with_records else None)


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


def emit(args, payload: Any, text: str) -> None:
    """Print a verb's answer: JSON with --json, else its text."""
    if args.json:
        if hasattr(payload, "model_dump"):
            payload = payload.model_dump(mode="json")
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)
