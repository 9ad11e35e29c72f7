"""The registry of request kinds (models/request_kinds.py): every kind's ID round-trips,
every action on a request belongs to one kind, and the worker runs a workflow for each."""

from __future__ import annotations

import pytest

from activities.records import kind_of as records_kind_of
from models.actions import ACTIONS
from models.request_kinds import BY_ACTION, REQUEST_KINDS, case_of, request_kind
from starters.api.scope import case_of as scope_case_of
from workflows.registry import REQUEST_WORKFLOWS

CASE = "case-3f2a9c0d1e4b5a6c7d8e"


@pytest.mark.parametrize("kind", sorted(REQUEST_KINDS))
def test_every_kind_round_trips_its_request_id(kind):
    spec = REQUEST_KINDS[kind]
    rid = spec.request_id(CASE, 12)
    assert rid == f"{CASE}-{spec.prefix}-12"
    assert request_kind(rid) is spec and case_of(rid) == CASE
    # The case records file it under its kind, and the API scopes it by its case.
    assert records_kind_of(rid) == kind and scope_case_of(rid) == CASE
    # The status and input models read the ID, and the status names the same kind.
    assert spec.status.model_fields["kind"].default == kind
    assert spec.input.model_fields["request_id"].is_required()


@pytest.mark.parametrize("kind", sorted(REQUEST_KINDS))
def test_every_kind_has_its_workflow_its_opening_action_and_its_actions(kind):
    spec = REQUEST_KINDS[kind]
    assert REQUEST_WORKFLOWS[spec.workflow].__name__ == spec.workflow
    assert spec.opened_by in ACTIONS
    assert spec.actions and all(BY_ACTION[name] is spec for name in spec.actions)
    assert not set(spec.actions) & set(ACTIONS)  # a request's action never shadows a case's


def test_prefixes_and_task_prefixes_are_unique():
    specs = list(REQUEST_KINDS.values())
    assert len({s.prefix for s in specs}) == len({s.task_prefix for s in specs}) == len(specs)


def test_an_id_of_no_known_kind_is_no_request():
    assert request_kind(CASE) is None and case_of(CASE) == CASE
    assert request_kind(f"{CASE}-zz-1") is None  # the ID's shape, but no such kind
    assert request_kind(f"{CASE}-grv-") is None


async def test_a_request_action_on_the_wrong_kind_names_the_kind_it_acts_on(ts_worker):
    from starters.client import CcsError
    from tests.test_case_requests import example

    _, cases = ts_worker
    with pytest.raises(CcsError, match="resolve_grievance acts on grievance requests") as e:
        await cases.act(CASE, "resolve_grievance", example("resolve_grievance", request_id=f"{CASE}-ml-1"))
    assert e.value.fields == {"request_id": "not a grievance request"}
