"""Synthetic people and small helpers shared by tests. No real person appears here."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

from models.case import Actor

ROOT = Path(__file__).resolve().parent.parent
CM = Actor(id="cm.rivera", role="case_manager")
SUP = Actor(id="sup.nguyen", role="supervisor")
MC = Actor(id="dr.consultant", role="medical_consultant")
STATE = Actor(id="state.reviewer", role="state_reviewer")


def referral(**child) -> dict:
    data = json.loads((ROOT / "examples" / "referral.json").read_text())
    data = copy.deepcopy(data)
    data["child"].update(child)
    return data


def born_years_ago(today: date, years: int, days: int = 0) -> str:
    return (today.replace(year=today.year - years) - timedelta(days=days)).isoformat()


def act(actor: Actor, **data) -> dict:
    return {"actor": actor.model_dump(), **data}
