"""Notifications: every notice is written to the outbox once per idempotency key, then
delivered through a channel (SMTP email, or a mailbox directory a person can read)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import smtplib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from activities.tables import OutboxRow
from models.case import Notice

log = logging.getLogger(__name__)


class PermanentDeliveryError(Exception):
    """The channel refused this notice for good (e.g. SMTP 5xx): retrying cannot help."""


class Channel(Protocol):
    name: str

    async def send(self, message: EmailMessage, key: str) -> None: ...


def message_id(key: str, domain: str) -> str:
    """A Message-ID fixed by the idempotency key, so a receiver can drop a rare redelivery."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class MailboxChannel:
    """One .eml file per notice in a directory: the one-machine default."""

    name = "mailbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage, key: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".eml"
        tmp = self.directory / (name + ".tmp")
        tmp.write_bytes(bytes(message))
        os.replace(tmp, self.directory / name)  # same key, same file: a retry cannot add a second


class SmtpChannel:
    name = "smtp"

    def __init__(self, host: str, port: int, timeout: float = 20.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    async def send(self, message: EmailMessage, key: str) -> None:
        def _send() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(message)

        try:
            await asyncio.to_thread(_send)
        except smtplib.SMTPRecipientsRefused as e:
            raise PermanentDeliveryError("recipient refused") from e
        except smtplib.SMTPResponseException as e:
            if e.smtp_code >= 500:
                raise PermanentDeliveryError(f"SMTP {e.smtp_code}") from e
            raise


class Notifier:
    """The service activities call: record in the outbox, then deliver at least once.

    A notice is committed 'sent' only after the channel accepted it, so none is ever lost (a
    Notice of Action must reach the family). A worker killed between the channel's acceptance
    and that commit leaves it 'pending', and it is sent again: with the same Message-ID (fixed
    by its idempotency key), so a receiving mail system can drop the copy."""

    def __init__(self, sessions: async_sessionmaker, channel: Channel, mail_from: str,
                 supervisor: str, staff_domain: str = "localhost") -> None:
        self.sessions, self.channel = sessions, channel
        self.mail_from, self.supervisor, self.staff_domain = mail_from, supervisor, staff_domain

    def resolve(self, notice: Notice) -> str | None:
        """The address for a notice; None means a letter to post (no e-mail on file)."""
        if notice.to in ("supervisor", "reviewer"):
            return self.supervisor
        addr = notice.address
        if notice.to == "case_manager":
            if not addr or ":" in addr:  # a queue, not a person: the supervisor hands it out
                return self.supervisor
            return addr if "@" in addr else f"{addr}@{self.staff_domain}"
        return addr

    @staticmethod
    def outbox_rows(case_id: str, notices: list[Notice]) -> list[dict]:
        return [
            dict(key=n.key, case_id=case_id, kind=n.kind, recipient=n.to, address=n.address,
                 subject=n.subject, body=n.body, status="pending", attempts=0)
            for n in notices
        ]

    async def enqueue(self, case_id: str, notices: list[Notice]) -> None:
        if not notices:
            return
        async with self.sessions.begin() as session:
            await session.execute(insert(OutboxRow).values(self.outbox_rows(case_id, notices))
                                  .on_conflict_do_nothing(index_elements=["key"]))

    async def deliver(self, keys: list[str]) -> int:
        """Deliver each pending notice among ``keys``; return how many were sent now."""
        sent = 0
        for key in keys:
            async with self.sessions.begin() as session:
                row = (await session.execute(
                    select(OutboxRow).where(OutboxRow.key == key, OutboxRow.status == "pending")
                    .with_for_update(skip_locked=True))).scalar_one_or_none()
                if row is None:
                    continue  # already sent, or another worker holds it
                row.attempts += 1
                address = self.resolve(Notice(key=row.key, kind=row.kind, to=row.recipient,
                                              address=row.address, subject=row.subject, body=row.body))
                if address is None:
                    row.status, row.channel = "postal", "print"
                    continue
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = self.mail_from, address, row.subject
                msg["Message-ID"] = message_id(row.key, self.mail_from.rpartition("@")[2] or "localhost")
                msg["X-CCS-Notice-Key"] = row.key
                msg.set_content(row.body)
                try:
                    await self.channel.send(msg, row.key)
                except PermanentDeliveryError as e:
                    log.warning("notice %s refused for good: %s", row.key, e)
                    row.status, row.channel = "failed", self.channel.name
                    continue
                # Committed with the row lock held: a retry after this sees "sent".
                row.status, row.channel, row.sent_at = "sent", self.channel.name, datetime.now(timezone.utc)
                sent += 1
        return sent

    async def deliver_pending(self, older_than: timedelta = timedelta(seconds=10), limit: int = 200) -> int:
        """Deliver notices left pending (their channel was down when their step was recorded)."""
        cutoff = datetime.now(timezone.utc) - older_than
        async with self.sessions() as session:
            keys = (await session.scalars(
                select(OutboxRow.key).where(OutboxRow.status == "pending", OutboxRow.created_at < cutoff)
                .order_by(OutboxRow.created_at).limit(limit))).all()
        return await self.deliver(list(keys)) if keys else 0

    async def dispatch_forever(self, every: timedelta = timedelta(seconds=15)) -> None:
        """The worker's background loop for pending notices; a channel outage never stalls a case."""
        while True:
            try:
                await self.deliver_pending()
            except Exception as e:  # the channel is still down: try again next round
                log.warning("pending notices not delivered yet: %s", type(e).__name__)
            await asyncio.sleep(every.total_seconds())

    async def notify(self, case_id: str, notices: list[Notice]) -> int:
        await self.enqueue(case_id, notices)
        return await self.deliver([n.key for n in notices])


def channel_from_settings(settings) -> Channel:
    if settings.notify_channel == "smtp":
        return SmtpChannel(settings.smtp_host, settings.smtp_port)
    if settings.notify_channel == "mailbox":
        return MailboxChannel(settings.mailbox)
    raise ValueError(f"CCS_NOTIFY_CHANNEL must be 'mailbox' or 'smtp', not {settings.notify_channel!r}")
