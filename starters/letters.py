"""`ccs letters list CASE_ID`: a case's letters. `ccs letters print-queue`: the letters
that go by post (the family has no e-mail on file), oldest first; with --out, each written
as a PDF for the print room, and with --mark-printed, taken off the queue so no letter is
printed twice. `ccs letters list CASE_ID --out DIR` writes a case's letters the same way."""

from __future__ import annotations

import os
from pathlib import Path

from activities.letters import LetterStore
from starters.client import CcsError


def add_verbs(verb) -> None:
    sp = verb("letters", cmd_letters, "letters to families: a case's letters, the print queue")
    sp.add_argument("what", choices=["list", "print-queue"],
                    help="list CASE_ID: a case's letters; print-queue: letters waiting to go by post")
    sp.add_argument("case_id", nargs="?", help="the case (for list)")
    sp.add_argument("--out", type=Path, help="write each queued letter's PDF into this directory")
    sp.add_argument("--mark-printed", action="store_true", help="take the written letters off the queue")


async def print_queue(store: LetterStore, out: Path | None = None, mark_printed: bool = False) -> list[dict]:
    if mark_printed and out is None:
        raise CcsError("--mark-printed needs --out DIR: a letter leaves the queue only once it is written out")
    rows = await store.print_queue()
    items = _write(store, rows, out)
    if mark_printed and rows:
        await store.mark_printed([r.key for r in rows])
    return items


async def case_letters(store: LetterStore, case_id: str, out: Path | None = None) -> list[dict]:
    return _write(store, await store.for_case(case_id), out)


def _write(store: LetterStore, rows, out: Path | None) -> list[dict]:
    items = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)  # the PDFs name children
    for row in rows:
        item = {"key": row.key, "case_id": row.case_id, "kind": row.kind, "language": row.language,
                "to": row.recipient, "created_at": row.created_at.isoformat(), "size": row.size,
                "print_status": row.print_status}
        if out is not None:
            item["file"] = row.key.replace("/", "_") + ".pdf"
            path = out / item["file"]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(store.unseal(row))
        items.append(item)
    return items


async def cmd_letters(args) -> None:
    from activities.db import make_engine, session_factory
    from models.converter import load_keyring
    from starters.console import emit as _emit, load_settings as _settings
    from starters.supervisor import _table, database_url_for_cli

    if args.what == "list" and not args.case_id:
        raise CcsError("ccs letters list needs a CASE_ID")
    if args.what == "list" and args.mark_printed:
        raise CcsError("--mark-printed goes with print-queue")
    settings = _settings()
    engine = make_engine(database_url_for_cli(settings), pool_size=2)
    try:
        store = LetterStore(session_factory(engine), load_keyring(settings))
        if args.what == "list":
            items = await case_letters(store, args.case_id, args.out)
        else:
            items = await print_queue(store, args.out, args.mark_printed)
    finally:
        await engine.dispose()
    text = _table(items, [("created_at", "WHEN"), ("case_id", "CASE"), ("kind", "LETTER"), ("to", "TO"),
                          ("language", "LANG"), ("print_status", "PRINT"), ("file", "FILE")])
    what = "letter(s)" if args.what == "list" else "letter(s) to print"
    done = " (marked printed)" if args.mark_printed and items else ""
    _emit(args, {"letters": items}, f"{text}\n{len(items)} {what}{done}")
