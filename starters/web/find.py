"""Find a child: by Medi-Cal number (CIN), by name and date of birth, or by last name and
date of birth, through the identity index's keyed hashes (no plaintext PHI column), within
the person's scope. Every search is in the access log (which cases it found, never what
was typed)."""

from __future__ import annotations

from datetime import date

from activities.identity import find_cases
from starters.api.access_log import record_access
from starters.api.auth import Principal
from starters.api.problems import ApiProblem
from starters.api.scope import case_in_scope

SEARCH_ROW = "(search)"


class FindError(Exception):
    """The search cannot run as asked: what to type instead."""


def _criteria(values: dict[str, str]) -> dict:
    cin = values.get("cin", "").strip().upper() or None
    first, last = values.get("first_name", "").strip() or None, values.get("last_name", "").strip() or None
    born = values.get("date_of_birth", "").strip()
    try:
        dob = date.fromisoformat(born) if born else None
    except ValueError:
        raise FindError(f"{born!r} is not a date: use the date picker, or YYYY-MM-DD") from None
    if not cin and not (last and dob):
        raise FindError("search by Medi-Cal number (CIN), or by last name and date of birth "
                        "(the first name narrows it)")
    return {"cin": cin, "first_name": first, "last_name": last, "date_of_birth": dob}


async def find_child(services, who: Principal, values: dict[str, str], channel: str = "web") -> list[str]:
    criteria = _criteria(values)
    async with services.sessions() as session:
        try:
            found = await find_cases(session, services.cases.secret, **criteria)
        except ValueError as e:
            raise FindError(str(e)) from None
    await record_access(services.sessions, who, SEARCH_ROW, f"{channel}:find:{len(found)}")
    visible = []
    for case_id in found:
        try:
            await case_in_scope(services, who, case_id)
        except ApiProblem:
            continue
        visible.append(case_id)
        await record_access(services.sessions, who, case_id, f"{channel}:find")
    return visible
