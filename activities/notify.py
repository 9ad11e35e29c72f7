"""Notifications: every notice is written to the outbox once per idempotency key, then
delivered through a channel (SMTP email, or a mailbox directory a person can read)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import smtplib
import ssl
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from activities.letters import LetterStore
from activities.tables import LetterRow, OutboxRow
from models.case import Notice

log = logging.getLogger(__name__)


class PermanentDeliveryError(Exception):
    """The channel refused this notice for good (e.g. SMTP 5xx): retrying cannot help."""


class InsecureServerError(Exception):
    """The mail server cannot encrypt and plain delivery is not allowed: notices stay pending."""


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
    """SMTP with STARTTLS (certificate verified) and login when a user is configured. A
    server that offers no STARTTLS is refused unless plain delivery is explicitly allowed."""

    name = "smtp"

    def __init__(self, host: str, port: int, timeout: float = 20.0, user: str | None = None,
                 password: str | None = None, allow_plain: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.user, self.password, self.allow_plain = user, password, allow_plain
        self.tls = tls or ssl.create_default_context()

    def _secure(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=self.tls)
            smtp.ehlo()
        elif not self.allow_plain:
            raise InsecureServerError(f"SMTP server {self.host}:{self.port} offers no STARTTLS; letters name "
                                      "children, so they are not sent in clear. Fix the server, or set "
                                      "CCS_SMTP_ALLOW_PLAIN=true to accept plain delivery")
        if self.user:
            smtp.login(self.user, self.password or "")

    async def send(self, message: EmailMessage, key: str) -> None:
        def _send() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                self._secure(smtp)
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
                 supervisor: str, staff_domain: str = "localhost", letters: LetterStore | None = None) -> None:
        self.sessions, self.channel = sessions, channel
        self.mail_from, self.supervisor, self.staff_domain = mail_from, supervisor, staff_domain
        self.letters = letters  # None: notices go as plain text (no PDF letters)
        self._later: set[asyncio.Task] = set()
        self._gate = asyncio.Semaphore(2)  # background deliveries at once: each holds a connection

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
            letter, pdf = await self.letters.ensure_rendered(key) if self.letters is not None else (None, None)
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
                    if letter is not None:
                        await self.letters.queue_for_print(session, key)
                    continue
                msg = envelope(self.mail_from, address, row.subject, row.key)
                if letter is None:
                    msg.set_content(row.body)
                else:
                    attach_letter(msg, row, letter, pdf if pdf is not None else self.letters.unseal(letter))
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

    def deliver_later(self, keys: list[str]) -> None:
        """Render and deliver letters in the background: the step that sent them is recorded,
        and its workflow goes on without waiting for a layout. Should this process die first,
        the dispatcher (deliver_pending) finds them pending in the outbox."""
        if not keys:
            return
        task = asyncio.create_task(self._deliver_quietly(keys))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _deliver_quietly(self, keys: list[str]) -> None:
        try:
            async with self._gate:
                await self.deliver(keys)
        except Exception as e:  # the dispatcher tries again
            log.warning("letters not delivered yet: %s", type(e).__name__)

    async def drain(self) -> None:
        """Wait for the letters being rendered and delivered in the background."""
        while self._later:
            await asyncio.gather(*list(self._later), return_exceptions=True)

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


COVER = {
    "en": "Please read the letter attached to this e-mail (PDF). It is from California Children's Services "
          "(CCS).\nCase: {case_id}\n\nFree help in your language: (916) 440-7370, 711.\n",
    "es": "Por favor, lea la carta adjunta a este correo (PDF). Es de Servicios para Niños de California "
          "(CCS).\nCaso: {case_id}\n\nAyuda gratis en su idioma: (916) 440-7370, 711.\n",
}


def envelope(mail_from: str, to: str, subject: str, key: str) -> EmailMessage:
    """A notice's e-mail headers: its Message-ID is fixed by the notice's key (a resend is
    the same message), and the key travels with it."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mail_from, to, subject
    msg["Message-ID"] = message_id(key, mail_from.rpartition("@")[2] or "localhost")
    msg["X-CCS-Notice-Key"] = key
    return msg


def attach_letter(msg: EmailMessage, row: OutboxRow, letter: LetterRow, pdf: bytes) -> None:
    """The e-mail carries the letter as a PDF; its text says nothing about the child."""
    msg.set_content(COVER.get(letter.language, COVER["en"]).format(case_id=row.case_id))
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"ccs-{letter.kind}.pdf")
    # A boundary of our own, fixed by the notice's key: "=_" never occurs in quoted-printable or
    # base64 text, so the generator need not search the whole message for a random one that
    # does not (a fifth of the e-mail's CPU), and a resent letter is the same e-mail.
    msg.set_boundary("=_ccs-" + hashlib.sha256(row.key.encode()).hexdigest()[:32])


def channel_from_settings(settings) -> Channel:
    if settings.notify_channel == "smtp":
        tls = ssl.create_default_context(cafile=settings.smtp_ca_file) if settings.smtp_ca_file else None
        return SmtpChannel(settings.smtp_host, settings.smtp_port, user=settings.smtp_user,
                           password=settings.smtp_password, allow_plain=settings.smtp_allow_plain, tls=tls)
    if settings.notify_channel == "mailbox":
        return MailboxChannel(settings.mailbox)
    raise ValueError(f"CCS_NOTIFY_CHANNEL must be 'mailbox' or 'smtp', not {settings.notify_channel!r}")
