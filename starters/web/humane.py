"""Times and dates as a California case manager reads them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")


def local(at: datetime, tz: ZoneInfo = PACIFIC) -> datetime:
    return at.astimezone(tz)


def human_date(d: date | datetime | None) -> str:
    """``May 5, 2018``: dates as people write them."""
    if d is None:
        return "—"
    if isinstance(d, datetime):
        d = local(d).date()
    return f"{d:%B} {d.day}, {d.year}"


def human_time(at: datetime | None) -> str:
    """``May 5, 2026, 3:04 PM PDT`` in California time."""
    if at is None:
        return "—"
    t = local(at)
    hour = t.hour % 12 or 12
    return f"{human_date(t.date())}, {hour}:{t:%M} {'AM' if t.hour < 12 else 'PM'} {t:%Z}"


def _span(delta: timedelta) -> str:
    secs = abs(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = int(secs // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


def time_left(due: datetime | None, now: datetime | None = None) -> str:
    """``due in 3 days`` or ``overdue by 2 hours``."""
    if due is None:
        return ""
    delta = due - (now or datetime.now(timezone.utc))
    return f"overdue by {_span(delta)}" if delta.total_seconds() < 0 else f"due in {_span(delta)}"


def age(born: date, today: date | None = None) -> str:
    today = today or datetime.now(PACIFIC).date()
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if years >= 2:
        return f"{years} years"
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    return f"{months} month{'s' if months != 1 else ''}"


def words(name: str | None) -> str:
    """``medical_review`` -> ``medical review``."""
    return (name or "").replace("_", " ").replace(":", ": ")


def urgency(due: datetime, now: datetime | None = None) -> str:
    """Which band of My work a task falls in."""
    now = now or datetime.now(timezone.utc)
    if due < now:
        return "overdue"
    today_end = datetime.combine(local(now).date() + timedelta(days=1), datetime.min.time(), PACIFIC)
    if due < today_end:
        return "today"
    if due < today_end + timedelta(days=6):
        return "this week"
    return "later"


FILTERS = {"human_date": human_date, "human_time": human_time, "time_left": time_left, "age": age,
           "words": words}
