"""Fonts for WeasyPrint, set up once instead of for every letter.

Profiled under load (bench/RESULTS.md, "CPU profile"), PDF letters were most of the worker's
CPU, and two parts of each render did the same work every time:

- a new FontConfiguration (fontconfig and Pango's font map) per document: a third of a
  letter's CPU. Each rendering thread keeps one (they are not shared between threads);
- subsetting the CJK font of the language-help taglines, whose glyphs are the same in every
  letter: HarfBuzz's subset of a CFF font is costly. A subset is a pure function of the font
  and the glyphs kept, so the result is kept, keyed by both.

Either way the PDF's bytes are the same as without them (tests/test_letters.py checks)."""

from __future__ import annotations

import threading
from collections import OrderedDict

_local = threading.local()
_subsets: OrderedDict[tuple, bytes] = OrderedDict()
_lock = threading.Lock()
SUBSETS_KEPT = 64  # fonts x glyph sets; a letter uses about five fonts, most glyph sets recur


def font_config():
    """This thread's WeasyPrint FontConfiguration."""
    fc = getattr(_local, "fonts", None)
    if fc is None:
        from weasyprint.text.fonts import FontConfiguration

        fc = _local.fonts = FontConfiguration()
    return fc


def keep_subsets() -> None:
    """Remember WeasyPrint's font subsets (idempotent). Without Font.subset (another
    WeasyPrint), letters render as before, only slower."""
    from weasyprint.pdf.fonts import Font

    subset = getattr(Font, "subset", None)
    if subset is None or getattr(subset, "kept", False):
        return

    def kept_subset(font, to_unicode, hinting):
        if not to_unicode:
            return subset(font, to_unicode, hinting)
        # font.hash digests the font's description (family, style, weight, size); the length
        # of its data and its index in a collection tell font files of one family apart.
        key = (font.hash, font.family, font.index, len(font.file_content), bool(font.missing), hinting,
               tuple(sorted(to_unicode)))
        with _lock:
            done = _subsets.get(key)
            if done is not None:
                _subsets.move_to_end(key)
        if done is not None:
            font.file_content = done
            return
        subset(font, to_unicode, hinting)
        with _lock:
            _subsets[key] = font.file_content
            while len(_subsets) > SUBSETS_KEPT:
                _subsets.popitem(last=False)

    kept_subset.kept = True
    Font.subset = kept_subset
