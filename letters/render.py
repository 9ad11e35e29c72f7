"""Render a letter: template data -> HTML (Jinja2) -> PDF (WeasyPrint).

Deterministic: the same data gives the same bytes (no clock is read; the PDF's dates and
identifier come from the letter's own date and content)."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, model_validator

from letters.catalog import KINDS, NOA_ACTIONS, RULES, letter_language, subject
from letters import layout

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "reference" / "ccs_offices.json"

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"],
}


class LetterData(BaseModel):
    """Everything a template may print. Facts are strings (dates as ISO 8601)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    preferred_language: str = "en"
    case_id: str
    request_id: str | None = None
    child_name: str | None = None
    county: str
    jurisdiction: Literal["county", "state"] = "county"
    on: date = Field(description="the letter's date (California)")
    facts: dict[str, str] = {}

    @model_validator(mode="after")
    def _known(self) -> "LetterData":
        spec = KINDS.get(self.kind)
        if spec is None:
            raise ValueError(f"no letter template for notice kind {self.kind!r}")
        missing = [f for f in spec.facts if not self.facts.get(f)]
        if missing:
            raise ValueError(f"letter {self.kind!r} needs {', '.join(missing)}")
        if self.kind == "notice_of_action":
            if self.facts["action"] not in NOA_ACTIONS:
                raise ValueError(f"unknown Notice of Action action {self.facts['action']!r}")
            if self.facts["basis"] not in RULES:
                raise ValueError(f"no rule on file for {self.facts['basis']!r}")
        return self

    @property
    def language(self) -> str:
        return letter_language(self.preferred_language)


class Letter(BaseModel):
    kind: str
    language: str
    subject: str
    html: str
    pdf: bytes


@lru_cache(maxsize=1)
def reference() -> dict:
    offices = json.loads(REFERENCE.read_text(encoding="utf-8"))
    taglines = json.loads((HERE / "taglines.json").read_text(encoding="utf-8"))
    return {"offices": offices, "taglines": taglines}


def office(county: str) -> dict:
    """The county's contact as sourced; else its office name with the State contact, unsourced."""
    from models.counties import COUNTIES

    offices = reference()["offices"]
    found = offices["counties"].get(county)
    if found:
        return {**found, "sourced": True}
    name = COUNTIES[county].office.name if county in COUNTIES else f"{county} County CCS"
    state = offices["state"]
    return {"name": name, "address": state["address"], "address_name": state["name"],
            "phone": None, "sourced": False}


def _longdate(value: str | date, language: str) -> str:
    d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    month = MONTHS[language][d.month - 1]
    return f"{month} {d.day}, {d.year}" if language == "en" else f"{d.day} de {month} de {d.year}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env


def render_html(data: LetterData, stand_in: int | None = None) -> str:
    """The letter's HTML; with ``stand_in``, that many blank pages instead of the taglines
    (what is laid out: letters.layout joins the taglines page laid out once)."""
    lang = data.language
    env = environment()
    template = env.get_template(f"{lang}/{data.kind}.html.j2")
    ref = reference()
    extra = {} if stand_in is None else {"stand_in": stand_in}
    return template.render(
        d=data, f=data.facts, lang=lang, office=office(data.county), state=ref["offices"]["state"],
        taglines=ref["taglines"]["languages"], rule=RULES.get(data.facts.get("basis", ""), ""),
        subject=subject(data.kind, lang), date=lambda v: _longdate(v, lang),
        state_decides=data.jurisdiction == "state", **extra,
    )


def taglines_html(language: str, blank: int) -> str:
    """The taglines page after ``blank`` blank pages."""
    return environment().get_template("taglines_page.html.j2").render(
        lang=language, blank=blank, taglines=reference()["taglines"]["languages"])


def body_text(data: LetterData) -> str:
    """The letter's own words, as plain text: what its reading level is measured on (not the
    address block, nor the multilingual taglines)."""
    import html
    import re

    main = re.search(r"<main>(.*)</main>", render_html(data), re.S).group(1)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


def render_pdf(html: str, data: LetterData) -> bytes:
    """The PDF of the letter whose whole HTML is ``html``."""
    lang = data.language
    doc = layout.letter(lambda stand_in: render_html(data, stand_in), lang,
                        lambda blank: taglines_html(lang, blank), str(HERE))
    return pdf_bytes(doc, html, data)


def pdf_bytes(doc, html: str, data: LetterData) -> bytes:
    """The laid-out letter ``doc`` written as a PDF. Fixed metadata: the letter's own date,
    never the clock, and an identifier from its HTML, so the same data is the same bytes."""
    stamp = data.on.isoformat()
    doc.metadata.created = doc.metadata.modified = stamp
    doc.metadata.title = subject(data.kind, data.language)
    ident = hashlib.sha256(html.encode()).hexdigest()[:32].encode()
    buf = io.BytesIO()
    doc.write_pdf(buf, pdf_identifier=ident)
    return buf.getvalue()


def render(data: LetterData) -> Letter:
    html = render_html(data)
    return Letter(kind=data.kind, language=data.language, subject=subject(data.kind, data.language),
                  html=html, pdf=render_pdf(html, data))
