"""Laying out letters with WeasyPrint, keeping between letters what every letter repeats.

Every letter ends with the same language-help taglines page (per letter language): about
half of a letter's layout and most of its PDF's fonts. It is laid out once per rendering
thread, language and letter length, and its page joined to the letter's own pages
(``Document.copy``). Its "n / N" footer is right because it is laid out after as many blank
pages as the letter has; the letter, in turn, is laid out with a blank page standing in for
each taglines page, so its own footers count them. Pages hold their fonts through the
thread's FontConfiguration (``letters.fonts``), which is why the pages are kept per thread."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from html import unescape
from pathlib import Path

from letters import fonts

_local = threading.local()
STYLESHEET = Path(__file__).resolve().parent / "letter.css"
KEPT = 16  # languages x letter lengths (letters run 1 to 3 pages)


def document(html: str, base_url: str, css):
    """The laid-out document of ``html``, with this thread's fonts and the stylesheet ``css``."""
    from weasyprint import HTML

    fonts.install()
    return HTML(string=html, base_url=base_url).render(font_config=fonts.font_config(), stylesheets=[css])


def stylesheet(language: str, taglines_html: Callable[[int], str]):
    """letter.css with the taglines' faces (letters.fonts) for letters in ``language``, parsed
    once per thread rather than fetched and parsed for every letter. (Given as a user
    stylesheet, it still overrides only WeasyPrint's defaults, which have no !important rule.)"""
    kept = getattr(_local, "css", None)
    if kept is None:
        kept = _local.css = {}
    css = kept.get(language)
    if css is None:
        from weasyprint import CSS

        text = unescape(re.sub(r"<[^>]+>", " ", taglines_html(0)))
        css = kept[language] = CSS(string=STYLESHEET.read_text(encoding="utf-8") + fonts.tagline_faces_css(text),
                                   base_url=str(STYLESHEET), font_config=fonts.font_config())
    return css


def taglines(language: str, before: int, html: Callable[[int], str], base_url: str) -> list:
    """The taglines page(s) of a letter whose own pages number ``before``; ``html(blank)`` is
    the taglines page's HTML after ``blank`` blank pages."""
    kept = getattr(_local, "taglines", None)
    if kept is None:
        kept = _local.taglines = {}
    key = (language, before)
    pages = kept.get(key)
    if pages is None:
        pages = document(html(before), base_url, stylesheet(language, html)).pages[before:]
        if len(kept) >= KEPT:
            kept.clear()
        kept[key] = pages
    return pages


def taglines_length(language: str, html: Callable[[int], str], base_url: str) -> int:
    """How many pages the taglines take (the stand-ins a letter is laid out with)."""
    return len(taglines(language, 0, html, base_url))


def letter(own_pages: Callable[[int], str], language: str, taglines_html: Callable[[int], str], base_url: str):
    """The letter's document: ``own_pages(stand_ins)`` is its HTML with that many blank pages
    standing in for the taglines, which are then replaced by the kept taglines pages."""
    stand_ins = taglines_length(language, taglines_html, base_url)
    doc = document(own_pages(stand_ins), base_url, stylesheet(language, taglines_html))
    own = doc.pages[:len(doc.pages) - stand_ins]
    return doc.copy(own + taglines(language, len(own), taglines_html, base_url))
