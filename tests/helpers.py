"""Synthetic people and small helpers shared by tests. No real person appears here."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

from models.case import Actor

ROOT = Path(__file__).resolve().parent.parent
CM = Actor(id="cm.rivera", role="case_manager")
SUP = Actor(id="sup.nguyen", role="supervisor")
MC = Actor(id="dr.consultant", role="medical_consultant")
STATE = Actor(id="state.reviewer", role="state_reviewer")


def referral(**child) -> dict:
    """The example referral for a synthetic child. A child named or born otherwise than the
    example gets a Medi-Cal number (CIN) of its own, derived from the folded name and DOB
    (the CIN identifies a child), unless ``cin`` is given."""
    data = json.loads((ROOT / "examples" / "referral.json").read_text())
    data = copy.deepcopy(data)
    data["child"].update(child)
    if "cin" not in child and {"first_name", "last_name", "date_of_birth"} & set(child):
        data["child"]["cin"] = synthetic_cin(data["child"])
    return data


def synthetic_cin(child: dict) -> str:
    from rules.identity import fold

    who = f"{fold(child['first_name'])}|{fold(child['last_name'])}|{child['date_of_birth']}"
    return f"{int(hashlib.sha256(who.encode()).hexdigest(), 16) % 10**8:08d}Z"


def born_years_ago(today: date, years: int, days: int = 0) -> str:
    return (today.replace(year=today.year - years) - timedelta(days=days)).isoformat()


def act(actor: Actor, **data) -> dict:
    return {"actor": actor.model_dump(), **data}


async def settle(cases, case_id: str, predicate, timeout: float = 10.0):
    """Query the case until ``predicate(status)`` holds: timers fire in workflow tasks
    that may still be running when the test server's clock has moved."""
    import asyncio

    from starters.client import CcsError

    status = None
    for _ in range(int(timeout / 0.05)):
        try:
            status = await cases.show(case_id)
        except CcsError:  # a request workflow the case is still starting
            status = None
        if status is not None and predicate(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"case never reached the expected state; last stage {status.stage if status else None}")


def kinds(status) -> list[str]:
    """Notice kinds sent so far, in order (keys are case/seq/kind/i)."""
    return [k.split("/")[-2] for k in status.notices_sent]


def letter_text(document: bytes) -> str:
    """A stored letter's words: the PDF read back with pypdf, or the HTML of a quick letter."""
    import html
    import io
    import re

    from pypdf import PdfReader

    if document.startswith(b"%PDF"):
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(document)).pages)
    else:
        text = html.unescape(re.sub(r"<[^>]+>", " ", document.decode()))
    return " ".join(text.split())


def quick_letter(data):
    """The letter's template filled and checked, without the PDF layout (about 0.2 s a letter):
    what most tests use; tests/test_letter*.py render and read back real PDFs."""
    from letters.catalog import subject
    from letters.render import Letter, render_html

    page = render_html(data)
    return Letter(kind=data.kind, language=data.language, subject=subject(data.kind, data.language),
                  html=page, pdf=page.encode())


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, distinct from every port this test run has handed out, and
    below the kernel's ephemeral range: a port taken from that range (bind to 0) can be handed
    out twice, or taken by the dev server's own random ports or an outgoing connection before
    the test's server binds it."""
    import random
    import socket

    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 32000)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")
