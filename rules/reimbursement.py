"""Meals and lodging (SPEC §1): routing, caps and reimbursement; and the clock of a service
authorization request. Pure functions of a request, dates and the policy."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from models.case import Condition
from models.policy import Policy
from models.requests import CATEGORIES, Amounts, MealsLodgingRequest, ReceiptItem, Reimbursement, Route, Totals
from rules.ages import start_of_day
from rules.calendar import add_working_days, working_days_deadline

CENT = Decimal("0.01")


def _money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def local_when(at: datetime, tz: str, time: bool = True) -> str:
    """A due time as people in the county read it (notices, summaries)."""
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z" if time else "%Y-%m-%d")


def condition_problems(condition_id: str, conditions: list[Condition]) -> dict[str, str]:
    """A request must serve a condition the case found CCS-eligible."""
    eligible = [c.id for c in conditions if c.status == "eligible"]
    if condition_id in eligible:
        return {}
    known = "; eligible conditions: " + ", ".join(eligible) if eligible else "; the case has no eligible condition"
    what = "is not CCS-eligible" if any(c.id == condition_id for c in conditions) else "is not a condition of this case"
    return {"condition_id": f"{condition_id} {what}{known}"}


# ---- meals and lodging: asking -------------------------------------------------------


def emergency_deadline(request: MealsLodgingRequest, policy: Policy) -> date:
    """The last day an emergency trip may be requested: the first business day after the
    travel, counted from the day the travel ended (SPEC §1, meals and lodging)."""
    return add_working_days(request.travel_end, policy.meals_lodging.emergency_business_days_after)


def meals_lodging_problems(request: MealsLodgingRequest, today: date, policy: Policy) -> dict[str, str]:
    """Field path -> what is wrong, for the rules that need today or the policy. Empty: acceptable."""
    p = policy.meals_lodging
    problems: dict[str, str] = {}
    if len(request.travellers) > p.max_travellers:
        problems["travellers"] = f"at most {p.max_travellers} people may travel on one request"
    if request.travel_start > today + p.request_ahead_max:
        problems["travel_start"] = f"travel may be requested at most {p.request_ahead_max.days} days ahead"
    elif request.emergency:
        last = emergency_deadline(request, policy)
        if today > last:
            problems["travel_start"] = (f"an emergency trip that ended {request.travel_end} had to be requested "
                                        f"by {last} (the next business day after it); it is too late to request it")
    elif request.travel_start < today:
        problems["travel_start"] = (f"travel began {request.travel_start}: only an emergency may be requested "
                                    "after travel begins (set emergency: true if it was one)")
    return problems


def meals_lodging_route(request: MealsLodgingRequest, today: date, policy: Policy) -> Route:
    """Prior approval when asked early enough; later requests and emergencies go to exception review."""
    ahead = request.travel_start - today
    if request.emergency or ahead < policy.meals_lodging.prior_approval_min:
        return "exception_review"
    return "prior_approval"


def meals_lodging_decision_due(request: MealsLodgingRequest, route: Route, received: datetime,
                               policy: Policy) -> datetime:
    """Prior approval is decided before travel begins; exception review within the decision time."""
    due = received + policy.meals_lodging.decision_within
    if route == "prior_approval":
        due = min(due, start_of_day(request.travel_start, policy.timezone))
    return due


def receipts_due(request: MealsLodgingRequest, policy: Policy) -> datetime:
    """The end of the last day to send receipts, counted from the day after travel ends."""
    return start_of_day(request.travel_end + timedelta(days=1), policy.timezone) + policy.meals_lodging.receipts_within


# ---- meals and lodging: approving ----------------------------------------------------


def approval_caps(request: MealsLodgingRequest, policy: Policy) -> dict[str, Decimal | None]:
    """The most that may be approved per category; None means at cost."""
    p = policy.meals_lodging
    miles = min(request.round_trip_miles, Decimal(p.mileage_max_miles))
    return {
        "meals": _money(p.meals_per_person_per_day * len(request.travellers) * request.days),
        "lodging": _money(p.lodging_per_night * request.nights),
        "mileage": _money(p.mileage_rate * miles),
        "parking": None,
        "tolls": None,
        "fares": None,
    }


def _cap_basis(category: str, request: MealsLodgingRequest, policy: Policy) -> str:
    p = policy.meals_lodging
    return {
        "meals": f"{len(request.travellers)} people x {request.days} days x ${p.meals_per_person_per_day}",
        "lodging": f"{request.nights} nights x ${p.lodging_per_night}",
        "mileage": f"{min(request.round_trip_miles, Decimal(p.mileage_max_miles))} miles x ${p.mileage_rate}",
    }[category]


def approval_problems(approved: Amounts, request: MealsLodgingRequest, policy: Policy,
                      field: str = "approved") -> dict[str, str]:
    """Amounts above the policy caps, each with the cap and how it is reached."""
    problems = {}
    for category, cap in approval_caps(request, policy).items():
        amount = getattr(approved, category)
        if cap is not None and amount > cap:
            problems[f"{field}.{category}"] = (f"${amount} is above the policy cap of ${cap} "
                                               f"({_cap_basis(category, request, policy)})")
    return problems


def capped(amounts: Amounts, request: MealsLodgingRequest, policy: Policy) -> Amounts:
    """The amounts lowered to the policy caps (what a modification down to policy would approve)."""
    caps = approval_caps(request, policy)
    return Amounts(**{c: getattr(amounts, c) if caps[c] is None else min(getattr(amounts, c), caps[c])
                      for c in CATEGORIES})


# ---- meals and lodging: receipts and reimbursement --------------------------------------


def receipt_problems(items: list[ReceiptItem], request: MealsLodgingRequest, today: date) -> dict[str, str]:
    problems = {}
    for i, item in enumerate(items):
        if item.spent_on > today:
            problems[f"items.{i}.spent_on"] = f"{item.spent_on} is in the future"
        elif not request.travel_start <= item.spent_on <= request.travel_end:
            problems[f"items.{i}.spent_on"] = (f"{item.spent_on} is outside the trip "
                                               f"({request.travel_start} to {request.travel_end})")
    return problems


def reimbursement(approved: Amounts, receipts: list[ReceiptItem], policy: Policy,
                  people: int | None = None) -> Reimbursement:
    """What to pay: actual cost per category, never above the approval (more needs a new one).

    Meals are also capped per day (the policy rate x ``people``, when given) and lodging per
    night, so one expensive day cannot use up the allowance of the others. Mileage (gas) is
    claimed without a receipt; parking, tolls and fares (bus, train, air) are paid at cost."""
    p = policy.meals_lodging
    per_day: dict[str, Decimal | None] = {
        "meals": p.meals_per_person_per_day * people if people else None,
        "lodging": p.lodging_per_night,
    }
    by_day: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for item in receipts:
        by_day[(item.category, item.spent_on)] += item.amount
    claimed = {c: Decimal("0") for c in CATEGORIES}
    allowed = {c: Decimal("0") for c in CATEGORIES}
    for (category, _), amount in by_day.items():
        claimed[category] += amount
        cap = per_day.get(category)
        allowed[category] += amount if cap is None else min(amount, cap)
    payable = {c: _money(min(allowed[c], getattr(approved, c))) for c in CATEGORIES}
    return Reimbursement(
        claimed=Totals(**{c: _money(v) for c, v in claimed.items()}),
        payable=Amounts(**payable),
        not_payable=Totals(**{c: _money(claimed[c] - payable[c]) for c in CATEGORIES}),
        unreceipted=[c for c in CATEGORIES if getattr(approved, c) > 0 and claimed[c] == 0],
        total=_money(sum(payable.values(), Decimal("0"))),
    )


# ---- service authorization requests ---------------------------------------------------


def authorization_due(received: datetime, urgency: str, policy: Policy) -> datetime:
    """5 working days (California state holidays observed) routine; 72 hours expedited."""
    p = policy.sar
    if urgency == "expedited":
        return received.astimezone(timezone.utc) + p.expedited  # real hours, even across a DST change
    return working_days_deadline(received, p.routine_working_days, policy.timezone)


def authorization_extended_due(received: datetime, policy: Policy) -> datetime:
    """An extension runs to 14 calendar days from receipt."""
    return received + policy.sar.extended


def authorization_number(request_id: str, county: str) -> str:
    """Stable for a request (a replay or retry gives the same number), unique in practice."""
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:10].upper()
    return f"SAR-{re.sub(r'[^A-Z]', '', county.upper())}-{digest}"
