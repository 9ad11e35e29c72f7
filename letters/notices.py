"""The words of every notice the product sends to staff (case managers, supervisors), and the
heading every notice's body starts with: Jinja templates keyed by notice kind, rendered from a
dict of data. A family's or provider's notice is a letter instead (``catalog.py`` and
``templates/``); its body is the heading alone.

Workflows render these while they run, so the templates are Python constants compiled at
import time (a workflow reads no file). The data are what the workflow knows, already written
as people read them (due times in the county's time zone): the words decide nothing. A notice's
text goes into activity inputs and outbox rows, so a change of wording reaches only notices
sent after it (tests/test_notice_texts.py pins each text).
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined, Template

# Plain text (no HTML escaping); a datum a template names but is not given is an error, never "".
_JINJA = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclass(frozen=True)
class Wording:
    subject: str  # no PHI: subjects travel in clear over e-mail
    text: str


# Reused in several notices about one request: when it is due.
_SAR_DUE = ("The {{ urgency }} service authorization request {{ request_id }} on case {{ case_id }} is due for "
            "decision by {{ decision_due }}{% if extended %} (extended){% endif %}")
_GRIEVANCE_DUE = ("The {{ urgency }} grievance {{ request_id }} on case {{ case_id }} is due for resolution "
                  "by {{ resolve_by }}")

# Each notice's data, besides case_id (and request_id), which every notice has, and `to`, its recipient.
STAFF: dict[str, Wording] = {
    # The case (workflows/case/clocks.py).
    "records_escalation": Wording(  # days
        "Escalation: records outstanding for {{ case_id }}",
        "Medical records for case {{ case_id }} are outstanding after {{ days }} days."),
    "task_overdue": Wording(  # task_id, title
        "Task due: {{ title }}",
        "Task {{ task_id }} on case {{ case_id }} is due now."),
    "task_escalation": Wording(  # task_id, title, assignee, due
        "Escalation: overdue task on {{ case_id }}",
        "Task {{ task_id }} ({{ title }}), assigned to {{ assignee }}, was due {{ due }} and is still open."),
    # Service authorization requests (workflows/authorization.py): urgency, decision_due, extended.
    "authorization_reminder": Wording(
        "Reminder: service authorization decision due",
        _SAR_DUE + "."),
    "authorization_escalation": Wording(
        "Escalation: service authorization decision due on {{ case_id }}",
        _SAR_DUE + " and is not decided."),
    "authorization_overdue": Wording(
        "Overdue: service authorization decision on {{ case_id }}",
        _SAR_DUE + ": the due time has passed without a decision."),
    "authorization_information_overdue": Wording(  # pended_at, days, ended_at
        "Overdue: information for a service authorization request on {{ case_id }}",
        "The service authorization request {{ request_id }} on case {{ case_id }} has been pended for information "
        "since {{ pended_at }}; {{ days }} days from receipt ended {{ ended_at }}. Decide it with what is in."),
    # Grievances (workflows/grievance.py): urgency, resolve_by.
    "grievance_expedited": Wording(
        "Expedited grievance on {{ case_id }}",
        _GRIEVANCE_DUE + ": the family's health is at risk."),
    "grievance_reminder": Wording(
        "Reminder: grievance resolution due",
        _GRIEVANCE_DUE + "."),
    "grievance_escalation": Wording(
        "Escalation: grievance due on {{ case_id }}",
        _GRIEVANCE_DUE + " and is not resolved."),
    "grievance_overdue": Wording(  # at
        "Overdue: grievance on {{ case_id }}",
        _GRIEVANCE_DUE + ": not resolved at {{ at }}."),
    # Meals and lodging (workflows/meals_lodging.py): to the case manager and to a supervisor.
    "decision_overdue": Wording(  # route, decision_due, travel_start
        "Overdue: meals and lodging decision{% if to == 'supervisor' %} on {{ case_id }}{% endif %}",
        "The meals and lodging decision on request {{ request_id }} ({{ route | replace('_', ' ') }}) was due "
        "{{ decision_due }}; travel begins {{ travel_start }}."),
}

# Every notice's body: whose it is (the case, and the request if it is about one), then its text.
HEADING = "CCS case {{ case_id }}{% if request_id %}, request {{ request_id }}{% endif %}"


def _body(text: str) -> Template:
    return _JINJA.from_string(f"{HEADING}\n\n{text}\n")


_COMPILED: dict[str, tuple[Template, Template]] = {
    kind: (_JINJA.from_string(w.subject), _body(w.text)) for kind, w in STAFF.items()}
_LETTER_BODY = _body("")  # a letter's words are its own (letters/templates/)


def notice_words(kind: str, to: str, source: dict, data: dict) -> tuple[str, str]:
    """A notice's subject and body. ``source`` names the case (and request); ``data`` fills the
    words of a notice to staff. Any other kind (a letter) has no subject here and the heading
    alone for its body."""
    values = {"request_id": None, **data, **source, "to": to}
    if kind not in _COMPILED:
        return "", _LETTER_BODY.render(values)
    subject, body = _COMPILED[kind]
    return subject.render(values), body.render(values)
