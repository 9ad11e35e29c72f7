"""`ccs serve`, `ccs user ...`, `ccs login`/`logout`, and the person verbs (`refer`, `show`,
`act`, `stuck`, `overdue`, `workload`) as clients of the HTTP API: the service decides who
the person is and what they may do, for the command line as for everyone else."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from models.request_kinds import request_kind
from models.case import CaseStatus
from models.identity import ReferralAnswer
from starters.api.settings import ApiSettings
from starters.client import CcsError, load_json



def _settings():
    from starters.console import load_settings as settings

    return settings()


def _api() -> ApiSettings:
    return ApiSettings()


def api_url() -> str:
    api = _api()
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::") else api.host
    return os.environ.get("CCS_API_URL", f"http://{host}:{api.port}").rstrip("/")


def token_file() -> Path:
    return _settings().home_dir / "token"


def _token() -> str:
    token = os.environ.get("CCS_TOKEN")
    if token:
        return token
    path = token_file()
    if not path.exists():
        raise CcsError("sign in first: `ccs login USER` (or set CCS_TOKEN to a token from your identity provider)")
    return path.read_text().strip()


def call(method: str, path: str, *, token: str | None = None, **kwargs) -> Any:
    """One API call; a problem+json answer becomes a CcsError with its field messages."""
    headers = kwargs.pop("headers", {})
    if token is not False:
        headers["Authorization"] = f"Bearer {token or _token()}"
    try:
        r = httpx.request(method, api_url() + path, headers=headers, timeout=60, **kwargs)
    except httpx.HTTPError as e:
        raise CcsError(f"cannot reach the CCS API at {api_url()} ({type(e).__name__}): is `ccs up` "
                       "or `ccs serve` running, or CCS_API_URL set?") from None
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            raise CcsError(f"the API answered {r.status_code}: {r.text[:200]}") from None
        detail = body.get("detail") or body.get("title") or str(r.status_code)
        if r.status_code == 401 and "expired" in detail:
            detail += " (`ccs login` again)"
        raise CcsError(detail, body.get("errors") or {})
    return r.json()


def _status(data: dict):
    kind = request_kind(data.get("request_id") or "")
    if kind is not None:
        return kind.status.model_validate(data)
    return CaseStatus.model_validate(data)


def _no_actor_flags(args) -> None:
    if getattr(args, "actor", None) or getattr(args, "role", None):
        raise CcsError("--actor and --role are gone: you act as the person you signed in as (`ccs login`)")


async def api_refer(args) -> None:
    from starters.console import emit as _emit

    _no_actor_flags(args)
    answer = ReferralAnswer.model_validate(call("POST", "/api/v1/referrals", json=load_json(args.file)))
    text = f"case_id {answer.case_id}\nstage   {answer.stage}\nidentity {answer.identity}"
    if answer.duplicate_referral:
        text += "\nduplicate referral: already on this case, nothing changed"
    if answer.possible_duplicate_of:
        text += "\npossible duplicate of " + ", ".join(answer.possible_duplicate_of) + " (a supervisor decides)"
    _emit(args, answer, text)


async def api_show(args) -> None:
    from starters.console import emit as _emit, render

    status = _status(call("GET", f"/api/v1/cases/{args.case_id}"))
    _emit(args, status, render(status))


async def api_act(args) -> None:
    from starters.console import emit as _emit, render

    _no_actor_flags(args)
    data = load_json(args.data) if args.data else {}
    data.pop("actor", None)  # the service sets the actor from the token
    status = _status(call("POST", f"/api/v1/cases/{args.case_id}/actions/{args.action}", json=data))
    _emit(args, status, render(status))


def _query(**params) -> dict:
    return {k: v for k, v in params.items() if v is not None}


async def api_stuck(args) -> None:
    from starters.console import emit as _emit
    from starters.supervisor import _table, duration

    min_days = duration(args.min_in_stage).total_seconds() / 86400 if args.min_in_stage else None
    result = call("GET", "/api/v1/supervision/stuck", params=_query(
        stage=args.stage, county=args.county, case_manager=args.case_manager, min_days=min_days, limit=args.limit))
    text = _table(result["cases"], [("case_id", "CASE"), ("stage", "STAGE"), ("since", "SINCE"),
                                     ("days_in_stage", "DAYS"), ("county", "COUNTY"),
                                     ("case_manager", "CASE MANAGER"), ("next_deadline", "NEXT DEADLINE")])
    _emit(args, result, f"{text}\n{result['shown']} of {result['total']} stuck case(s)")


async def api_overdue(args) -> None:
    from starters.console import emit as _emit
    from starters.supervisor import _table, duration

    within = duration(args.within).total_seconds() / 86400
    if within < 0:
        raise CcsError("--within must not be negative")
    result = call("GET", "/api/v1/supervision/overdue", params=_query(
        within_days=within, assignee=args.assignee, limit=args.limit))
    text = _table(result["tasks"], [("case_id", "CASE"), ("task_id", "TASK"), ("title", "WHAT"),
                                     ("assignee", "ASSIGNEE"), ("county", "COUNTY"), ("due", "DUE"),
                                     ("overdue_days", "DAYS OVERDUE")])
    _emit(args, result, f"{text}\n{result['total']} task(s)")


async def api_workload(args) -> None:
    from starters.console import emit as _emit
    from starters.supervisor import _table

    result = call("GET", "/api/v1/supervision/workload")
    text = (_table(result["case_managers"], [("case_manager", "CASE MANAGER / QUEUE"),
                                              ("open_cases", "OPEN CASES"), ("open_tasks", "OPEN TASKS"),
                                              ("next_due", "NEXT DUE")])
            + "\n\n" + _table(result["by_county_stage"], [("county", "COUNTY"), ("stage", "STAGE"),
                                                          ("open_cases", "OPEN CASES")]))
    _emit(args, result, text)


# ---- operator verbs ------------------------------------------------------------------

async def cmd_serve(args) -> None:
    from starters.api.serve import serve

    await serve(_settings(), _api())


async def cmd_login(args) -> None:
    from starters.console import emit as _emit

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.user}: ")
    answer = call("POST", "/api/v1/sign-in", token=False, json={"user_id": args.user, "password": password})
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only: it is a credential
    with os.fdopen(fd, "w") as fh:
        fh.write(answer["access_token"])
    shown = {k: answer[k] for k in ("user_id", "role", "county", "expires_in")}
    _emit(args, shown, f"signed in as {answer['user_id']} ({answer['role']}, {answer['county'] or 'statewide'}); "
                       f"the token lasts {answer['expires_in'] // 60} minutes")


async def cmd_logout(args) -> None:
    from starters.console import emit as _emit

    token_file().unlink(missing_ok=True)
    _emit(args, {"signed_out": True}, "signed out")


async def _users():
    from activities.db import make_engine, session_factory
    from starters.api.users import Users
    from starters.supervisor import database_url_for_cli

    engine = make_engine(database_url_for_cli(_settings()), pool_size=1)
    return Users(session_factory(engine), _api()), engine


async def cmd_user(args) -> None:
    from starters.console import emit as _emit

    users, engine = await _users()
    try:
        if args.user_verb == "add":
            password = await users.add(args.name, args.role, args.county)
            _emit(args, {"user_id": args.name, "password": password},
                  f"user {args.name} added; one-time password (shown once): {password}")
        elif args.user_verb in ("disable", "enable"):
            await users.set_disabled(args.name, args.user_verb == "disable")
            _emit(args, {"user_id": args.name, "disabled": args.user_verb == "disable"}, f"user {args.name} {args.user_verb}d")
        elif args.user_verb == "reset-password":
            password = await users.reset_password(args.name)
            _emit(args, {"user_id": args.name, "password": password}, f"new password for {args.name}: {password}")
        else:
            rows = await users.list()
            _emit(args, {"users": rows}, "\n".join(
                f"{u['user_id']:<24} {u['role']:<20} {u['county'] or '-':<16} {'disabled' if u['disabled'] else ''}"
                for u in rows) or "(none)")
    finally:
        await engine.dispose()


def _person_verbs(verb) -> None:
    """The verbs of the people the product is for: each calls the API as the signed-in person."""
    gone = {"help": argparse.SUPPRESS}  # --actor/--role: refused with a message saying why
    sp = verb("refer", api_refer, "submit a referral; prints the case_id and stage")
    sp.add_argument("file")
    sp.add_argument("--actor", **gone)
    sp.add_argument("--role", **gone)
    verb("show", api_show, "show a case's status").add_argument("case_id")
    sp = verb("act", api_act, "take an action on a case; prints the new status")
    sp.add_argument("case_id")
    sp.add_argument("action")
    sp.add_argument("--data", help="JSON file with the action's data (see examples/actions/)")
    sp.add_argument("--actor", **gone)
    sp.add_argument("--role", **gone)
    sp = verb("stuck", api_stuck, "cases whose stage has not changed for too long")
    sp.add_argument("--county", help="a statewide supervisor's county (county supervisors see their own)")
    sp.add_argument("--stage")
    sp.add_argument("--case-manager")
    sp.add_argument("--min", dest="min_in_stage", help="minimum time in stage (days, or P30D); "
                    "default: the policy's per-stage threshold")
    sp.add_argument("--limit", type=int, default=200)
    sp = verb("overdue", api_overdue, "open tasks of your county past due, or due within N days")
    sp.add_argument("--within", default="0", help="also tasks due within this many days (or P3D)")
    sp.add_argument("--assignee")
    sp.add_argument("--limit", type=int, default=500)
    verb("workload", api_workload, "open cases and tasks of your county per case manager and stage")


def add_verbs(verb) -> None:
    """Register the API verbs: serving, signing in, users, and the person verbs."""
    from starters.api.auth import PERSON_ROLES

    verb("serve", cmd_serve, "run the HTTP API (CCS_API_HOST, CCS_API_PORT)")
    sp = verb("login", cmd_login, "sign in to the API; later person verbs use the token")
    sp.add_argument("user")
    sp.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    verb("logout", cmd_logout, "forget the token")
    sp = verb("user", cmd_user, "manage embedded users (operators; needs the database)")
    users = sp.add_subparsers(dest="user_verb", required=True)
    add = users.add_parser("add", help="add a user; prints a one-time password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=PERSON_ROLES)
    add.add_argument("--county", help="the county of a county role (Kern, Fresno, ...)")
    for name, help in (("disable", "refuse the user's sign-in and tokens at once"), ("enable", "allow again"),
                       ("reset-password", "a new one-time password")):
        users.add_parser(name, help=help).add_argument("name")
    users.add_parser("list", help="every user")
    for sub_verb in users.choices.values():
        sub_verb.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document")
    _person_verbs(verb)
