"""Shapes of the case record's operations: the purge, legal holds."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# A court or counsel's reference for the matter a hold serves: no names (it is stored in plaintext).
MATTER = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"


class PurgeRequest(BaseModel):
    now: datetime
    batch: int = Field(200, ge=1)


class PurgeResult(BaseModel):
    purged: int
    held: int  # records past retention kept because of a legal hold
    expired: int = 0  # old sign-in failures and Idempotency-Keys deleted
