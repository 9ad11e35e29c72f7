"""Letters stored and delivered: sealed at rest, mailed once as a PDF attachment with no PHI
in the subject, queued for print when the family has no e-mail; SMTP over STARTTLS with
login against a local TLS server whose certificate is made here; plain SMTP refused unless
allowed; and a real case whose letters come out in the family's language."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import io
import json
import os
import ssl
import uuid

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypdf import PdfReader
from sqlalchemy import event, select, update
from temporalio.testing import ActivityEnvironment

from activities.letters import LetterStore
from activities.rendering import RenderingProcess
from activities.notify import InsecureServerError, MailboxChannel, Notifier, SmtpChannel
from activities.storage import CaseActivities
from activities.tables import LetterRow, OutboxRow
from letters.catalog import subject
from letters.samples import sample
from models.case import Notice, StepRecord
from starters.cli import main
from starters.letters import case_letters, print_queue
from tests.conftest import INTAKE, KEYRING
from tests.helpers import referral
from tests.letter_crash import dies_once
from tests.test_notify import Inbox, free_port

CHILD = "Mateo Testcase"


def letter_notice(case_id: str, kind: str = "notice_of_action", address: str | None = "family@example.org",
                  language: str = "en") -> Notice:
    data = sample(kind, language, case_id=case_id).model_dump(mode="json")
    return Notice(key=f"{case_id}/1/{kind}/0", kind=kind, to="family", address=address,
                  subject=subject(kind, language), body="", letter=data)


def step(case_id: str, notices: list[Notice]) -> StepRecord:
    return StepRecord(case_id=case_id, source=case_id, seq=1, at=dt.datetime.now(dt.timezone.utc), actor_id="system",
                      actor_role="system", action="timer:test", stage="denied", county="Kern", notices=notices)


def pdf_text(pdf: bytes) -> str:
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())


@pytest.fixture
def store(sessions) -> LetterStore:
    return LetterStore(sessions, KEYRING)


async def test_a_letter_is_sealed_mailed_once_as_a_pdf_and_a_retry_changes_nothing(sessions, store, tmp_path):
    mailbox = tmp_path / "mail"
    acts = CaseActivities(sessions, Notifier(sessions, MailboxChannel(mailbox), "ccs@county.example",
                                             "sup@county.example", letters=store))
    case_id = f"case-test-{uuid.uuid4().hex[:16]}"
    steps = [step(case_id, [letter_notice(case_id)])]
    env = ActivityEnvironment()
    assert await env.run(acts.record_steps, steps) == 0  # the letter goes out after the step is recorded
    await acts.notifier.drain()
    assert await env.run(acts.record_steps, steps) == 0  # the retried activity
    await acts.notifier.drain()

    [eml] = list(mailbox.glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "CCS Notice of Action"
    assert CHILD not in msg["Subject"] and CHILD not in msg.get_body(("plain",)).get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    text = pdf_text(attachment.get_content())
    assert CHILD in text and "you have the right to appeal" in text

    async with sessions() as s:
        [row] = (await s.scalars(select(LetterRow).where(LetterRow.case_id == case_id))).all()
    for blob in (row.sealed, row.data):  # the PDF and its template data, encrypted at rest
        assert CHILD.encode() not in blob and b"%PDF" not in blob
    stored = store.unseal(row)
    assert stored == attachment.get_content()
    assert row.language == "en" and row.print_status is None


async def test_a_family_without_e_mail_gets_a_printed_letter_from_the_queue(sessions, store, tmp_path, database_url,
                                                                            monkeypatch, capsys):
    acts = CaseActivities(sessions, Notifier(sessions, MailboxChannel(tmp_path / "mail"), "ccs@county.example",
                                             "sup@county.example", letters=store))
    case_id = f"case-test-{uuid.uuid4().hex[:16]}"
    await ActivityEnvironment().run(acts.record_steps, [step(case_id, [letter_notice(case_id, address=None,
                                                                                     language="es")])])
    await acts.notifier.drain()
    assert not list((tmp_path / "mail").glob("*.eml"))
    async with sessions() as s:
        outbox = (await s.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id))).one()
    assert (outbox.status, outbox.channel) == ("postal", "print")

    # The clerk: `ccs letters print-queue --out DIR --mark-printed`.
    out = tmp_path / "print"
    for name, value in {"DATABASE_URL": database_url, "CCS_HOME": str(tmp_path / "home"),
                        "CCS_ENCRYPTION_KEYS": ",".join(f"{k}:{base64.b64encode(v).decode()}"
                                                        for k, v in KEYRING.keys.items()),
                        "CCS_CASE_ID_SECRET": base64.b64encode(KEYRING.case_id_secret).decode()}.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["letters", "print-queue", "--out", str(out), "--mark-printed", "--json"]) == 0
    queued = json.loads(capsys.readouterr().out)["letters"]
    mine = [q for q in queued if q["case_id"] == case_id]
    assert len(mine) == 1 and mine[0]["language"] == "es"
    printed = (out / mine[0]["file"]).read_bytes()
    assert "Aviso de Acción de CCS" in pdf_text(printed) and CHILD in pdf_text(printed)
    # Printed once: the queue no longer lists it; the case's letters say it was printed.
    assert case_id not in [q["case_id"] for q in await print_queue(store)]
    assert [(x["kind"], x["print_status"]) for x in await case_letters(store, case_id)] == [
        ("notice_of_action", "printed")]


async def test_delivery_reads_each_letter_once_and_opens_a_stored_pdf_only_to_mail_it(sessions, engine, store,
                                                                                      tmp_path, monkeypatch):
    reads, opened = [], []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM letters" in statement:
            reads.append(statement)

    unseal = store.unseal
    monkeypatch.setattr(store, "unseal", lambda row: opened.append(row.kind) or unseal(row))
    mailbox = tmp_path / "mail"
    acts = CaseActivities(sessions, Notifier(sessions, MailboxChannel(mailbox), "ccs@county.example",
                                             "sup@county.example", letters=store))
    case_id = f"case-test-{uuid.uuid4().hex[:16]}"
    posted, mailed = letter_notice(case_id, address=None), letter_notice(case_id, "case_open")
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        await ActivityEnvironment().run(acts.record_steps, [step(case_id, [posted, mailed])])
        await acts.notifier.drain()
        assert len(reads) == 2 and opened == []  # one read per letter; each PDF mailed as rendered
        # A worker that died after mailing, before marking it sent: the stored PDF goes again.
        [first] = [eml.read_bytes() for eml in mailbox.glob("*.eml")]
        async with sessions.begin() as s:
            await s.execute(update(OutboxRow).where(OutboxRow.key == mailed.key).values(status="pending"))
        assert await acts.notifier.deliver([posted.key, mailed.key]) == 1
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert len(reads) == 4 and opened == ["case_open"]
    [again] = [eml.read_bytes() for eml in mailbox.glob("*.eml")]  # the same Message-ID: it replaced the first
    assert again == first  # the very same e-mail, byte for byte
    async with sessions() as s:
        letters = {r.kind: r for r in (await s.scalars(select(LetterRow).where(LetterRow.case_id == case_id)))}
        outbox = {r.kind: r.status for r in (await s.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id)))}
    assert outbox == {"notice_of_action": "postal", "case_open": "sent"}
    assert (letters["notice_of_action"].print_status, letters["case_open"].print_status) == ("queued", None)


async def test_a_rendering_process_that_dies_is_replaced_and_the_letter_still_goes_out(sessions, tmp_path,
                                                                                       monkeypatch):
    marker = tmp_path / "crashed"
    monkeypatch.setenv("CCS_TEST_RENDER_CRASH", str(marker))  # the spawned process inherits it
    process = RenderingProcess(dies_once)
    store = LetterStore(sessions, KEYRING, renderer=process)
    mailbox = tmp_path / "mail"
    acts = CaseActivities(sessions, Notifier(sessions, MailboxChannel(mailbox), "ccs@county.example",
                                             "sup@county.example", letters=store))
    case_id = f"case-test-{uuid.uuid4().hex[:16]}"
    try:
        await ActivityEnvironment().run(acts.record_steps, [step(case_id, [letter_notice(case_id, "case_open")])])
        await acts.notifier.drain()
        [eml] = list(mailbox.glob("*.eml"))  # mailed, though the first process died under it
        survivor = set(process._pool._processes)  # the replacement, still serving
    finally:
        process.shutdown()
    died = int(marker.read_text())
    assert died != os.getpid() and died not in survivor  # laid out in a child process, which died once
    attachment = next(email.message_from_bytes(eml.read_bytes(), policy=email.policy.default).iter_attachments())
    assert CHILD in pdf_text(attachment.get_content())
    async with sessions() as s:
        outbox = (await s.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id))).one()
    assert outbox.status == "sent"


# ---- SMTP over TLS --------------------------------------------------------------------


def certificate(directory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made for this test only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


class Login:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.seen.append(auth_data.login.decode())
        return AuthResult(success=auth_data.login == b"ccs-mailer" and auth_data.password == b"s3cret",
                          handled=False)


@pytest.fixture
def tls_smtp(tmp_path):
    cert, key = certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox, login = Inbox(), Login()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=server_tls, require_starttls=True,
                     authenticator=login, auth_require_tls=True)
    ctl.start()
    yield ctl.port, inbox, login, ssl.create_default_context(cafile=cert)
    ctl.stop()


async def test_smtp_goes_over_starttls_with_login_and_attaches_the_letter(sessions, store, tls_smtp):
    port, inbox, login, client_tls = tls_smtp
    channel = SmtpChannel("127.0.0.1", port, timeout=5, user="ccs-mailer", password="s3cret", tls=client_tls)
    notifier = Notifier(sessions, channel, "ccs@county.example", "sup@county.example", letters=store)
    acts = CaseActivities(sessions, notifier)
    case_id = f"case-test-{uuid.uuid4().hex[:16]}"
    await ActivityEnvironment().run(acts.record_steps, [step(case_id, [letter_notice(case_id)])])
    await notifier.drain()
    assert login.seen == ["ccs-mailer"]
    [msg] = inbox.messages
    [attachment] = list(msg.iter_attachments())
    assert CHILD in pdf_text(attachment.get_content())


async def test_a_wrong_certificate_or_password_sends_nothing(sessions, tls_smtp):
    port, inbox, _, client_tls = tls_smtp
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ccs@county.example", "family@example.org", "test"
    with pytest.raises(Exception, match="535|Authentication"):
        await SmtpChannel("127.0.0.1", port, timeout=5, user="ccs-mailer", password="wrong",
                          tls=client_tls).send(msg, "k2")
    with pytest.raises(ssl.SSLError):  # the default trust store does not know the test's certificate
        await SmtpChannel("127.0.0.1", port, timeout=5, user="ccs-mailer", password="s3cret").send(msg, "k1")
    assert inbox.messages == []


async def test_a_server_without_tls_is_refused_unless_plain_is_allowed(sessions):
    from email.message import EmailMessage

    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "ccs@county.example", "family@example.org", "test"
        with pytest.raises(InsecureServerError, match="CCS_SMTP_ALLOW_PLAIN"):
            await SmtpChannel("127.0.0.1", ctl.port, timeout=5).send(msg, "k1")
        assert inbox.messages == []
        await SmtpChannel("127.0.0.1", ctl.port, timeout=5, allow_plain=True).send(msg, "k2")
        assert len(inbox.messages) == 1
    finally:
        ctl.stop()


# ---- a real case ------------------------------------------------------------------------


@pytest.fixture
def notifier(sessions, mailbox) -> Notifier:
    """This module's workers render letters (the rest of the suite keeps plain notices)."""
    return Notifier(sessions, MailboxChannel(mailbox), "ccs@county.example", "supervisor@county.example",
                    letters=LetterStore(sessions, KEYRING))


async def test_a_spanish_speaking_family_gets_its_application_letter_in_spanish(ts_worker, sessions, mailbox):
    _, cases = ts_worker
    data = referral(first_name="Lucia", last_name="Testcase", preferred_language="es")
    data["child"]["guardian"] = {"name": "Ana Testcase", "email": "ana.testcase@example.org"}
    case = await cases.refer(data, INTAKE)
    for _ in range(200):  # the step (and its letter) is recorded by an activity after the referral returns
        async with sessions() as s:
            rows = (await s.scalars(select(LetterRow).where(LetterRow.case_id == case.case_id))).all()
        if rows and list(mailbox.glob("*.eml")):
            break
        await asyncio.sleep(0.05)
    assert [(r.kind, r.language, r.recipient) for r in rows] == [("application_packet", "es", "family")]
    emails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in mailbox.glob("*.eml")]
    [msg] = [m for m in emails if m["To"] == "ana.testcase@example.org"]
    assert msg["Subject"] == "Su solicitud de CCS"
    text = pdf_text(next(msg.iter_attachments()).get_content())
    assert "Esta carta es sobre Lucia Testcase" in text and "Kern County CCS" in text
