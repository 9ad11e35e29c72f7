"""Ages, birthdays and calendar days in California time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta


def local_today(now: datetime, tz: str) -> date:
    """The calendar date in ``tz`` at instant ``now`` (an aware datetime)."""
    return now.astimezone(ZoneInfo(tz)).date()


def start_of_day(day: date, tz: str) -> datetime:
    """Midnight at the start of ``day`` in ``tz``, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz))


def birthday(dob: date, age: int) -> date:
    """The day a child born on ``dob`` turns ``age``.

    A child born on 29 February turns a year older on 1 March in common years:
    the anniversary has not yet come on 28 February, so coverage runs one day longer.
    """
    day = dob + relativedelta(years=age)
    if (dob.month, dob.day) == (2, 29) and (day.month, day.day) == (2, 28):
        day += timedelta(days=1)
    return day


def age_on(dob: date, day: date) -> int:
    """Completed years of age on ``day``."""
    years = relativedelta(day, dob).years
    # relativedelta counts 28 Feb as the leap-day child's anniversary; we do not.
    if years > 0 and day < birthday(dob, years):
        years -= 1
    return years
