"""Every declared action, clock and stage has exactly one handler (workflows/handlers.py), and
every action an example payload: a missing handler fails here, not in a running case."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
from temporalio import workflow

from models.actions import ACTIONS, WAITING_FOR
from models.case import Stage
from models.request_kinds import REQUEST_KINDS
from workflows.case import ChildCaseWorkflow
from workflows.handlers import CASE, HandlerTable
from workflows.registry import REQUEST_WORKFLOWS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "actions"


def named_updates(cls) -> set[str]:
    return {name for name in workflow._Definition.must_from_class(cls).updates if name}


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_case_action_has_exactly_one_handler(name):
    """A step of the dynamic `act` update (CASE.action) or an update of its own, never both."""
    own_update = name in named_updates(ChildCaseWorkflow)
    assert (name in CASE.actions) != own_update, name


def test_no_handler_or_check_for_an_undeclared_action():
    assert set(CASE.actions) <= set(ACTIONS) and set(CASE.checks) <= set(ACTIONS)
    assert named_updates(ChildCaseWorkflow) <= set(ACTIONS)


@pytest.mark.parametrize("kind", sorted(REQUEST_KINDS))
def test_every_request_action_is_an_update_of_its_kinds_workflow(kind):
    spec = REQUEST_KINDS[kind]
    assert named_updates(REQUEST_WORKFLOWS[spec.workflow]) == set(spec.actions)


ALL_ACTIONS = sorted(set(ACTIONS) | {n for k in REQUEST_KINDS.values() for n in k.actions})


@pytest.mark.parametrize("name", ALL_ACTIONS)
def test_every_action_has_an_example_payload_its_model_reads(name):
    model = ACTIONS[name].model if name in ACTIONS else next(
        k.actions[name].model for k in REQUEST_KINDS.values() if name in k.actions)
    if name == "refer":  # `ccs refer examples/referral.json`: the client adds who and the referral's ID
        data = {"actor": {"id": "clerk.x", "role": "intake_clerk"}, "referral_id": "r" * 16,
                "referral": json.loads((ROOT / "examples" / "referral.json").read_text())}
    else:
        data = json.loads((EXAMPLES / f"{name}.json").read_text())
    model.model_validate(data)


def test_every_stage_has_its_entry():
    assert set(CASE.entries) == set(typing.get_args(Stage)) == set(WAITING_FOR)


def deadline_keys(*modules: str) -> set[str]:
    """The deadline names the code sets: deadlines["x"], deadlines[f"x:..."], _set_due_timers({"x": ...}),
    and the case's task escalations (f"task_due:...")."""
    keys: set[str] = set()
    for module in modules:
        path = ROOT / "workflows" / module  # a module, or a package (the case)
        src = "".join(p.read_text() for p in sorted(path.glob("*.py"))) if path.is_dir() else \
            path.with_suffix(".py").read_text()
        keys |= set(re.findall(r'deadlines\[f?"([a-z_]+)', src))
        keys |= set(re.findall(r'f"(task_[a-z_]+):', src))
        for timers in re.findall(r"_set_due_timers\(\{(.*?)\}\)", src, flags=re.S):
            keys |= set(re.findall(r'"([a-z_]+)":', timers))
    return keys - {"run_ends"}  # the end of a run is the loop's, not a clock's


@pytest.mark.parametrize("table,modules", [
    (CASE, ("case", "endings", "condition_appeals", "identity")),
    *[(REQUEST_WORKFLOWS[k.workflow].HANDLERS, (REQUEST_WORKFLOWS[k.workflow].__module__.split(".")[-1],))
      for k in REQUEST_KINDS.values()],
], ids=["case", *sorted(REQUEST_KINDS)])
def test_every_deadline_kind_has_a_handler(table, modules):
    keys = deadline_keys(*modules)
    assert keys, "no deadlines found: the scan is broken"
    assert keys == set(table.clocks), f"deadlines without a clock: {keys - set(table.clocks)}; " \
                                      f"clocks no code sets: {set(table.clocks) - keys}"


def test_a_second_handler_for_the_same_action_is_refused():
    table = HandlerTable("T")
    table.action("x")(lambda self, a: None)
    with pytest.raises(TypeError, match="'x' has two handlers"):
        table.action("x")(lambda self, a: None)


def test_only_the_birthday_clocks_outlive_a_stage_change():
    assert {name for name, c in CASE.clocks.items() if c.lasting} == {"aged_out", "milestone"}
