"""`ccs counties`: the county reference data as this deployment sees it (the shipped
data with the policy file's overrides): who decides medical eligibility, whether that is
sourced or inferred from the population rule, and who manages cases."""

from __future__ import annotations

import json

from pydantic import ValidationError

from models.counties import County, county_names, find_county
from models.policy import Policy, load_policy
from models.settings import Settings
from starters.client import CcsError, fields_of


def add_verbs(verb) -> None:
    sp = verb("counties", cmd_counties, "the 58 counties: jurisdiction (sourced or inferred), care model, office")
    sp.add_argument("county", nargs="?", help="one county (any case, 'County' optional)")


def county_record(county: County) -> dict:
    plans = [county.wcm_plan] if county.wcm_plan else []
    if county.kaiser_wcm:
        plans.append("Kaiser Permanente")
    return {
        "name": county.name,
        "jurisdiction": county.jurisdiction,
        "medical_determination": "county" if county.jurisdiction == "independent" else "state",
        "status": "sourced" if county.jurisdiction_source else "inferred",
        "source": county.jurisdiction_source or "population rule (HSC 123850): verify with DHCS",
        "model": county.model,
        "wcm_plans": plans,
        "office": county.office.model_dump(),
    }


def counties(policy: Policy, name: str | None = None) -> list[dict]:
    names = county_names() if name is None else [name]
    found = []
    for n in names:
        try:
            county = find_county(n, policy.counties)
        except ValueError as e:  # an invalid override in the policy file
            raise CcsError(str(e)) from None
        if county is None:
            raise CcsError(f"unknown California county {n!r}; `ccs counties` lists all 58")
        found.append(county_record(county))
    return found


def _line(c: dict) -> str:
    plans = ", ".join(c["wcm_plans"]) if c["wcm_plans"] else "county (Classic)"
    return (f"{c['name']:<16} {c['jurisdiction']:<11} {c['status']:<8} {c['model']:<7} {plans}\n"
            f"{'':16} source: {c['source']}")


async def cmd_counties(args) -> None:
    try:
        policy = load_policy(Settings().policy_file)
    except ValidationError as e:
        raise CcsError("invalid policy file", fields_of(e)) from None
    except ValueError as e:
        raise CcsError(str(e)) from None
    except OSError as e:
        raise CcsError(f"cannot read the CCS_POLICY file: {e}") from None
    rows = counties(policy, args.county)
    if args.json:
        print(json.dumps({"counties": rows}, indent=2))
        return
    print(f"{'county':<16} {'jurisdiction':<11} {'status':<8} {'model':<7} case management (Medi-Cal members)")
    for c in rows:
        print(_line(c))
