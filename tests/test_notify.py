"""Notifications: one outbox row and one delivery per idempotency key, over a real SMTP
server (aiosmtpd, started here) and the mailbox directory; and the `record_steps`
activity that persists workflow steps without doubling anything when retried."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from tests.helpers import free_port
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from temporalio.testing import ActivityEnvironment

from activities.notify import MailboxChannel, Notifier, SmtpChannel, message_id
from activities.tables import AuditRow, CaseRow, OutboxRow, TaskRow
from models.case import CaseRecord, Notice, StepRecord, TaskRef

MAIL_FROM = "ccs@county.example"
SUPERVISOR = "supervisor@county.example"
STAFF_DOMAIN = "kern.county.example"



class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port)

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@pytest.fixture
def smtp():
    with SmtpServer(free_port()) as server:
        yield server


def smtp_notifier(sessions, port: int) -> Notifier:
    # A plain local test server: TLS and login are tested in test_letter_delivery.py.
    return Notifier(sessions, SmtpChannel("127.0.0.1", port, timeout=5, allow_plain=True), MAIL_FROM, SUPERVISOR,
                    STAFF_DOMAIN)


def new_case() -> str:
    return f"case-test-{uuid.uuid4().hex[:16]}"


def notice(case_id: str, name: str, to: str = "family", address: str | None = "family@example.org") -> Notice:
    return Notice(key=f"{case_id}/{name}", kind=name, to=to, address=address,
                  subject=f"CCS: {name.replace('_', ' ')}", body=f"About your CCS case: {name}.")


async def outbox(sessions, case_id: str) -> dict[str, OutboxRow]:
    async with sessions() as s:
        rows = (await s.execute(select(OutboxRow).where(OutboxRow.case_id == case_id))).scalars().all()
    return {r.key: r for r in rows}


# ---- SMTP ------------------------------------------------------------------------


async def test_smtp_delivers_once_and_a_retry_sends_nothing(sessions, smtp):
    case_id = new_case()
    n = notice(case_id, "application_packet")
    notifier = smtp_notifier(sessions, smtp.port)
    assert await notifier.notify(case_id, [n]) == 1
    assert len(smtp.inbox.envelopes) == 1
    # The activity is retried: same keys, nothing new goes out.
    assert await notifier.notify(case_id, [n]) == 0
    assert await smtp_notifier(sessions, smtp.port).notify(case_id, [n]) == 0
    assert len(smtp.inbox.envelopes) == 1

    [msg] = smtp.inbox.messages
    assert msg["To"] == "family@example.org"
    assert smtp.inbox.envelopes[0].rcpt_tos == ["family@example.org"]
    assert msg["From"] == MAIL_FROM
    assert msg["Subject"] == "CCS: application packet"
    assert msg["X-CCS-Notice-Key"] == n.key
    assert msg.get_content().strip() == "About your CCS case: application_packet."
    assert msg["Message-ID"] == message_id(n.key, "county.example")

    row = (await outbox(sessions, case_id))[n.key]
    assert (row.status, row.channel, row.attempts) == ("sent", "smtp", 1)
    assert row.sent_at is not None


async def test_message_id_is_stable_per_key(sessions, smtp):
    case_id = new_case()
    a, b = notice(case_id, "second_notice"), notice(case_id, "records_reminder")
    notifier = smtp_notifier(sessions, smtp.port)
    await notifier.notify(case_id, [a, b])
    # A worker that crashed after sending but before recording "sent" sends again:
    # the copy carries the same Message-ID, so the receiver can drop it.
    async with sessions.begin() as s:
        await s.execute(update(OutboxRow).where(OutboxRow.key == a.key).values(status="pending"))
    assert await notifier.deliver([a.key, b.key]) == 1
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert ids[0] == ids[2] == message_id(a.key, "county.example")
    assert ids[1] == message_id(b.key, "county.example") != ids[0]
    assert message_id(a.key, "x.example") == message_id(a.key, "x.example")


async def test_recipients_are_resolved(sessions, smtp):
    case_id = new_case()
    notices = [
        notice(case_id, "escalation", to="supervisor", address=None),
        notice(case_id, "review_request", to="reviewer", address=None),
        notice(case_id, "new_task", to="case_manager", address="cm.rivera"),
        notice(case_id, "task_for_queue", to="case_manager", address="Kern:unassigned"),
        notice(case_id, "task_no_cm", to="case_manager", address=None),
        notice(case_id, "task_full_address", to="case_manager", address="pat@plan.example"),
        notice(case_id, "records_request", to="referrer", address="referrals@clinic.example.org"),
        notice(case_id, "packet_by_mail", to="family", address=None),
    ]
    notifier = smtp_notifier(sessions, smtp.port)
    assert await notifier.notify(case_id, notices) == 7
    sent_to = {m["X-CCS-Notice-Key"].rpartition("/")[2]: m["To"] for m in smtp.inbox.messages}
    assert sent_to == {
        "escalation": SUPERVISOR,
        "review_request": SUPERVISOR,
        "new_task": f"cm.rivera@{STAFF_DOMAIN}",
        "task_for_queue": SUPERVISOR,
        "task_no_cm": SUPERVISOR,
        "task_full_address": "pat@plan.example",
        "records_request": "referrals@clinic.example.org",
    }
    rows = await outbox(sessions, case_id)
    postal = rows[f"{case_id}/packet_by_mail"]
    assert (postal.status, postal.channel) == ("postal", "print")
    assert all(r.status == "sent" and r.channel == "smtp" for k, r in rows.items() if k != postal.key)
    # Retrying leaves the letter to post alone: still nothing e-mailed for it.
    assert await notifier.notify(case_id, notices) == 0
    assert len(smtp.inbox.envelopes) == 7
    assert (await outbox(sessions, case_id))[postal.key].status == "postal"


async def test_smtp_down_then_up_delivers_exactly_once(sessions):
    port = free_port()
    case_id = new_case()
    n = notice(case_id, "noa")
    notifier = smtp_notifier(sessions, port)
    with pytest.raises(OSError):  # nothing listens: the activity fails and Temporal retries it
        await notifier.notify(case_id, [n])
    row = (await outbox(sessions, case_id))[n.key]
    assert row.status == "pending" and row.sent_at is None and row.channel is None

    with SmtpServer(port) as server:
        assert await notifier.notify(case_id, [n]) == 1
        assert await notifier.notify(case_id, [n]) == 0
        assert len(server.inbox.envelopes) == 1
        assert server.inbox.messages[0]["X-CCS-Notice-Key"] == n.key
    row = (await outbox(sessions, case_id))[n.key]
    assert (row.status, row.channel) == ("sent", "smtp")


async def test_outbox_keeps_the_first_notice_for_a_key(sessions, smtp):
    case_id = new_case()
    first = notice(case_id, "application_packet")
    changed = first.model_copy(update={"subject": "something else"})
    notifier = smtp_notifier(sessions, smtp.port)
    await notifier.notify(case_id, [first])
    await notifier.notify(case_id, [changed])
    assert [m["Subject"] for m in smtp.inbox.messages] == [first.subject]
    assert (await outbox(sessions, case_id))[first.key].subject == first.subject


# ---- mailbox directory -----------------------------------------------------------


async def test_mailbox_writes_one_readable_file_per_key(sessions, mailbox):
    case_id = new_case()
    a = notice(case_id, "application_packet")
    b = notice(case_id, "task", to="case_manager", address="cm.rivera")
    notifier = Notifier(sessions, MailboxChannel(mailbox), MAIL_FROM, SUPERVISOR, STAFF_DOMAIN)
    assert await notifier.notify(case_id, [a, b]) == 2
    assert await notifier.notify(case_id, [a, b]) == 0
    files = sorted(mailbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    msgs = {m["X-CCS-Notice-Key"]: m for m in
            (email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files)}
    assert msgs[a.key]["Subject"] == a.subject and msgs[a.key]["To"] == "family@example.org"
    assert msgs[b.key]["To"] == f"cm.rivera@{STAFF_DOMAIN}"
    assert msgs[a.key].get_content().strip() == a.body
    assert {r.channel for r in (await outbox(sessions, case_id)).values()} == {"mailbox"}


async def test_mailbox_redelivery_leaves_one_file(sessions, mailbox):
    case_id = new_case()
    n = notice(case_id, "second_notice")
    notifier = Notifier(sessions, MailboxChannel(mailbox), MAIL_FROM, SUPERVISOR)
    await notifier.notify(case_id, [n])
    # Even a delivery repeated after a crash (row back to pending) writes the same file.
    async with sessions.begin() as s:
        await s.execute(update(OutboxRow).where(OutboxRow.key == n.key).values(status="pending"))
    assert await notifier.deliver([n.key]) == 1
    files = list(mailbox.iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"  # no second file, no temporary left over


# ---- the record_steps activity ----------------------------------------------------


class CountingChannel:
    """Wraps the fixture's channel and counts real sends per key."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.sent = inner, inner.name, []

    async def send(self, message, key) -> None:
        self.sent.append(key)
        await self.inner.send(message, key)


def steps_for(case_id: str) -> list[StepRecord]:
    t0 = datetime(2025, 3, 3, 17, 0, tzinfo=timezone.utc)
    t1 = t0 + timedelta(days=2)

    def record(stage: str, seq: int, at: datetime) -> CaseRecord:
        return CaseRecord(case_id=case_id, stage=stage, stage_since=at, county="Kern", jurisdiction="county",
                          case_manager="cm.rivera", next_deadline=at + timedelta(days=5),
                          conditions=["E84.0"], opened_at=t0)

    return [
        StepRecord(
            case_id=case_id, source=case_id, seq=1, at=t0, actor_id="clerk.intake", actor_role="intake_clerk",
            action="refer", stage="intake", county="Kern", detail={"conditions_added": ["C1"]},
            tasks_opened=[TaskRef(id="T1", kind="send_packet", title="Send the application packet",
                                  assignee="cm.rivera", due=t0 + timedelta(days=5), opened_at=t0)],
            notices=[notice(case_id, "application_packet"),
                     notice(case_id, "new_case", to="case_manager", address="cm.rivera")],
            record=record("intake", 1, t0),
        ),
        StepRecord(
            case_id=case_id, source=case_id, seq=2, at=t1, actor_id="cm.rivera", actor_role="case_manager",
            action="record_application", stage="records", county="Kern",
            detail={"application_date": "2025-03-03"},
            tasks_opened=[TaskRef(id="T2", kind="request_records", title="Request medical records",
                                  assignee="cm.rivera", due=t1 + timedelta(days=7), opened_at=t1)],
            tasks_closed=["T1"],
            notices=[notice(case_id, "records_request", to="referrer", address="referrals@clinic.example.org")],
            record=record("records", 2, t1),
        ),
    ]


async def test_record_steps_twice_writes_and_sends_once(activities, sessions, mailbox):
    counting = CountingChannel(activities.notifier.channel)
    activities.notifier.channel = counting
    case_id = new_case()
    steps = steps_for(case_id)
    env = ActivityEnvironment()
    assert await env.run(activities.record_steps, steps) == 3
    assert await env.run(activities.record_steps, steps) == 0  # the retried activity
    # A retry of only the first step after the second was recorded changes nothing either.
    assert await env.run(activities.record_steps, steps[:1]) == 0

    async with sessions() as s:
        audit = (await s.execute(select(AuditRow).where(AuditRow.case_id == case_id)
                                 .order_by(AuditRow.seq))).scalars().all()
        tasks = {t.task_id: t for t in (await s.execute(
            select(TaskRow).where(TaskRow.case_id == case_id))).scalars().all()}
        case = (await s.execute(select(CaseRow).where(CaseRow.case_id == case_id))).scalar_one()
    assert [(a.seq, a.action, a.actor_id, a.actor_role) for a in audit] == [
        (1, "refer", "clerk.intake", "intake_clerk"), (2, "record_application", "cm.rivera", "case_manager")]
    assert audit[1].detail == {"application_date": "2025-03-03"}
    assert audit[1].at == steps[1].at
    assert set(tasks) == {"T1", "T2"}
    assert (tasks["T1"].status, tasks["T1"].closed_at) == ("done", steps[1].at)
    assert (tasks["T2"].status, tasks["T2"].assignee, tasks["T2"].county) == ("open", "cm.rivera", "Kern")
    assert (case.stage, case.last_seq) == ("records", 2)  # the older step did not roll it back

    rows = await outbox(sessions, case_id)
    keys = [n.key for st in steps for n in st.notices]
    assert sorted(rows) == sorted(keys)
    assert all(r.status == "sent" and r.channel == "mailbox" for r in rows.values())
    assert sorted(counting.sent) == sorted(keys)  # each notice sent once
    assert len(list(mailbox.glob("*.eml"))) == 3


async def test_audit_log_is_append_only(activities, sessions):
    case_id = new_case()
    await ActivityEnvironment().run(activities.record_steps, steps_for(case_id)[:1])
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as s:
            await s.execute(update(AuditRow).where(AuditRow.case_id == case_id).values(actor_id="someone.else"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as s:
            await s.execute(text("DELETE FROM audit_log WHERE case_id = :c"), {"c": case_id})
    async with sessions() as s:
        rows = (await s.execute(select(AuditRow.actor_id).where(AuditRow.case_id == case_id))).scalars().all()
        assert rows == ["clerk.intake"]
        assert await s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.case_id == case_id)) == 1


async def test_mail_outage_never_holds_up_a_case_and_pending_notices_go_out_later(sessions):
    """record_steps succeeds with SMTP down; the dispatcher sends the notice once it is up."""
    from datetime import datetime, timedelta, timezone

    from activities.storage import CaseActivities
    from models.case import CaseRecord, StepRecord

    port = free_port()
    case_id = new_case()
    n = notice(case_id, "second_notice")
    now = datetime.now(timezone.utc)
    step = StepRecord(case_id=case_id, source=case_id, seq=1, at=now, actor_id="ccs-timer", actor_role="system",
                      action="timer:second_notice", stage="intake", county="Kern", notices=[n],
                      record=CaseRecord(case_id=case_id, stage="intake", stage_since=now, county="Kern",
                                        jurisdiction="county", case_manager=None, next_deadline=None,
                                        conditions=["E84.0"], opened_at=now))
    notifier = smtp_notifier(sessions, port)
    assert await CaseActivities(sessions, notifier).record_steps([step]) == 0  # no exception: no retry storm
    assert (await outbox(sessions, case_id))[n.key].status == "pending"
    with SmtpServer(port) as server:
        assert await notifier.deliver_pending(older_than=timedelta(0)) >= 1
        assert await notifier.deliver_pending(older_than=timedelta(0)) == 0
        assert [m["X-CCS-Notice-Key"] for m in server.inbox.messages].count(n.key) == 1
    assert (await outbox(sessions, case_id))[n.key].status == "sent"


async def test_a_refused_recipient_is_marked_failed_not_retried_forever(sessions):
    from aiosmtpd.controller import Controller

    class Refuse:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 no such user"

    port = free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        case_id = new_case()
        n = notice(case_id, "noa")
        assert await smtp_notifier(sessions, port).notify(case_id, [n]) == 0
    finally:
        controller.stop()
    assert (await outbox(sessions, case_id))[n.key].status == "failed"
