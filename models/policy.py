"""Every regulatory number in one model. A deployment overrides any of them with a
TOML file named by ``CCS_POLICY``; durations are ISO 8601 (``P7D``, ``PT5S``). Rates, caps and
fees may also change on a date (``[[change]]``, ``PolicyChange``): ``Policy.in_force(day)``.

Sources (SPEC §1): 22 CCR 41514 (application), 22 CCR 41610 (residential/financial,
renewal), 22 CCR 42132 (Notice of Action), 22 CCR 42160/42180 (appeal, fair hearing),
22 CCR 41684 (enrollment fee), HSC 123900 (fee exemptions), HSC 123870 (financial), HSC 123850 (jurisdiction).
"""

from __future__ import annotations

import hashlib
import tomllib
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IntakePolicy(_Frozen):
    application_packet_within: timedelta = timedelta(days=5)
    second_notice_after: timedelta = timedelta(days=20)
    # The referral date stays the application date only if the application comes back within this.
    application_date_grace: timedelta = timedelta(days=20)
    # An application still not back this long after the second notice closes the case with a
    # Notice of Action. County practice (no state rule found for the period).
    close_unreturned_after: timedelta = timedelta(days=30)


class RecordsPolicy(_Frozen):
    reminder_every: timedelta = timedelta(days=7)
    escalate_after: timedelta = timedelta(days=30)


class EligibilityPolicy(_Frozen):
    documents_request_within: timedelta = timedelta(days=5)
    family_response_within: timedelta = timedelta(days=30)
    decision_within: timedelta = timedelta(days=30)
    agi_limit: Decimal = Decimal("40000")
    cost_share_of_agi: Decimal = Decimal("0.20")
    medical_review_within: timedelta = timedelta(days=30)


class NoticePolicy(_Frozen):
    noa_within: timedelta = timedelta(days=7)
    appeal_window: timedelta = timedelta(days=30)
    appeal_answer_within: timedelta = timedelta(days=21)
    fair_hearing_window: timedelta = timedelta(days=14)


class ActivePolicy(_Frozen):
    renewal_every_years: int = 1
    renewal_notice_before: timedelta = timedelta(days=30)
    # A renewal not completed by its due date (the end of the notice period, 22 CCR 41610) plus
    # this closes the case with a Notice of Action. County practice: no grace by default.
    renewal_close_after: timedelta = timedelta(days=0)
    enrollment_fee_grace: timedelta = timedelta(days=61)
    assign_case_manager_within: timedelta = timedelta(days=5)
    transition_planning_age: int = 14
    transition_review_ages: tuple[int, ...] = (18, 20)
    coverage_end_age: int = 21
    milestone_task_within: timedelta = timedelta(days=30)


class FeePolicy(_Frozen):
    """The annual enrollment fee (HSC 123900; 22 CCR 41674) and the county's assessment fee."""

    # HHS poverty guidelines for 2025 (48 contiguous states): $15,650 for one person, $5,500
    # for each additional person; derived from the 500% table of
    # https://vtlawhelp.org/500-federal-poverty-level-fpl ($78,250 for one, $27,500 more each).
    # Update them every year when HHS publishes new guidelines.
    poverty_guideline_first_person: Decimal = Decimal("15650")
    poverty_guideline_each_additional: Decimal = Decimal("5500")
    # HSC 123900(f)(3): no enrollment fee when the family's gross income is under 200% of it.
    exempt_under_poverty_percent: Decimal = Decimal("200")
    # HSC 123900(b): a sliding scale by family size and income set by DHCS (22 CCR 41674 points
    # to the CCS Annual Enrollment Fee Schedule, 22 CCR 41479). COUNTY PRACTICE: that schedule
    # was not found, so these bands are placeholders, not DHCS's amounts: (income from this
    # percent of the poverty guideline, yearly fee). Set the current DHCS schedule here.
    enrollment_fee_bands: tuple[tuple[Decimal, Decimal], ...] = (
        (Decimal("200"), Decimal("20")),
        (Decimal("300"), Decimal("50")),
        (Decimal("400"), Decimal("100")),
    )
    # Some counties charge a yearly assessment fee too (Placer: $20 a year,
    # https://www.placer.ca.gov/FAQ.aspx?QID=1062). COUNTY PRACTICE: 0 means none.
    assessment_fee: Decimal = Decimal("0")


class MealsLodgingPolicy(_Frozen):
    prior_approval_min: timedelta = timedelta(days=5)
    prior_approval_recommended: timedelta = timedelta(days=7)
    emergency_business_days_after: int = 1
    meals_per_person_per_day: Decimal = Decimal("15.00")
    lodging_per_night: Decimal = Decimal("150.00")
    mileage_rate: Decimal = Decimal("0.21")
    mileage_max_miles: int = 1000
    receipts_within: timedelta = timedelta(days=60)
    receipts_reminder_every: timedelta = timedelta(days=14)
    decision_within: timedelta = timedelta(days=3)
    max_travellers: int = 6
    # A request further ahead than this is a data-entry error, not a travel plan.
    request_ahead_max: timedelta = timedelta(days=365)


class SarPolicy(_Frozen):
    # Routine: 5 working days from receipt of all the information needed to decide (a request
    # missing it is pended, and the family told in writing); expedited: 72 hours from receipt of
    # the request; a deferral for more information runs at most 14 calendar days from receipt.
    # Source: HSC 1367.01 as applied to Medi-Cal in Health Net's Medi-Cal provider manual,
    # "Authorization and Referral Timelines" and "Notification Delays"
    # (providerlibrary.healthnetcalifornia.com/medi-cal/provider-manual/provider-oversight/
    # service-and-quality-requirements-/authorization-and-referral-timelines-medi-cal.html).
    routine_working_days: int = 5
    expedited: timedelta = timedelta(hours=72)
    extended: timedelta = timedelta(days=14)
    reminder_before: timedelta = timedelta(days=1)
    escalate_before: timedelta = timedelta(hours=12)
    authorization_valid_for: timedelta = timedelta(days=180)


class GrievancePolicy(_Frozen):
    # The managed-care standard: acknowledged in writing within 5 calendar days (42 CFR 438.406,
    # as California Health & Wellness's grievance process page states it), resolved within 30
    # days (HSC 1368.01(a)); where health is at imminent and serious risk, expedited: a written
    # disposition within 3 calendar days (HSC 1368.01(b), 28 CCR 1300.68.01(a)(2)), i.e. 72 hours.
    # The product sends the acknowledgement at once, when the grievance is filed (so no setting).
    resolve_within: timedelta = timedelta(days=30)
    expedited: timedelta = timedelta(hours=72)
    # County practice: a reminder to the case manager and an escalation before the due time.
    reminder_before: timedelta = timedelta(days=5)
    escalate_before: timedelta = timedelta(days=1)


class SupervisionPolicy(_Frozen):
    escalation_grace: timedelta = timedelta(days=3)
    # A possible duplicate (same name and date of birth, different CINs) waits this long for a supervisor.
    duplicate_review_within: timedelta = timedelta(days=5)
    # How long a case may sit in a stage before `ccs stuck` lists it.
    stuck_after: dict[str, timedelta] = Field(
        default_factory=lambda: {
            "intake": timedelta(days=20),
            "records": timedelta(days=30),
            "eligibility": timedelta(days=30),
            "medical_review": timedelta(days=30),
            "denied": timedelta(days=37),
            "appeal": timedelta(days=21),
            "active": timedelta(days=400),
        }
    )


class RunPolicy(_Frozen):
    # Continue-as-new after this many events, or once a run is this old.
    continue_as_new_after_events: int = 2000
    continue_as_new_after: timedelta = timedelta(days=365)


class RetentionPolicy(_Frozen):
    # A closed case's record (its status, requests, notices) is kept this long after closure,
    # then purged unless on legal hold. Ten years, as Medi-Cal requires records to be kept
    # (Welfare and Institutions Code 14124.1); a county with a longer rule sets its own.
    keep_closed_for: timedelta = timedelta(days=3653)


# The sections a dated change may change: those a request takes on its date (rules/policy_dates.py)
# and the fees assessed on a date. Case clocks (intake, records, notices, ...) take edits in place.
DATED_SECTIONS = ("meals_lodging", "sar", "grievance", "fees")


class PolicyChange(_Frozen):
    """Values that change on a date (a new meal cap, a new mileage rate): from ``effective`` on,
    ``values`` (sections of the policy, e.g. ``{"meals_lodging": {"mileage_rate": "0.22"}}``)
    replace the earlier ones. In the TOML file: a ``[[change]]`` table with ``effective``, an
    optional ``source`` and the sections' new values (``[change.meals_lodging]``)."""

    effective: date
    source: str | None = None  # where the new values come from (a DHCS letter, a county memo)
    values: dict[str, Any]


class Policy(_Frozen):
    timezone: str = "America/Los_Angeles"
    intake: IntakePolicy = IntakePolicy()
    records: RecordsPolicy = RecordsPolicy()
    eligibility: EligibilityPolicy = EligibilityPolicy()
    notices: NoticePolicy = NoticePolicy()
    active: ActivePolicy = ActivePolicy()
    meals_lodging: MealsLodgingPolicy = MealsLodgingPolicy()
    fees: FeePolicy = FeePolicy()
    sar: SarPolicy = SarPolicy()
    grievance: GrievancePolicy = GrievancePolicy()
    supervision: SupervisionPolicy = SupervisionPolicy()
    run: RunPolicy = RunPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    # Per-county overrides of the reference data, e.g. {"Kern": {"jurisdiction": "dependent"}}.
    counties: dict[str, dict[str, str | bool | None]] = Field(default_factory=dict)
    # Dated changes, oldest first; the values above are those in force before the first.
    changes: tuple[PolicyChange, ...] = ()

    @model_validator(mode="after")
    def _changes_apply(self) -> "Policy":
        """Each change names known values with valid values, one change a date: checked at load,
        so a bad file is refused before any case sees it."""
        seen: set[date] = set()
        for change in self.changes:
            if change.effective in seen:
                raise ValueError(f"two changes take effect on {change.effective}: put their values in one change")
            seen.add(change.effective)
            if not change.values:
                raise ValueError(f"the change effective {change.effective} changes nothing: add the new values, "
                                 "e.g. [change.meals_lodging] mileage_rate = \"0.22\"")
            other = sorted(set(change.values) - set(DATED_SECTIONS))
            if other:
                raise ValueError(f"the change effective {change.effective} names {', '.join(other)}: a dated change "
                                 f"may change {', '.join(DATED_SECTIONS)} (the values requests and fees are "
                                 "computed with on a date); change other values in place")
            try:
                self.in_force(change.effective)
            except ValidationError as e:
                wrong = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
                raise ValueError(f"the change effective {change.effective}: {wrong}") from None
        return self

    @field_validator("changes")
    @classmethod
    def _oldest_first(cls, changes: tuple[PolicyChange, ...]) -> tuple[PolicyChange, ...]:
        return tuple(sorted(changes, key=lambda c: c.effective))

    def in_force(self, on: date) -> "Policy":
        """The values in force on ``on``: these, with every change effective by then applied in
        date order. The result has no changes of its own (what a request keeps for its life)."""
        if not self.changes:
            return self
        due = [c for c in self.changes if c.effective <= on]
        data = self.model_dump(exclude={"changes"})
        for change in due:
            data = _merge(data, change.values)
        return Policy.model_validate(data)

    def version(self) -> str:
        """The content hash that names this policy (values and changes): equal files, equal versions."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class PublishedPolicy(_Frozen):
    """The deployment's current policy, as ``ccs policy publish`` last stored it."""

    version: str
    published_at: datetime
    policy: Policy


def _merge(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s values, tables merged key by key (a change names only what changes)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _changes_from_toml(data: dict) -> dict:
    """TOML's ``[[change]]`` tables (effective, source, sections) as ``changes``."""
    raw = data.pop("change", [])
    if not isinstance(raw, list):
        raise ValueError("change must be an array of tables: write each one as [[change]]")
    changes = []
    for i, table in enumerate(raw):
        if not isinstance(table, dict) or "effective" not in table:
            raise ValueError(f"change {i + 1} has no effective date: add effective = \"YYYY-MM-DD\"")
        values = {k: v for k, v in table.items() if k not in ("effective", "source")}
        changes.append({"effective": table["effective"], "source": table.get("source"), "values": values})
    return {**data, "changes": data.get("changes", []) + changes}


def load_policy(path: Path | str | None) -> Policy:
    """The default policy, overridden by the TOML file at ``path`` if given."""
    if not path:
        return Policy()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"CCS_POLICY file not found: {p}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"CCS_POLICY file {p} is not valid TOML: {e}") from None
    return Policy.model_validate(_changes_from_toml(data))
