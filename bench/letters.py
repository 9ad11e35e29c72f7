"""Rendering letters: time and size per letter, and each English template's reading grade.

    python -m bench.letters --letters 1000

Renders N letters (every kind, English and Spanish, with varied synthetic data) one after
another in this process, as a worker's single rendering thread does, then seals each with
AES-GCM as the letter store does. Writes the `letters` section of bench/RESULTS.md."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date, timedelta

import textstat

from bench.common import machine_md, md_table, p50, p95, write_section
from letters.catalog import KINDS
from letters.render import body_text, render
from letters.samples import sample

FIRST = ["Ana", "Mateo", "Lucia", "Kai", "Noor", "Bao", "Sofia", "Arman", "Mai", "Elena"]


def load() -> str:
    """The other processes' CPU use while this ran: the machine is shared."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--letters", type=int, default=1000)
    args = ap.parse_args()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = AESGCM(os.urandom(32))
    kinds = sorted(KINDS)
    render(sample("case_open"))  # fonts and templates loaded once, as in a running worker
    before = load()
    times, sizes, seal = [], [], []
    by_kind: dict[str, list[int]] = {}
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(args.letters):
        kind, language = kinds[i % len(kinds)], ("en", "es")[(i // len(kinds)) % 2]
        data = sample(kind, language, child_name=f"{FIRST[i % len(FIRST)]} Benchcase{i}",
                      case_id=f"case-bench{i:015d}", on=date(2026, 1, 1) + timedelta(days=i % 365))
        t = time.perf_counter()
        pdf = render(data).pdf
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        nonce = os.urandom(12)
        cipher.encrypt(nonce, pdf, b"letter:bench")
        seal.append(time.perf_counter() - t)
        sizes.append(len(pdf))
        by_kind.setdefault(kind, []).append(len(pdf))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    after = load()

    grades = [{"template": k, "grade": textstat.flesch_kincaid_grade(body_text(sample(k)))} for k in kinds]
    rows = [{"what": "render (HTML + PDF)", "p50 ms": f"{p50(times) * 1000:.0f}", "p95 ms": f"{p95(times) * 1000:.0f}",
             "mean ms": f"{statistics.mean(times) * 1000:.0f}"},
            {"what": "seal (AES-GCM)", "p50 ms": f"{p50(seal) * 1000:.2f}", "p95 ms": f"{p95(seal) * 1000:.2f}",
             "mean ms": f"{statistics.mean(seal) * 1000:.2f}"}]
    body = f"""## Letters: rendering and reading level

`python -m bench.letters --letters {args.letters}`: {args.letters} letters, every kind in turn, English and
Spanish, one after another in one process (a worker renders on one thread); each PDF sealed as
the letter store does.

{machine_md()}
Load while it ran (the machine is shared with other work): before, {before}; after, {after}.

**{args.letters} letters in {wall:.1f} s: {wall / args.letters * 1000:.0f} ms per letter, of which
{cpu / args.letters * 1000:.0f} ms of this process's CPU (the rest is waiting for a CPU on the shared machine);
{statistics.mean(sizes) / 1024:.0f} KiB per letter on average (min {min(sizes) / 1024:.0f}, max
{max(sizes) / 1024:.0f}); {sum(sizes) / 1024 / 1024:.0f} MiB in all.**

{md_table(rows, [("what", "step"), ("p50 ms", "p50 ms"), ("p95 ms", "p95 ms"), ("mean ms", "mean ms")])}

Most of each PDF is the embedded font subsets (DejaVu Sans for the letter, Noto Sans CJK for
the Chinese tagline).

Reading grade of each English template (Flesch-Kincaid grade, `textstat`, over the letter's own
words, the sample data of `letters/samples.py`); `tests/test_letters.py` holds every one at 6
or below:

{md_table(grades, [("template", "template"), ("grade", "grade")])}
"""
    write_section("letters", body)


if __name__ == "__main__":
    main()
