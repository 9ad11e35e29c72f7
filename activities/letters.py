"""Letters at rest: each family or provider notice rendered once to a PDF, sealed with the
product's AES-GCM keyring (a letter is PHI), stored with its case under the notice's key,
and, when it goes by post, queued for the print room."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from activities.tables import LetterRow
from letters.render import LetterData, render
from models.case import Notice
from models.converter import Keyring

log = logging.getLogger(__name__)

# One rendering thread per worker: WeasyPrint is CPU-bound, and this keeps the event loop
# (heartbeats, other activities) free without running two layouts at once.
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="letters")


class LetterStore:
    def __init__(self, sessions: async_sessionmaker, keyring: Keyring, renderer=render) -> None:
        self.sessions, self.keyring, self.renderer = sessions, keyring, renderer

    # ---- sealing: the letter's key is bound into the ciphertext -----------------------

    def seal(self, key: str, pdf: bytes) -> tuple[str, bytes]:
        kid = self.keyring.active
        nonce = os.urandom(12)
        return kid, nonce + AESGCM(self.keyring.keys[kid]).encrypt(nonce, pdf, f"letter:{key}".encode())

    def unseal(self, row: LetterRow) -> bytes:
        key = self.keyring.keys.get(row.key_id)
        if key is None:
            raise KeyError(f"letter {row.key} is sealed with key id {row.key_id!r}, not in CCS_ENCRYPTION_KEYS")
        return AESGCM(key).decrypt(row.sealed[:12], row.sealed[12:], f"letter:{row.key}".encode())

    # ---- rendering ----------------------------------------------------------------------

    async def render_rows(self, case_id: str, notices: list[Notice]) -> list[dict]:
        """Rows for the letters among ``notices`` not stored yet (a retry renders nothing twice)."""
        wanted = [n for n in notices if n.letter]
        if not wanted:
            return []
        async with self.sessions() as session:
            have = set((await session.scalars(
                select(LetterRow.key).where(LetterRow.key.in_([n.key for n in wanted])))).all())
        rows = []
        for notice in wanted:
            if notice.key in have:
                continue
            try:
                data = LetterData.model_validate(notice.letter)
            except ValidationError as e:
                # A workflow bug, never the family's: the notice still goes out as plain text.
                log.error("letter %s (%s) not rendered: %s", notice.key, notice.kind,
                          "; ".join(err["msg"] for err in e.errors()))
                continue
            letter = await asyncio.get_running_loop().run_in_executor(_RENDERER, self.renderer, data)
            kid, sealed = self.seal(notice.key, letter.pdf)
            rows.append(dict(key=notice.key, case_id=case_id, kind=notice.kind, recipient=notice.to,
                             language=letter.language, sha256=hashlib.sha256(letter.pdf).hexdigest(),
                             size=len(letter.pdf), key_id=kid, sealed=sealed))
        return rows

    # ---- reading ------------------------------------------------------------------------

    async def get(self, key: str) -> tuple[LetterRow, bytes] | None:
        async with self.sessions() as session:
            row = await session.get(LetterRow, key)
        return (row, self.unseal(row)) if row else None

    async def for_case(self, case_id: str) -> list[LetterRow]:
        async with self.sessions() as session:
            return list((await session.scalars(
                select(LetterRow).where(LetterRow.case_id == case_id).order_by(LetterRow.created_at))).all())

    async def queue_for_print(self, session, key: str) -> None:
        await session.execute(update(LetterRow).where(LetterRow.key == key, LetterRow.print_status.is_(None))
                              .values(print_status="queued"))

    async def print_queue(self, limit: int = 500) -> list[LetterRow]:
        async with self.sessions() as session:
            return list((await session.scalars(
                select(LetterRow).where(LetterRow.print_status == "queued")
                .order_by(LetterRow.created_at).limit(limit))).all())

    async def mark_printed(self, keys: list[str]) -> int:
        async with self.sessions.begin() as session:
            done = await session.execute(
                update(LetterRow).where(LetterRow.key.in_(keys), LetterRow.print_status == "queued")
                .values(print_status="printed", printed_at=datetime.now(timezone.utc)))
            return done.rowcount
