"""The one base of the product's shapes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Unknown fields are refused: a misspelt field is an error a person sees, never ignored."""

    model_config = ConfigDict(extra="forbid")


class Typed(Model):
    """What people type (referrals, actions, requests): surrounding whitespace is dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
