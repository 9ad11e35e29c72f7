"""record_steps under faults: it heartbeats while it works (a killed worker's step is retried
after the heartbeat timeout, not the minute-long start-to-close one), and a database outage
fails it with a short, retryable error that carries nothing of the step."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.storage as storage
from activities.db import make_engine, session_factory
from activities.storage import CaseActivities
from activities.tables import AuditRow
from models.case import StepRecord
from tests.test_notify import free_port, new_case, notice


def step(case_id: str) -> StepRecord:
    return StepRecord(case_id=case_id, source=case_id, seq=1, at=datetime.now(timezone.utc), actor_id="ccs-timer",
                      actor_role="system", action="timer:second_notice", stage="intake", county="Kern",
                      detail={"note": "Synthetic Childname"}, notices=[notice(case_id, "second_notice")])


class SlowChannel:
    """A notifier whose delivery takes a while, as a slow SMTP server's does."""

    letters = None  # plain notices: no PDF letters to render later

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def deliver_later(self, keys: list[str]) -> None:
        assert not keys

    async def deliver(self, keys: list[str]) -> int:
        await asyncio.sleep(self.seconds)
        return len(keys)


async def test_record_steps_heartbeats_while_it_works(sessions, monkeypatch):
    monkeypatch.setattr(storage, "HEARTBEAT_EVERY", 0.05)
    beats: list = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    case_id = new_case()
    assert await env.run(CaseActivities(sessions, SlowChannel(0.5)).record_steps, [step(case_id)]) == 1
    assert len(beats) >= 3, "a slow step must tell Temporal its worker is alive"
    async with sessions() as s:
        assert (await s.scalars(select(AuditRow.action).where(AuditRow.source == case_id))).all() == [
            "timer:second_notice"]


async def test_a_database_outage_is_a_short_retryable_error():
    engine = make_engine(f"postgresql://ccs:secret@127.0.0.1:{free_port()}/ccs")  # nothing listens there
    try:
        with pytest.raises(ApplicationError) as err:
            await ActivityEnvironment().run(CaseActivities(session_factory(engine), SlowChannel(0)).record_steps,
                                            [step(new_case())])
    finally:
        await engine.dispose()
    e = err.value
    assert e.type == "DatabaseUnavailable" and not e.non_retryable
    assert e.message.startswith("PostgreSQL unavailable") and len(e.message) < 120, e.message
    assert e.__cause__ is None and "Childname" not in e.message  # nothing of the step rides along
