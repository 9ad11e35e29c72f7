"""Working days: California state holidays and weekends are not working days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

import holidays

from rules.ages import local_today, start_of_day


# Built at import, outside any workflow sandbox: the library loads its tables lazily
# (imports, locale lookups), which the sandbox refuses. The dates are deterministic.
_PRELOADED = range(2000, 2071)
_HOLIDAYS = holidays.country_holidays("US", subdiv="CA", years=_PRELOADED)
_BY_YEAR = {y: frozenset(d for d in _HOLIDAYS if d.year == y) for y in _PRELOADED}


@lru_cache(maxsize=16)
def _ca_holidays(year: int) -> frozenset[date]:
    if year in _BY_YEAR:
        return _BY_YEAR[year]
    return frozenset(holidays.country_holidays("US", subdiv="CA", years=year).keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _ca_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while days:
        day += timedelta(days=1)
        if is_working_day(day):
            days -= 1
    return day


def working_days_deadline(received: datetime, days: int, tz: str) -> datetime:
    """End of the ``days``-th working day after the day ``received`` (local time)."""
    last = add_working_days(local_today(received, tz), days)
    return start_of_day(last + timedelta(days=1), tz)


def next_working_day(day: date) -> date:
    return add_working_days(day, 1)
