"""How a running case follows the deployment's policy (models/policy.py, activities/policy.py).

Before it starts requests, the case asks the ``current_policy`` activity whether a newer
policy was published (``ccs policy publish``, or ``ccs up`` at start); the answer is
recorded in its history, so a replay takes the same policy without asking. A newer one
becomes the case's policy from then on (deadlines already set keep their times). Each
request is then given the values in force on its date (rules/policy_dates.py) and keeps
them: a clock already running keeps the value it started with.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.case import CaseState
    from models.policy import PublishedPolicy
    from models.requests import RequestStart
    from rules.policy_dates import request_policy

# Runs begun before this patch gave every request the case's policy as it was referred.
POLICY_IN_FORCE = "policy-in-force"
_ASK = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10))


async def take_current_policy(s: CaseState) -> None:
    """Adopt the deployment's current policy if it is newer than the case's. The policy store
    being down never holds a request back: the case goes on with the policy it has."""
    known = s.policy_version or s.policy.version()
    try:
        # An activity the server sees, not a local one: a time-skipping server (tests, the 21-year
        # benchmark) would skip past a local activity and time its workflow task out.
        published = await workflow.execute_activity(
            "current_policy", known, result_type=PublishedPolicy | None, retry_policy=_ASK,
            start_to_close_timeout=timedelta(seconds=10), schedule_to_close_timeout=timedelta(seconds=40),
            summary="current policy")
    except ActivityError as e:
        workflow.logger.warning("policy store unavailable, case %s keeps policy %s: %s", s.case_id, known, e.cause)
        return
    if published is not None:
        s.policy, s.policy_version = published.policy, published.version
        workflow.logger.info("case %s takes policy %s", s.case_id, published.version)
    else:
        s.policy_version = known


def with_policy_in_force(start: RequestStart, s: CaseState, today) -> RequestStart:
    """The request's input with the values in force on its date (received, and for a trip travel)."""
    received = start.received_on or today
    travel = (start.input.get("request") or {}).get("travel_start")
    policy = request_policy(s.policy, received, date.fromisoformat(travel) if travel else None)
    return start.model_copy(update={"input": {**start.input, "policy": policy.model_dump(mode="json")}})
