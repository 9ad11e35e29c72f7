"""The words of every notice to staff, pinned: a notice's subject and body go into activity
inputs and outbox rows, so moving its words (to letters/notices.py) must not change one byte.

Each notice is produced by the workflow's own clock or step on sample data (the workflow
object is built without a Temporal worker: its clock is a fixed timer target), and compared
with the text the workflow code wrote before the words moved."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import UndefinedError
from temporalio import workflow

from letters.catalog import KINDS as LETTERS
from letters.notices import STAFF, notice_words
from models.case import Task
from models.policy import Policy
from models.requests import GrievanceInput, GrievanceRequest
from workflows.authorization import ServiceAuthorizationWorkflow
from workflows.case import ChildCaseWorkflow
from workflows.grievance import GrievanceWorkflow
from workflows.meals_lodging import MealsLodgingWorkflow

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)  # the timer's target: 09:30 PST
DUE = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)  # 00:00 PST
POLICY = Policy()


def fire(cls, state, clock: str, arg: str = "") -> list[tuple[str, str, str | None, str, str]]:
    """The notices a clock's handler queues: (kind, to, address, subject, body)."""
    wf = object.__new__(cls)
    wf._setup()
    wf.s = state
    wf._firing_at = AT
    wf._notice_life = lambda: ""  # a request's asks workflow.patched; keys are not under test
    cls.HANDLERS.clock_of(clock).fire(wf, arg)
    return [(n.kind, n.to, n.address, n.subject, n.body) for n in wf._draft.notices]


def case_state(**kw) -> SimpleNamespace:
    task = Task(id="C7-T3", kind="records", title="Obtain medical records from the referring provider",
                assignee="cm.rivera", due=DUE, opened_at=AT - timedelta(days=30))
    return SimpleNamespace(case_id="C7", seq=4, notices_sent=[], policy=POLICY, case_manager="cm.rivera",
                           county="Fresno", tasks={task.id: task}, child=SimpleNamespace(guardian=None),
                           referrer=SimpleNamespace(email="dr@clinic.example", kind="provider"), **kw)


def request_state(request_id: str, request: SimpleNamespace, **kw) -> SimpleNamespace:
    return SimpleNamespace(case_id="C7", request_id=request_id, seq=2, notices_sent=[], policy=POLICY,
                           case_manager=None, county="Fresno", family_address=None, request=request,
                           decision_due=DUE, **kw)


HEAD = "CCS case C7"


def test_case_notices_to_staff():
    assert fire(ChildCaseWorkflow, case_state(), "records_escalation") == [(
        "records_escalation", "supervisor", None, "Escalation: records outstanding for C7",
        f"{HEAD}\n\nMedical records for case C7 are outstanding after 30 days.\n")]
    assert fire(ChildCaseWorkflow, case_state(), "task_due", "C7-T3") == [(
        "task_overdue", "case_manager", "cm.rivera", "Task due: Obtain medical records from the referring provider",
        f"{HEAD}\n\nTask C7-T3 on case C7 is due now.\n")]
    assert fire(ChildCaseWorkflow, case_state(), "task_grace", "C7-T3") == [(
        "task_escalation", "supervisor", None, "Escalation: overdue task on C7",
        f"{HEAD}\n\nTask C7-T3 (Obtain medical records from the referring provider), assigned to cm.rivera, "
        "was due 2026-03-05T08:00:00+00:00 and is still open.\n")]


SAR_HEAD = "CCS case C7, request C7-sar-2"
SAR_DUE = "The urgent service authorization request C7-sar-2 on case C7 is due for decision by 2026-03-05 00:00 PST"


@pytest.mark.parametrize("extended", [False, True])
def test_authorization_notices_to_staff(extended):
    def sar(clock):
        state = request_state("C7-sar-2", SimpleNamespace(urgency="urgent"), extended=extended,
                              pended_at=AT - timedelta(days=14))
        return fire(ServiceAuthorizationWorkflow, state, clock)

    due = SAR_DUE + (" (extended)" if extended else "")
    assert sar("decision_reminder") == [(
        "authorization_reminder", "case_manager", "Fresno:unassigned", "Reminder: service authorization decision due",
        f"{SAR_HEAD}\n\n{due}.\n")]
    assert sar("decision_escalation") == [(
        "authorization_escalation", "supervisor", None, "Escalation: service authorization decision due on C7",
        f"{SAR_HEAD}\n\n{due} and is not decided.\n")]
    assert sar("decision_overdue") == [(
        "authorization_overdue", "supervisor", None, "Overdue: service authorization decision on C7",
        f"{SAR_HEAD}\n\n{due}: the due time has passed without a decision.\n")]
    assert sar("information_overdue") == [(
        "authorization_information_overdue", "supervisor", None,
        "Overdue: information for a service authorization request on C7",
        f"{SAR_HEAD}\n\nThe service authorization request C7-sar-2 on case C7 has been pended for information "
        "since 2026-02-16 09:30 PST; 14 days from receipt ended 2026-03-02 09:30 PST. Decide it with what is in.\n")]


GRV_HEAD = "CCS case C7, request C7-grv-1"


@pytest.mark.parametrize("expedited", [False, True])
def test_grievance_notices_to_staff(expedited):
    def grievance(clock):
        state = request_state("C7-grv-1", SimpleNamespace(expedited=expedited, about="delay"))
        return fire(GrievanceWorkflow, state, clock)

    due = (f"The {'expedited' if expedited else 'standard'} grievance C7-grv-1 on case C7 is due for resolution "
           "by 2026-03-05 00:00 PST")
    assert grievance("resolution_reminder") == [(
        "grievance_reminder", "case_manager", "Fresno:unassigned", "Reminder: grievance resolution due",
        f"{GRV_HEAD}\n\n{due}.\n")]
    assert grievance("resolution_escalation") == [(
        "grievance_escalation", "supervisor", None, "Escalation: grievance due on C7",
        f"{GRV_HEAD}\n\n{due} and is not resolved.\n")]
    assert grievance("resolution_overdue") == [(
        "grievance_overdue", "supervisor", None, "Overdue: grievance on C7",
        f"{GRV_HEAD}\n\n{due}: not resolved at 2026-03-02 09:30 PST.\n")]


def test_an_expedited_grievance_reaches_a_supervisor_at_once(monkeypatch):
    """Filed, not fired: the notice is queued by the workflow's start."""
    monkeypatch.setattr(workflow, "now", lambda: AT)
    monkeypatch.setattr(workflow, "patched", lambda _id: True)
    inp = GrievanceInput(request_id="C7-grv-1", case_id="C7", county="Fresno", policy=POLICY, conditions=[],
                         requested_by={"id": "cm.rivera", "role": "case_manager"},
                         request=GrievanceRequest(about="provider", summary="No call back", expedited=True))
    wf = GrievanceWorkflow(inp)
    notices = [(n.kind, n.to, n.subject, n.body) for n in wf.s.pending_steps[0].notices]
    assert notices[1:] == [(
        "grievance_expedited", "supervisor", "Expedited grievance on C7",
        f"{GRV_HEAD}\n\nThe expedited grievance C7-grv-1 on case C7 is due for resolution by "
        "2026-03-05 09:30 PST: the family's health is at risk.\n")]
    assert notices[0][:2] == ("grievance_acknowledged", "family")
    assert notices[0][3] == f"{GRV_HEAD}\n\n\n"  # a family's notice is a letter: its words are in letters/


def test_meals_lodging_decision_overdue_reaches_the_case_manager_and_a_supervisor():
    state = request_state("C7-ml-3", SimpleNamespace(travel_start=date(2026, 3, 9)), route="standard_route")
    text = ("CCS case C7, request C7-ml-3\n\nThe meals and lodging decision on request C7-ml-3 (standard route) "
            "was due 2026-03-05 00:00 PST; travel begins 2026-03-09.\n")
    assert fire(MealsLodgingWorkflow, state, "decision_due") == [
        ("decision_overdue", "case_manager", "Fresno:unassigned", "Overdue: meals and lodging decision", text),
        ("decision_overdue", "supervisor", None, "Overdue: meals and lodging decision on C7", text),
    ]


def test_every_notice_a_workflow_sends_has_its_words():
    """A family's or provider's notice is in the letter catalog, a notice to staff has its
    wording here; no wording is left unused."""
    sent = {m.groups() for p in (ROOT / "workflows").rglob("*.py")
            for m in re.finditer(r'_notify\(\s*"(\w+)",\s*"(\w+)"', p.read_text())}
    assert {kind for kind, to in sent if to in ("family", "referrer")} <= set(LETTERS)
    assert {kind for kind, to in sent if to not in ("family", "referrer")} == set(STAFF)


def test_a_datum_the_words_name_but_not_given_is_an_error_not_a_blank():
    with pytest.raises(UndefinedError, match="days"):
        notice_words("records_escalation", "supervisor", {"case_id": "C7"}, {})


def test_a_letters_notice_body_is_the_heading_alone():
    """Its words are the letter's (letters/templates/): the notice names the case, or the request."""
    assert notice_words("case_open", "family", {"case_id": "C7"}, {}) == ("", "CCS case C7\n\n\n")
    assert notice_words("reimbursement", "family", {"case_id": "C7", "request_id": "C7-ml-3"}, {}) == (
        "", "CCS case C7, request C7-ml-3\n\n\n")
