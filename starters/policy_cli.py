"""`ccs policy`: the deployment's policy file, its dated changes and the values in force on a
date (`show`), and publishing it to the running cases (`publish`, which `ccs up` does at start)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from pydantic import ValidationError

from models.policy import DATED_SECTIONS, Policy, load_policy
from models.settings import Settings
from rules.ages import local_today
from starters.client import CcsError, fields_of


def _policy(settings: Settings) -> Policy:
    try:
        return load_policy(settings.policy_file)
    except ValidationError as e:
        raise CcsError(f"invalid policy file {settings.policy_file}", fields_of(e)) from None
    except ValueError as e:
        raise CcsError(str(e)) from None
    except OSError as e:
        raise CcsError(f"cannot read the CCS_POLICY file: {e}") from None


def describe(policy: Policy, on: date) -> dict:
    in_force = policy.in_force(on)
    return {
        "version": policy.version(),
        "changes": [{"effective": c.effective.isoformat(), "source": c.source, "values": c.values}
                    for c in policy.changes],
        "in_force_on": on.isoformat(),
        "in_force": {name: getattr(in_force, name).model_dump(mode="json") for name in DATED_SECTIONS},
    }


async def cmd_policy_show(args) -> None:
    from starters.console import emit as _emit, load_settings as _settings

    settings = _settings()
    policy = _policy(settings)
    on = args.on or local_today(datetime.now(timezone.utc), policy.timezone)
    doc = describe(policy, on)
    lines = [f"policy {doc['version']} ({settings.policy_file or 'built-in defaults'})"]
    lines += [f"  from {c['effective']}: {c['values']}" + (f"  [{c['source']}]" if c["source"] else "")
              for c in doc["changes"]] or ["  no dated changes"]
    ml = doc["in_force"]["meals_lodging"]
    lines.append(f"in force on {on}: meals ${ml['meals_per_person_per_day']} a person a day, lodging "
                 f"${ml['lodging_per_night']} a night, mileage ${ml['mileage_rate']} a mile, receipts within "
                 f"{ml['receipts_within']}; SAR {doc['in_force']['sar']['routine_working_days']} working days")
    _emit(args, doc, "\n".join(lines))


async def cmd_policy_publish(args) -> None:
    from activities.db import make_engine, session_factory
    from activities.policy import publish_policy
    from starters.console import emit as _emit, load_settings as _settings
    from starters.supervisor import database_url_for_cli

    settings = _settings()
    policy = _policy(settings)
    engine = make_engine(database_url_for_cli(settings), pool_size=1)
    try:
        version, changed = await publish_policy(session_factory(engine), policy)
    finally:
        await engine.dispose()
    _emit(args, {"version": version, "changed": changed},
          f"policy {version} published: running cases take it when they start their next request"
          if changed else f"policy {version} is already the current one: nothing changed")


def add_verbs(verb) -> None:
    sp = verb("policy", cmd_policy_show, "the policy (CCS_POLICY): its dated changes and the values in force")
    sub = sp.add_subparsers(dest="policy_verb")
    show = sub.add_parser("show", help="the file's version, dated changes and the values in force on a date")
    show.add_argument("--json", action="store_true", help="one JSON document on stdout")
    show.add_argument("--on", type=date.fromisoformat, help="the date (YYYY-MM-DD; default today)")
    show.set_defaults(fn=cmd_policy_show)
    pub = sub.add_parser("publish", help="make the file the deployment's current policy (running cases take it)")
    pub.add_argument("--json", action="store_true", help="one JSON document on stdout")
    pub.set_defaults(fn=cmd_policy_publish)
    sp.set_defaults(on=None)
