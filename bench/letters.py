"""Rendering letters: CPU, time and size per letter, and each English template's reading grade.

    python -m bench.letters --letters 480

Renders N letters (every kind, English and Spanish, with varied synthetic data) three ways,
in alternating rounds so the shared machine's load falls on all three alike:

- "as before": the whole letter, taglines page included, laid out for every letter and its
  stylesheet fetched and parsed for every letter (what `letters.render` did before it kept the
  taglines page and the stylesheet);
- "in this process": `letters.render.render` on this process's thread;
- "rendering process": as a worker does (`activities.rendering`), a child process lays the
  letter out; this process's CPU is the hand-off, the child's is counted apart (/proc).

Then what delivery costs per letter: sealing the PDF (AES-GCM) and building the e-mail that
carries it (`attach_letter`, then the bytes a mailbox or SMTP server receives). Writes the
`letters` section of bench/RESULTS.md."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import date, timedelta
from types import SimpleNamespace

import textstat

from bench.common import descendants_cpu_s, machine_md, md_table, write_section
from letters.catalog import KINDS, subject
from letters.render import HERE, body_text, pdf_bytes, render, render_html
from letters.samples import sample

FIRST = ["Ana", "Mateo", "Lucia", "Kai", "Noor", "Bao", "Sofia", "Arman", "Mai", "Elena"]


def load() -> str:
    """The other processes' CPU use while this ran: the machine is shared."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def letter_data(i: int):
    kinds = sorted(KINDS)
    return sample(kinds[i % len(kinds)], ("en", "es")[(i // len(kinds)) % 2],
                  child_name=f"{FIRST[i % len(FIRST)]} Benchcase{i}", case_id=f"case-bench{i:015d}",
                  on=date(2026, 1, 1) + timedelta(days=i % 365))


def render_as_before(data) -> bytes:
    """The PDF as letters.render made it before: the whole HTML laid out, its <link>ed
    stylesheet fetched and parsed (so the taglines are set in the whole fonts, not in faces cut
    to their characters), with the same kept fonts (letters.fonts)."""
    from weasyprint import HTML

    from letters import fonts

    fonts.install()
    html = render_html(data)
    return pdf_bytes(HTML(string=html, base_url=str(HERE)).render(font_config=fonts.font_config()), html, data)


def e_mail(pdf: bytes, data, as_before: bool = False) -> bytes:
    """The e-mail a family receives, built as Notifier.deliver builds it (``as_before``: with
    the random MIME boundary Python's generator makes, as attach_letter left it before)."""
    from activities.notify import COVER, attach_letter, envelope

    key = f"{data.case_id}/1/{data.kind}/0"
    msg = envelope("ccs@county.example", "family@example.org", subject(data.kind, "en"), key)
    if as_before:
        msg.set_content(COVER[data.language].format(case_id=data.case_id))
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"ccs-{data.kind}.pdf")
    else:
        attach_letter(msg, SimpleNamespace(case_id=data.case_id, key=key),
                      SimpleNamespace(language=data.language, kind=data.kind), pdf)
    return bytes(msg)


async def measure(n: int) -> dict:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from activities.rendering import RenderingProcess

    process = RenderingProcess()
    cpu = {"before": 0.0, "here": 0.0, "handoff": 0.0, "child": 0.0, "seal": 0.0, "mail_before": 0.0, "mail": 0.0}
    wall = {"before": 0.0, "here": 0.0, "process": 0.0}
    sizes, mail_sizes, before_sizes, before_mail_sizes = [], [], [], []
    cipher = AESGCM(os.urandom(32))
    try:
        for language in ("en", "es"):  # fonts, templates, taglines page and the child: once, as a running worker
            warm = sample("case_open", language)
            render(warm), render_as_before(warm), await process.render(warm)
        per_round = 2 * len(KINDS)
        for start in range(0, n, per_round):
            batch = [letter_data(i) for i in range(start, min(n, start + per_round))]
            c, w = time.process_time(), time.perf_counter()
            before_pdfs = [render_as_before(data) for data in batch]
            cpu["before"] += time.process_time() - c
            wall["before"] += time.perf_counter() - w
            c, w = time.process_time(), time.perf_counter()
            pdfs = [render(data).pdf for data in batch]
            cpu["here"] += time.process_time() - c
            wall["here"] += time.perf_counter() - w
            c, k, w = time.process_time(), descendants_cpu_s(os.getpid()), time.perf_counter()
            for data in batch:
                await process.render(data)
            cpu["handoff"] += time.process_time() - c
            cpu["child"] += descendants_cpu_s(os.getpid()) - k
            wall["process"] += time.perf_counter() - w
            c = time.process_time()
            for pdf in pdfs:
                nonce = os.urandom(12)
                cipher.encrypt(nonce, pdf, b"letter:bench")
            cpu["seal"] += time.process_time() - c
            c = time.process_time()
            before_mail_sizes += [len(e_mail(pdf, data, as_before=True)) for pdf, data in zip(before_pdfs, batch)]
            cpu["mail_before"] += time.process_time() - c
            c = time.process_time()
            mail_sizes += [len(e_mail(pdf, data)) for pdf, data in zip(pdfs, batch)]
            cpu["mail"] += time.process_time() - c
            sizes += [len(pdf) for pdf in pdfs]
            before_sizes += [len(pdf) for pdf in before_pdfs]
    finally:
        process.shutdown()
    return {"cpu": cpu, "wall": wall, "sizes": sizes, "mail_sizes": mail_sizes, "before_sizes": before_sizes,
            "before_mail_sizes": before_mail_sizes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--letters", type=int, default=480)
    args = ap.parse_args()
    n = args.letters
    before = load()
    m = asyncio.run(measure(n))
    after = load()
    cpu, wall, sizes = m["cpu"], m["wall"], m["sizes"]

    def kib(sizes: list[int]) -> str:
        return f"{statistics.mean(sizes) / 1024:.0f}"

    def ms(seconds: float) -> str:
        return f"{seconds / n * 1000:.1f}"

    rows = [
        {"how": "as before: whole letter laid out, stylesheet parsed, taglines in the whole fonts, every letter",
         "cpu": ms(cpu["before"]),
         "child": "-", "wall": ms(wall["before"])},
        {"how": "in this process: taglines page and stylesheet kept per thread", "cpu": ms(cpu["here"]),
         "child": "-", "wall": ms(wall["here"])},
        {"how": "rendering process (the worker's way): hand-off here, layout in the child",
         "cpu": ms(cpu["handoff"]), "child": ms(cpu["child"]), "wall": ms(wall["process"])},
        {"how": "seal the PDF (AES-GCM)", "cpu": f"{cpu['seal'] / n * 1000:.2f}", "child": "-", "wall": "-"},
        {"how": "e-mail as before (random MIME boundary, the PDF with the whole fonts)", "cpu": ms(cpu["mail_before"]),
         "child": "-", "wall": "-"},
        {"how": "e-mail with the PDF attached (attach_letter, then bytes(message))", "cpu": ms(cpu["mail"]),
         "child": "-", "wall": "-"},
    ]
    grades = [{"template": k, "grade": textstat.flesch_kincaid_grade(body_text(sample(k)))} for k in sorted(KINDS)]
    body = f"""## Letters: rendering and reading level

`python -m bench.letters --letters {n}`: {n} letters, every kind in turn, English and Spanish,
rendered three ways in alternating rounds (so the machine's load falls on each alike), one
letter at a time as a worker renders them; then each PDF sealed and e-mailed as delivery does.

{machine_md()}
Load while it ran (the machine is shared with other work): before, {before}; after, {after}.

CPU per letter (ms; `time.process_time()` of this process, the rendering process's from /proc):

{md_table(rows, [("how", "how"), ("cpu", "this process"), ("child", "rendering process"), ("wall", "wall")])}

{kib(sizes)} KiB per PDF on average (min {min(sizes) / 1024:.0f}, max {max(sizes) / 1024:.0f}), and
{kib(m["mail_sizes"])} KiB the e-mail carrying it (base64); as before, with the taglines in the whole
fonts, {kib(m["before_sizes"])} KiB and {kib(m["before_mail_sizes"])} KiB. WeasyPrint keeps a font's glyph IDs when it
subsets, so a subset of a few glyphs far into a large font (the Chinese tagline's reach glyph ID
43,471 of Noto Sans CJK) still indexes every ID below them: the two CJK subsets were 123 KiB of
every letter. The taglines are now set in the same fonts cut to the taglines' own characters
(`letters.fonts`, once per machine), whose glyph IDs are small; every page reads the same.

Reading grade of each English template (Flesch-Kincaid grade, `textstat`, over the letter's own
words, the sample data of `letters/samples.py`); `tests/test_letters.py` holds every one at 6
or below:

{md_table(grades, [("template", "template"), ("grade", "grade")])}
"""
    write_section("letters", body)


if __name__ == "__main__":
    main()
