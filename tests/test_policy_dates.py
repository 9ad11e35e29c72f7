"""Policy values that change on a date (issue 15; SPEC §1 meals and lodging: "rates and caps
change on dates: a request uses the values in force on its date; a clock already running keeps
the value it started with"), and a policy published after a case was referred reaching that
running case's later requests. Pure rules, then time-skipping cases through the client."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import pytest_asyncio
from pydantic import ValidationError
from sqlalchemy import text
from temporalio.worker import Replayer

from activities.policy import current_published, publish_policy
from models.policy import Policy, load_policy
from rules.ages import start_of_day
from rules.policy_dates import request_policy
from tests.conftest import CONVERTER, INTAKE
from tests.helpers import CM, act, referral, settle
from tests.test_case_requests import example, trip
from tests.test_lifecycle import to_active
from workflows.registry import WORKFLOWS

JULY = date(2027, 7, 1)
DATED = f"""
[meals_lodging]
lodging_per_night = "160.00"

[[change]]
effective = {JULY}
source = "synthetic county memo: new meal cap and receipts period"
[change.meals_lodging]
meals_per_person_per_day = "18.00"
receipts_within = "P30D"

[[change]]
effective = "2026-01-01"
[change.sar]
routine_working_days = 4
"""


@pytest_asyncio.fixture
async def unpublished(engine, clean_db):
    """No published policy before or after: other tests' cases must not take this one's."""
    yield
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE policy_versions, policy_publications"))


def policy_file(tmp_path, text: str):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_values_in_force_on_a_date(tmp_path):
    policy = load_policy(policy_file(tmp_path, DATED))
    assert [c.effective for c in policy.changes] == [date(2026, 1, 1), JULY]  # oldest first, whatever the file order
    before, on = policy.in_force(JULY - timedelta(days=1)), policy.in_force(JULY)
    assert before.meals_lodging.meals_per_person_per_day == D("15.00")
    assert on.meals_lodging.meals_per_person_per_day == D("18.00")
    assert on.meals_lodging.receipts_within == timedelta(days=30)
    # A change names only what changes: the rest stays as the file (or the default) sets it.
    assert on.meals_lodging.lodging_per_night == D("160.00") and on.sar.routine_working_days == 4
    assert policy.in_force(date(2025, 12, 31)).sar.routine_working_days == 5
    assert on.changes == ()  # what a request keeps: the values, not the schedule
    assert Policy().in_force(JULY) == Policy()


def test_a_request_keeps_receipt_day_clocks_and_travel_day_rates(tmp_path):
    policy = load_policy(policy_file(tmp_path, DATED))
    # Asked in June for a July trip: July's meal cap (it prices the trip), June's receipts period (a clock).
    june_for_july = request_policy(policy, JULY - timedelta(days=20), JULY + timedelta(days=5)).meals_lodging
    assert june_for_july.meals_per_person_per_day == D("18.00")
    assert june_for_july.receipts_within == timedelta(days=60)
    assert request_policy(policy, JULY, JULY).meals_lodging.receipts_within == timedelta(days=30)
    assert request_policy(policy, JULY, None).sar.routine_working_days == 4


@pytest.mark.parametrize("change, expected", [
    ('effective = "2027-13-01"\n[change.meals_lodging]\nmileage_rate = "0.3"', "changes.0.effective"),
    ('effective = 2027-07-01\n[change.meals_lodging]\nmeal_cap = "18"', "meals_lodging.meal_cap: Extra inputs"),
    ('effective = 2027-07-01\n[change.travel]\nmileage_rate = "0.3"', "names travel"),
    ('effective = 2027-07-01\n[change.intake]\nsecond_notice_after = "P10D"', "names intake"),
    ('effective = 2027-07-01\n[change.meals_lodging]\nmileage_rate = "a lot"', "mileage_rate: Input should be"),
    ('effective = 2027-07-01', "changes nothing"),
    ('[change.meals_lodging]\nmileage_rate = "0.3"', "change 1 has no effective date"),
])
def test_a_bad_change_is_refused_at_load(tmp_path, change, expected):
    with pytest.raises((ValidationError, ValueError)) as e:
        load_policy(policy_file(tmp_path, f"[[change]]\n{change}\n"))
    text = str(e.value) if not isinstance(e.value, ValidationError) else " ".join(
        ".".join(map(str, err["loc"])) + " " + err["msg"] for err in e.value.errors())
    assert expected in text


def test_two_changes_on_one_date_are_refused(tmp_path):
    one = '[[change]]\neffective = 2027-07-01\n[change.meals_lodging]\nmileage_rate = "0.3"\n'
    with pytest.raises(ValidationError, match="two changes take effect on 2027-07-01"):
        load_policy(policy_file(tmp_path, one + one))


async def _trip(cases, cid, today, days_ahead: int):
    status = await cases.act(cid, "request_meals_lodging", act(CM, request=trip(today, days_ahead)))
    rid = status.requests[-1].request_id
    return await settle(cases, rid, lambda r: r.state != "starting")


async def _approve(cases, cid, rid):
    return await cases.act(cid, "decide_meals_lodging", example("decide_meals_lodging", request_id=rid))


def receipts_due(req, days: int):
    return start_of_day(req.request.travel_end + timedelta(days=1), "America/Los_Angeles") + timedelta(days=days)


async def test_a_rate_change_on_a_date_reaches_requests_of_that_date(ts_worker, tmp_path, unpublished):
    env, cases = ts_worker
    today = (await env.get_current_time()).date()
    change_on = today + timedelta(days=20)
    cases.policy = load_policy(policy_file(tmp_path, DATED.replace(str(JULY), change_on.isoformat())))
    status = await cases.refer(referral(first_name="Dated"), INTAKE)
    cid = status.case_id
    await to_active(cases, cid)
    today = status.referral_date
    # Travel before the change: the old cap (2 people x 2 days x $15); after it: $18.
    before = await _trip(cases, cid, today, 10)
    after = await _trip(cases, cid, today, 30)
    assert (before.caps["meals"], after.caps["meals"]) == (D("60.00"), D("72.00"))
    before = await _approve(cases, cid, before.request_id)
    assert before.receipts_due == receipts_due(before, 60)
    await env.sleep(timedelta(days=25))  # the change is in force now
    later = await _trip(cases, cid, today + timedelta(days=25), 10)
    later = await _approve(cases, cid, later.request_id)
    assert later.caps["meals"] == D("72.00") and later.receipts_due == receipts_due(later, 30)
    # The clock that was running keeps the value it started with.
    before = await cases.show(before.request_id)
    assert before.receipts_due == receipts_due(before, 60) and before.state == "approved"


async def test_a_policy_published_after_referral_reaches_the_running_cases_next_request(
        ts_worker, tmp_path, sessions, unpublished):
    env, cases = ts_worker
    status = await cases.refer(referral(first_name="Published"), INTAKE)
    cid = status.case_id
    await to_active(cases, cid)
    today = status.referral_date
    assert (await cases.show(cid)).policy_version == Policy().version()
    first = await _trip(cases, cid, today, 10)
    assert first.caps["meals"] == D("60.00")
    # The operator edits the policy file and publishes it (`ccs policy publish`) while the case runs.
    raised = load_policy(policy_file(tmp_path, '[meals_lodging]\nmeals_per_person_per_day = "20.00"\n'))
    version, changed = await publish_policy(sessions, raised)
    assert changed and (await publish_policy(sessions, raised)) == (version, False)
    assert (await current_published(sessions)).version == version
    second = await _trip(cases, cid, today, 12)
    assert second.caps["meals"] == D("80.00")
    assert (await cases.show(first.request_id)).caps["meals"] == D("60.00")  # already running: unchanged
    assert (await cases.show(cid)).policy_version == version
    # The policy the case took is in its history: a replay takes it again without asking.
    history = await env.client.get_workflow_handle(cid).fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=CONVERTER).replay_workflow(history)


async def test_ccs_policy_shows_the_values_in_force_and_publishes_once(tmp_path, monkeypatch, capsys, database_url,
                                                                        sessions, unpublished):
    import asyncio
    import json

    from starters.cli import main

    monkeypatch.setenv("CCS_POLICY", str(policy_file(tmp_path, DATED)))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CCS_HOME", str(tmp_path / "home"))

    async def ccs(*argv) -> tuple[int, dict]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, shown = await ccs("policy", "show", "--on", JULY.isoformat())
    assert code == 0 and shown["in_force"]["meals_lodging"]["meals_per_person_per_day"] == "18.00"
    assert [c["effective"] for c in shown["changes"]] == ["2026-01-01", JULY.isoformat()]
    assert (await ccs("policy", "publish"))[1] == {"version": shown["version"], "changed": True}
    assert (await ccs("policy", "publish"))[1] == {"version": shown["version"], "changed": False}
    assert (await current_published(sessions)).policy.in_force(JULY).meals_lodging.receipts_within == timedelta(days=30)
    policy_file(tmp_path, '[[change]]\neffective = 2027-07-01\n[change.intake]\nsecond_notice_after = "P9D"\n')
    code, refused = await ccs("policy", "publish")
    assert code == 2 and "names intake" in json.dumps(refused)
    assert (await current_published(sessions)).version == shown["version"]  # nothing changed


def test_the_readmes_policy_files_load(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert any("[[change]]" in b for b in blocks)
    for block in blocks:
        load_policy(policy_file(tmp_path, block))


async def test_the_fee_is_assessed_with_the_fees_in_force_that_day(ts_worker, unpublished):
    """HSC 123900 amounts change yearly (poverty guidelines, DHCS's schedule): a case becoming
    active after a dated change owes the new amounts; one active before keeps what it was told."""
    env, cases = ts_worker
    today = (await env.get_current_time()).date()
    cases.policy = Policy.model_validate({"changes": [
        {"effective": today + timedelta(days=5), "values": {"fees": {"assessment_fee": "20"}}}]})
    scale = {"residential_in_county": True, "family_agi": "150000", "expected_annual_cost": "40000",
             "family_size": 3, "gross_income": "160000"}
    before = (await cases.refer(referral(first_name="FeeBefore"), INTAKE)).case_id
    await to_active(cases, before, finances=scale)
    await env.sleep(timedelta(days=6))
    after = (await cases.refer(referral(first_name="FeeAfter"), INTAKE)).case_id
    await to_active(cases, after, finances=scale)
    fees = [(await cases.show(cid)).enrollment_fee for cid in (before, after)]
    assert [(f.amount, f.assessment_fee) for f in fees] == [(D("100"), D("0")), (D("100"), D("20"))]

