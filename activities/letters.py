"""Letters at rest: each family or provider notice rendered once to a PDF, sealed with the
product's AES-GCM keyring (a letter is PHI), stored with its case under the notice's key,
and, when it goes by post, queued for the print room."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime, timezone

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from activities.rendering import PROCESS, RenderingProcess, RenderingThread
from activities.tables import CaseRow, LetterRow
from letters.render import LetterData
from models.case import Notice
from models.converter import Keyring

log = logging.getLogger(__name__)

class LetterStore:
    def __init__(self, sessions: async_sessionmaker, keyring: Keyring, renderer=PROCESS) -> None:
        """``renderer``: the worker's rendering process (activities.rendering), another
        RenderingProcess, or a plain function run on a thread (tests)."""
        self.sessions, self.keyring = sessions, keyring
        self.renderer = renderer if isinstance(renderer, RenderingProcess) else RenderingThread(renderer)

    # ---- sealing: the letter's key is bound into the ciphertext -----------------------

    def seal(self, key: str, plain: bytes, what: str = "letter", kid: str | None = None) -> tuple[str, bytes]:
        kid = kid or self.keyring.active
        nonce = os.urandom(12)
        return kid, nonce + AESGCM(self.keyring.keys[kid]).encrypt(nonce, plain, f"{what}:{key}".encode())

    def _open(self, row: LetterRow, blob: bytes, what: str) -> bytes:
        key = self.keyring.keys.get(row.key_id)
        if key is None:
            raise KeyError(f"letter {row.key} is sealed with key id {row.key_id!r}, not in CCS_ENCRYPTION_KEYS")
        return AESGCM(key).decrypt(blob[:12], blob[12:], f"{what}:{row.key}".encode())

    def unseal(self, row: LetterRow) -> bytes:
        """The letter's PDF."""
        if row.sealed is None:
            raise LookupError(f"letter {row.key} is not rendered yet")
        return self._open(row, row.sealed, "letter")

    # ---- recording (inside the step's transaction: cheap) -------------------------------

    def data_rows(self, case_id: str, notices: list[Notice]) -> list[dict]:
        """A row per letter among ``notices``: its template data, checked and sealed. The PDF
        is rendered after the step is recorded, so a case never waits for a layout."""
        rows = []
        for notice in notices:
            if not notice.letter:
                continue
            try:
                data = LetterData.model_validate(notice.letter)
            except ValidationError as e:
                # A workflow bug, never the family's: the notice still goes out as plain text.
                log.error("letter %s (%s) not rendered: %s", notice.key, notice.kind,
                          "; ".join(err["msg"] for err in e.errors()))
                continue
            kid, sealed = self.seal(notice.key, data.model_dump_json().encode(), "letter-data")
            rows.append(dict(key=notice.key, case_id=case_id, kind=notice.kind, recipient=notice.to,
                             language=data.language, key_id=kid, data=sealed))
        return rows

    # ---- rendering (before delivery, in the worker's rendering process) -----------------

    async def rendered(self, row: LetterRow) -> bytes:
        """The row's PDF, rendered and stored now if it was not yet (same data, same bytes)."""
        if row.sealed is not None:
            return self.unseal(row)
        data = LetterData.model_validate_json(self._open(row, row.data, "letter-data"))
        letter = await self.renderer.render(data)
        _, row.sealed = self.seal(row.key, letter.pdf, kid=row.key_id)  # one key ID per row
        row.sha256, row.size = hashlib.sha256(letter.pdf).hexdigest(), len(letter.pdf)
        return letter.pdf

    async def ensure_rendered(self, key: str) -> tuple[LetterRow | None, bytes | None]:
        """Render a stored letter's PDF if it is not yet, holding no connection or lock while
        the layout runs (a burst of letters must not starve the step recorder of connections).

        Returns the letter's row as read (None: no letter under ``key``) and the PDF if it was
        rendered now; delivery reads the row once, and opens a stored PDF only to e-mail it."""
        async with self.sessions() as session:
            row = await session.get(LetterRow, key)
            if row is None or row.sealed is not None:
                return row, None
            session.expunge(row)
        pdf = await self.rendered(row)
        async with self.sessions.begin() as session:
            await session.execute(update(LetterRow).where(LetterRow.key == key, LetterRow.sealed.is_(None))
                                  .values(sealed=row.sealed, sha256=row.sha256, size=row.size))
        return row, pdf

    async def queue_for_print(self, session, key: str) -> None:
        """Queue a letter for the print room (inside the caller's transaction); once only."""
        await session.execute(update(LetterRow).where(LetterRow.key == key, LetterRow.print_status.is_(None))
                              .values(print_status="queued"))

    # ---- reading ------------------------------------------------------------------------

    async def get(self, key: str) -> tuple[LetterRow, bytes | None] | None:
        """A letter and its PDF (None while it waits to be rendered)."""
        async with self.sessions() as session:
            row = await session.get(LetterRow, key)
        return (row, self.unseal(row) if row.sealed is not None else None) if row else None

    async def for_case(self, case_id: str) -> list[LetterRow]:
        async with self.sessions() as session:
            return list((await session.scalars(
                select(LetterRow).where(LetterRow.case_id == case_id).order_by(LetterRow.created_at))).all())

    async def print_queue(self, limit: int = 500, county: str | None = None) -> list[LetterRow]:
        """Letters waiting to go by post, oldest first; with ``county``, only that county's cases."""
        q = select(LetterRow).where(LetterRow.print_status == "queued")
        if county is not None:
            q = q.where(LetterRow.case_id.in_(select(CaseRow.case_id).where(CaseRow.county == county)))
        async with self.sessions() as session:
            return list((await session.scalars(q.order_by(LetterRow.created_at).limit(limit))).all())

    async def mark_printed(self, keys: list[str]) -> int:
        async with self.sessions.begin() as session:
            done = await session.execute(
                update(LetterRow).where(LetterRow.key.in_(keys), LetterRow.print_status == "queued")
                .values(print_status="printed", printed_at=datetime.now(timezone.utc)))
            return done.rowcount
