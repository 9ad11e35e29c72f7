"""Sample data for every letter kind: synthetic people only. Tests, the benchmark and the
README screenshot render these."""

from __future__ import annotations

from datetime import date

from letters.catalog import KINDS
from letters.render import LetterData

FACTS: dict[str, dict[str, str]] = {
    "documents_request": {"due_on": "2026-04-30"},
    "notice_of_action": {"action": "deny_case", "reason": "Your family lives in another county.",
                         "basis": "eligibility", "appeal_until": "2026-04-30"},
    "case_closed": {"closure": "aged_out"},
    "appeal_decision": {"outcome": "upheld", "hearing_until": "2026-05-14"},
    "transfer": {"from_county": "Fresno"},
    "renewal_notice": {"renew_by": "2027-03-31"},
    "records_reminder": {"reminder": "2"},
    "meals_lodging_received": {"travel_start": "2026-04-10", "travel_end": "2026-04-12", "decide_by": "2026-04-08"},
    "meals_lodging_approved": {"travel_start": "2026-04-10", "travel_end": "2026-04-12", "amount": "$245.00",
                               "receipts_by": "2026-06-11"},
    "reimbursement": {"travel_start": "2026-04-10", "travel_end": "2026-04-12", "amount": "$212.40"},
    "receipts_reminder": {"travel_start": "2026-04-10", "travel_end": "2026-04-12", "receipts_by": "2026-06-11"},
    "receipts_expired": {"travel_start": "2026-04-10", "travel_end": "2026-04-12"},
    "request_withdrawn": {"service": "physical therapy"},
    "request_cancelled": {"travel_start": "2026-04-10", "travel_end": "2026-04-12"},
    "case_closed_receipts": {"travel_start": "2026-04-10", "travel_end": "2026-04-12", "receipts_by": "2026-06-11"},
    "authorization_extended": {"service": "physical therapy", "reason": "We need notes from the doctor.",
                               "decide_by": "2026-04-14"},
    "authorization_approved": {"service": "physical therapy", "number": "KER-2026-000123",
                               "valid_from": "2026-04-01", "valid_until": "2026-09-28"},
    "authorization_pended": {"service": "physical therapy", "information": "Notes from the last visit to the doctor.",
                             "working_days": "5"},
    "grievance_acknowledged": {"resolve_by": "2026-04-30"},
    "grievance_resolved": {"resolution": "We found a new clinic for your child. The first visit is on May 4."},
}


def sample(kind: str, language: str = "en", county: str = "Kern", **over) -> LetterData:
    fields = dict(kind=kind, preferred_language=language, case_id="case-0a1b2c3d4e5f60718293",
                  child_name="Mateo Testcase", county=county, jurisdiction="county",
                  on=date(2026, 3, 31), facts=FACTS.get(kind, {}))
    fields.update(over)
    return LetterData(**fields)


def every_kind() -> list[str]:
    return sorted(KINDS)
