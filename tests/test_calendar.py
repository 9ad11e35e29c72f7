"""Working days around California state holidays and weekends; the 72-hour expedited clock."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.policy import Policy
from rules.calendar import add_working_days, is_working_day, next_working_day, working_days_deadline
from rules.reimbursement import authorization_due, authorization_extended_due

LA = ZoneInfo("America/Los_Angeles")
POLICY = Policy()


@pytest.mark.parametrize("day", [
    date(2026, 11, 26), date(2026, 11, 27),  # Thanksgiving and the day after
    date(2026, 12, 25),  # Christmas
    date(2027, 1, 1),  # New Year's Day
    date(2026, 11, 28), date(2026, 11, 29),  # a weekend
])
def test_not_working_days(day):
    assert not is_working_day(day)


def test_ordinary_weekday_is_a_working_day():
    assert is_working_day(date(2026, 11, 24))


@pytest.mark.parametrize("start, days, expected", [
    (date(2026, 11, 25), 1, date(2026, 11, 30)),  # Wed before Thanksgiving -> the Monday after
    (date(2026, 11, 23), 5, date(2026, 12, 2)),  # Thanksgiving week: 5 working days end Wed Dec 2
    (date(2026, 12, 24), 1, date(2026, 12, 28)),  # Christmas on a Friday, then the weekend
    (date(2026, 12, 31), 1, date(2027, 1, 4)),  # New Year's Day on a Friday
    (date(2026, 12, 23), 5, date(2026, 12, 31)),  # Christmas inside the window
    (date(2026, 12, 28), 4, date(2027, 1, 4)),  # New Year's Day inside the window
    (date(2026, 11, 20), 1, date(2026, 11, 23)),  # Friday -> Monday
    (date(2026, 11, 21), 1, date(2026, 11, 23)),  # from a Saturday
    (date(2026, 11, 24), 0, date(2026, 11, 24)),
])
def test_add_working_days(start, days, expected):
    assert add_working_days(start, days) == expected


def test_negative_working_days_rejected():
    with pytest.raises(ValueError):
        add_working_days(date(2026, 11, 24), -1)


def test_next_working_day_skips_holiday_weekend():
    assert next_working_day(date(2027, 1, 15)) == date(2027, 1, 19)  # MLK Day Monday 18 Jan 2027


def test_routine_sar_due_at_end_of_fifth_working_day_in_thanksgiving_week():
    received = datetime(2026, 11, 23, 10, 0, tzinfo=LA)
    due = working_days_deadline(received, 5, POLICY.timezone)
    assert due == datetime(2026, 12, 3, 0, 0, tzinfo=LA)
    assert authorization_due(received, "routine", POLICY) == due
    # Without the two holidays it would have been due at the end of Monday 30 November.
    assert due - timedelta(days=2) > datetime(2026, 11, 30, 23, 59, tzinfo=LA)


def test_received_late_on_a_friday_counts_from_the_next_working_day():
    received = datetime(2026, 12, 18, 23, 30, tzinfo=LA)  # Friday night
    # Mon 21, Tue 22, Wed 23, Thu 24, (Fri 25 Christmas), Mon 28.
    assert authorization_due(received, "routine", POLICY) == datetime(2026, 12, 29, tzinfo=LA)


def test_routine_deadline_uses_local_date_not_utc():
    # 17:00 PST on Tuesday is already Wednesday in UTC; the clock starts on Tuesday.
    received = datetime(2026, 11, 17, 17, 0, tzinfo=LA)
    assert authorization_due(received, "routine", POLICY) == datetime(2026, 11, 25, tzinfo=LA)


def test_expedited_is_72_real_hours_over_holidays_and_dst():
    received = datetime(2026, 11, 26, 9, 0, tzinfo=LA)  # Thanksgiving morning
    assert authorization_due(received, "expedited", POLICY) == received + timedelta(hours=72)
    assert authorization_due(received, "expedited", POLICY).astimezone(LA).date() == date(2026, 11, 29)
    # Across the end of daylight saving time (1 Nov 2026) the wall clock shows one hour less.
    before_dst_end = datetime(2026, 10, 31, 12, 0, tzinfo=LA)
    due = authorization_due(before_dst_end, "expedited", POLICY).astimezone(LA)
    assert (due.date(), due.hour) == (date(2026, 11, 3), 11)


def test_extension_is_14_calendar_days_from_receipt():
    received = datetime(2026, 11, 23, 10, 0, tzinfo=LA)
    assert authorization_extended_due(received, POLICY) == received + timedelta(days=14)
