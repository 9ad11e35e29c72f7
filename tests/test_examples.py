"""Every action has a working example payload, and the example referral is valid."""

import json
from pathlib import Path

import pytest

from models.actions import ACTIONS, REQUEST_ACTIONS
from models.referral import Referral

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_example_referral_is_valid():
    Referral.model_validate_json((EXAMPLES / "referral.json").read_text())


@pytest.mark.parametrize("name", sorted(n for n in ACTIONS if n != "refer"))
def test_every_action_has_a_valid_example(name):
    data = json.loads((EXAMPLES / "actions" / f"{name}.json").read_text())
    ACTIONS[name].model.model_validate(data)


@pytest.mark.parametrize("name", sorted(REQUEST_ACTIONS))
def test_every_request_action_has_a_valid_example(name):
    data = json.loads((EXAMPLES / "actions" / f"{name}.json").read_text())
    REQUEST_ACTIONS[name].model_validate(data)
