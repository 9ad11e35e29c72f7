"""Fonts for WeasyPrint, set up once instead of for every letter.

Profiled under load (bench/RESULTS.md, "CPU profile"), PDF letters were most of the worker's
CPU, and four parts of each render did the same work every time:

- a new FontConfiguration (fontconfig and Pango's font map) per document: a third of a
  letter's CPU. Each rendering thread keeps one (they are not shared between threads);
- subsetting the CJK font of the language-help taglines, whose glyphs are the same in every
  letter: HarfBuzz's subset of a CFF font is costly. A subset is a pure function of the font
  and the glyphs kept, so the result is kept, keyed by both;
- compressing (zlib, level 9) the same font subsets into every PDF, twice each: the
  compressed stream is kept with the subset it was made from (the very same bytes object);
- copying each font's whole file out of HarfBuzz for every letter (the CJK collections are
  about 20 MB each; since the taglines have faces of their own, only a name written in CJK
  uses them). The copy is kept while the font stays loaded (at the same address, of the
  same length, with the same first and last bytes), at the cost of holding it in memory.

Either way the PDF's bytes are the same as without them (tests/test_letters.py checks)."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

_local = threading.local()
_lock = threading.Lock()
_subsets: OrderedDict[tuple, bytes] = OrderedDict()
SUBSETS_KEPT = 64  # fonts x glyph sets; a letter uses about five fonts, most glyph sets recur
_streams: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()
STREAMS_KEPT = 64
STREAM_MIN = 1 << 10  # smaller streams are compressed as before
_faces: OrderedDict[tuple[int, int], bytes] = OrderedDict()
FACES_KEPT = 8  # a letter uses about five font files
BIG = 1 << 20  # font files worth keeping (not the small ones, nor each letter's subsets)
CHECKED = 4096  # bytes compared at each end: a font file's table directory holds its tables' checksums
_installed = False


def font_config():
    """This thread's WeasyPrint FontConfiguration."""
    fc = getattr(_local, "fonts", None)
    if fc is None:
        from weasyprint.text.fonts import FontConfiguration

        fc = _local.fonts = FontConfiguration()
    return fc


def install() -> None:
    """Keep font subsets, their compressed streams and font files between letters (once per
    process, whichever thread renders first)."""
    global _installed
    with _lock:
        if not _installed:
            keep_subsets()
            keep_face_data()
            keep_compressed_fonts()
            _installed = True


def keep_compressed_fonts() -> None:
    """Keep pydyf's compressed stream of a large single-part stream (a font), keyed by the
    identity of its bytes, which the entry holds so the identity cannot be reused."""
    import zlib

    import pydyf

    data = getattr(pydyf.Stream, "data", None)
    if not isinstance(data, property) or getattr(data.fget, "kept", False):
        return

    def kept_data(stream):
        parts = stream.stream
        if not (stream.compress and len(parts) == 1 and isinstance(parts[0], bytes) and len(parts[0]) >= STREAM_MIN):
            return data.fget(stream)
        raw = parts[0]
        with _lock:
            entry = _streams.get(id(raw))
            if entry is not None and entry[0] is raw:
                _streams.move_to_end(id(raw))
        if entry is None or entry[0] is not raw:
            compressor = zlib.compressobj(level=9)  # as pydyf does
            entry = (raw, compressor.compress(raw) + compressor.flush())
            with _lock:
                _streams[id(raw)] = entry
                while len(_streams) > STREAMS_KEPT:
                    _streams.popitem(last=False)
        extra = pydyf.Dictionary(stream.extra.copy())
        extra["Filter"], extra["Length"] = "/FlateDecode", len(entry[1])
        return b"\n".join((extra.data, b"stream", entry[1], b"endstream"))

    kept_data.kept = True
    pydyf.Stream.data = property(kept_data)


def keep_face_data() -> None:
    """Keep the copies of font files WeasyPrint takes for every PDF. Without the function
    (another WeasyPrint), letters render as before, only slower."""
    from weasyprint.pdf import fonts as pdf_fonts

    copy = getattr(pdf_fonts, "get_hb_object_data", None)
    if copy is None or getattr(copy, "kept", False):
        return
    from weasyprint.text.ffi import ffi, harfbuzz

    def kept_copy(hb_object, ot_color=None, glyph=None):
        if ot_color is not None:  # a colour glyph, not a face: as it was
            return copy(hb_object, ot_color, glyph)
        blob = harfbuzz.hb_face_reference_blob(hb_object)
        try:
            length = ffi.new("unsigned int *")
            data = harfbuzz.hb_blob_get_data(blob, length)
            if data == ffi.NULL:
                return None
            size = int(length[0])
            if size < BIG:
                return ffi.unpack(data, size)
            key, live = (int(ffi.cast("uintptr_t", data)), size), ffi.buffer(data, size)
            with _lock:
                kept = _faces.get(key)
            if kept is not None and kept[:CHECKED] == live[:CHECKED] and kept[-CHECKED:] == live[-CHECKED:]:
                return kept
            kept = ffi.unpack(data, size)
            with _lock:
                _faces[key] = kept
                while len(_faces) > FACES_KEPT:
                    _faces.popitem(last=False)
            return kept
        finally:
            harfbuzz.hb_blob_destroy(blob)

    kept_copy.kept = True
    pdf_fonts.get_hb_object_data = kept_copy


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


# The language-help taglines are the only text of a letter in Chinese, Farsi or Vietnamese, and
# their glyphs sit far into their fonts (Noto Sans CJK, DejaVu Sans). WeasyPrint subsets with
# the glyph IDs kept, so each PDF carried a font subset as long as the highest ID used: 123 KiB
# of a 145 KiB letter. The taglines are set instead in the same fonts cut down to the taglines'
# own characters (once per machine, fontTools), whose glyph IDs are small. Same glyphs, same
# shaping: every page reads the same (tests/test_letters.py) and looks the same (pdftoppm
# shows only anti-aliasing differences at 300 dpi).
TAGLINE_FACES = {"CCS Taglines Sans": "DejaVu Sans", "CCS Taglines CJK": "Noto Sans CJK TC"}
TAGLINE_FONTS = ", ".join(f'"{family}"' for family in TAGLINE_FACES)
_cut_faces: dict[str, bytes] = {}
CUT_VERSION = 2  # part of a cut face's key: change it when _cut changes what it makes


def tagline_faces_css(text: str) -> str:
    """@font-face rules for the taglines' fonts cut down to the characters of ``text``, and the
    rule that sets the taglines in them ahead of the letter's fonts; "" when a font cannot be
    found or cut (the taglines are then set in the whole fonts, as before)."""
    import base64

    chars = "".join(sorted(set(text) - set("\n\r\t")))
    rules = []
    for family, source in TAGLINE_FACES.items():
        for weight in ("normal", "bold"):
            data = cut_face(source, weight, chars)
            if data is None:
                return ""
            rules.append(f'@font-face {{ font-family: "{family}"; font-weight: {weight}; '
                         f'src: url(data:font/sfnt;base64,{base64.b64encode(data).decode()}); }}')
    return "\n".join(rules) + f"\n.taglines {{ font-family: {TAGLINE_FONTS}, var(--letter-fonts); }}\n"


def cut_face(family: str, weight: str, chars: str) -> bytes | None:
    """``family``'s installed face of ``weight`` keeping only ``chars`` (and what shaping them
    needs), kept in this process and in the user's cache directory; None if not installed."""
    found = _match(family, weight)
    if found is None:
        return None
    import hashlib
    import os
    from pathlib import Path

    import fontTools

    path, index = found
    st = os.stat(path)
    key = hashlib.sha256(repr((CUT_VERSION, fontTools.version, path, index, st.st_size, st.st_mtime_ns, chars)).encode()).hexdigest()
    with _lock:
        if key in _cut_faces:
            return _cut_faces[key]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ccs" / "letter-fonts"
    stored = cache / f"{key[:32]}.otf"
    try:
        data = stored.read_bytes()
    except OSError:
        data = _cut(path, index, chars)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            partial = stored.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(data)
            os.replace(partial, stored)
        except OSError:
            pass  # no cache directory: cut again in the next process
    with _lock:
        _cut_faces[key] = data
    return data


@functools.lru_cache(maxsize=None)
def _match(family: str, weight: str) -> tuple[str, int] | None:
    """The file and collection index fontconfig gives for ``family`` (None if it is not that
    family): asked once per process, not once per stylesheet (a subprocess each)."""
    import shutil
    import subprocess

    if shutil.which("fc-match") is None:
        return None
    pattern = f"{family}:weight={'bold' if weight == 'bold' else 'regular'}"
    out = subprocess.run(["fc-match", "-f", "%{family}\t%{file}\t%{index}", pattern],
                         capture_output=True, text=True, timeout=10)
    parts = out.stdout.split("\t")
    if out.returncode != 0 or len(parts) != 3 or family not in parts[0].split(","):
        return None
    return parts[1], int(parts[2] or 0)


def _cut(path: str, index: int, chars: str) -> bytes:
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.name_IDs = ["*"]  # family and PostScript names, as in the whole font
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: unused, and fontTools cannot cut it
    # recalcTimestamp=False: head.modified stays the font's, never the clock's, so the same font
    # gives the same bytes on every machine and every day.
    font = TTFont(path, fontNumber=index, lazy=True, recalcTimestamp=False)
    cutter = subset.Subsetter(options)
    cutter.populate(text=chars)
    cutter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
