"""`ccs letters print-queue`: the letters that go by post (the family has no e-mail on
file), oldest first; with --out, each written as a PDF for the print room, and with
--mark-printed, taken off the queue so no letter is printed twice."""

from __future__ import annotations

import os
from pathlib import Path

from activities.letters import LetterStore
from starters.client import CcsError


def add_verbs(verb) -> None:
    sp = verb("letters", cmd_letters, "letters to families: the print queue")
    sp.add_argument("what", choices=["print-queue"], help="print-queue: letters waiting to go by post")
    sp.add_argument("--out", type=Path, help="write each queued letter's PDF into this directory")
    sp.add_argument("--mark-printed", action="store_true", help="take the written letters off the queue")


async def print_queue(store: LetterStore, out: Path | None = None, mark_printed: bool = False) -> list[dict]:
    if mark_printed and out is None:
        raise CcsError("--mark-printed needs --out DIR: a letter leaves the queue only once it is written out")
    rows = await store.print_queue()
    items = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)  # the PDFs name children
    for row in rows:
        item = {"key": row.key, "case_id": row.case_id, "kind": row.kind, "language": row.language,
                "queued_at": row.created_at.isoformat(), "size": row.size}
        if out is not None:
            item["file"] = row.key.replace("/", "_") + ".pdf"
            path = out / item["file"]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(store.unseal(row))
        items.append(item)
    if mark_printed and rows:
        await store.mark_printed([r.key for r in rows])
    return items


async def cmd_letters(args) -> None:
    from activities.db import make_engine, session_factory
    from models.converter import load_keyring
    from starters.cli import _emit, _settings
    from starters.supervisor import _table, database_url_for_cli

    settings = _settings()
    engine = make_engine(database_url_for_cli(settings), pool_size=2)
    try:
        store = LetterStore(session_factory(engine), load_keyring(settings))
        items = await print_queue(store, args.out, args.mark_printed)
    finally:
        await engine.dispose()
    text = _table(items, [("queued_at", "QUEUED"), ("case_id", "CASE"), ("kind", "LETTER"),
                          ("language", "LANG"), ("file", "FILE")])
    done = " (marked printed)" if args.mark_printed and items else ""
    _emit(args, {"letters": items}, f"{text}\n{len(items)} letter(s) to print{done}")
