"""Where the product's CPU goes: a sampling profile of the `ccs worker` under the
floor_vs_product load, and what each case's history carries (bytes per event type),
product vs the engine floor.

py-spy samples the worker's Python threads (the Rust core's threads are not seen; the
section says what share of the worker's CPU the samples cover). Stacks are grouped into
buckets by the first matching frame (PDF letters, sandbox module loading, the workflow's
own code, ...), then the top functions by own time and the project's functions by time
including what they call. The flame graph (SVG) is left in --out.

    python -m bench.cpu_profile                      # 60 cases, product and no-op floor
    python -m bench.cpu_profile --cases 150 --out /tmp/profile
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from activities.db import make_engine
from activities.tables import LetterRow
from bench.common import BIN, ROOT, command_line, log, machine_md, md_table, stack, write_section
from bench.floor_vs_product import FLOOR_Q, PRODUCT_Q, Floor, Product, run_variant

# Bucket of a stack: the first rule (in this order) whose pattern matches any of its frames.
BUCKETS = [
    ("PDF letters (weasyprint, fonts, CSS)", r"weasyprint|pydyf|fontTools|tinycss2|cssselect2|tinyhtml5|html5lib|PIL/"),
    ("letter templates (jinja2)", r"jinja2"),
    ("sandbox: loading workflow modules", r"workflow_sandbox/_importer|_restrictions.*__init__|importlib|<frozen"),
    ("database (SQLAlchemy, asyncpg)", r"sqlalchemy|asyncpg"),
    ("payload codec (AES-GCM)", r"cryptography|converter\.py.*(encode|decode)"),
    ("payload converter (JSON, pydantic)", r"temporalio/converter|pydantic|json/"),
    ("workflow code (workflows/, models/, rules/)", r"/(workflows|models|rules)/"),
    ("activity code (activities/, letters/)", r"/(activities|letters)/"),
    ("SDK: workflow activations, sandbox", r"temporalio/worker/(_workflow|workflow_sandbox)"),
    ("SDK: other (activities, bridge, protobuf)", r"temporalio|google/protobuf"),
    ("asyncio event loop", r"asyncio"),
]


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def _func(frame: str) -> str:
    """'name (path:line)' -> 'path:name' with the path shortened to the project or package."""
    m = re.match(r"(.*) \((.*):\d+\)$", frame)
    if not m:
        return frame
    name, path = m.groups()
    path = path.replace(str(ROOT) + "/", "")
    path = re.sub(r".*/site-packages/", "", path)
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    return f"{path}:{name}"


def analyse(raw: Path, top: int = 12) -> dict:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack_s, _, n = line.rpartition(" ")
        if stack_s and n.isdigit():
            stacks.append((_frames(stack_s), int(n)))
    total = sum(n for _, n in stacks) or 1
    buckets, own, incl = Counter(), Counter(), Counter()
    for frames, n in stacks:
        joined = "\n".join(frames)
        label = next((b for b, pat in BUCKETS if re.search(pat, joined)), "other")
        buckets[label] += n
        own[_func(frames[-1])] += n
        for f in set(map(_func, frames)):
            if f.startswith(("workflows/", "models/", "rules/", "activities/", "letters/", "workers/")):
                incl[f] += n
    pct = lambda n: f"{n / total:.1%}"  # noqa: E731
    return {
        "samples": total,
        "buckets": [{"what": b, "share": pct(n)} for b, n in buckets.most_common()],
        "own": [{"function": f"`{f}`", "share": pct(n)} for f, n in own.most_common(top)],
        "incl": [{"function": f"`{f}`", "share": pct(n)} for f, n in incl.most_common(top)],
    }


class Profiler:
    """py-spy record on a running process until stopped (SIGINT), raw stacks and an SVG."""

    def __init__(self, pid: int, out: Path, name: str, rate: int) -> None:
        self.raw, self.svg = out / f"{name}.txt", out / f"{name}.svg"
        spy = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking",
               "--subprocesses"]  # and the worker's letter renderer
        self.procs = [subprocess.Popen(spy + ["--format", fmt, "-o", str(path)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for fmt, path in (("raw", self.raw), ("flamegraph", self.svg))]

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            p.wait(60)


# ---- payloads ------------------------------------------------------------------------------

def _payload_bytes(msg) -> int:
    """Bytes of payload data (as stored: encrypted) anywhere inside a protobuf message."""
    if msg.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
        return len(msg.data)
    total = 0
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if hasattr(value, "DESCRIPTOR"):
            total += _payload_bytes(value)
        else:  # a repeated field or a map
            items = value.values() if hasattr(value, "values") else value
            total += sum(_payload_bytes(v) for v in items if hasattr(v, "DESCRIPTOR"))
    return total


async def payload_table(client, ids: list[str], sample: int = 20) -> tuple[list[dict], float]:
    """Per event type: events, event bytes and payload bytes per case; history bytes per case."""
    count, size, payload = Counter(), Counter(), Counter()
    picked = ids[:: max(1, len(ids) // sample)][:sample]
    for wid in picked:
        hist = await client.get_workflow_handle(wid).fetch_history()
        for e in hist.events:
            kind = e.WhichOneof("attributes").removesuffix("_event_attributes")
            count[kind] += 1
            size[kind] += e.ByteSize()
            payload[kind] += _payload_bytes(getattr(e, e.WhichOneof("attributes")))
    n = len(picked)
    rows = [{"event": k, "events": round(count[k] / n, 1), "bytes": round(size[k] / n),
             "payload": round(payload[k] / n)} for k, _ in size.most_common()]
    return rows, sum(size.values()) / n


async def main(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:4]
    load = [Path("/proc/loadavg").read_text().split()[0]]
    async with stack("profile") as st:
        engine = make_engine(st.database_url, pool_size=2)
        status = st.tmp / "floor-recorded"
        product_w = st.worker_process(PRODUCT_Q, 1000)
        floor_w = st.worker_process(FLOOR_Q, 1000, [sys.executable, "-m", "bench._floor", str(status)])
        for w in (product_w, floor_w):
            await w.start()
        variants = [("floor", Floor(st, status, "floor_noop"), floor_w), ("product", Product(st, engine), product_w)]
        profiles, payloads, results = {}, {}, {}
        for name, v, w in variants:
            await run_variant(st, v, args.warmup, 10, f"{name}w{tag}", measure=False)
            spy = Profiler(w.pid, out, name, args.rate)
            await asyncio.sleep(1)  # py-spy attaches
            res = await run_variant(st, v, args.cases, 10, f"{name}{tag}")
            spy.stop()
            results[name], profiles[name] = res, analyse(spy.raw)
            payloads[name] = await payload_table(st.client, res["ids"])
            log(f"{name}: {res['cases_per_s']:.1f} cases/s, worker {res['cpu']['worker'] / args.cases * 1000:.0f} ms "
                f"CPU/case, {profiles[name]['samples']} samples; flame graph {spy.svg}")
        load.append(Path("/proc/loadavg").read_text().split()[0])
        async with engine.connect() as conn:
            letters = (await conn.execute(select(func.count()).select_from(LetterRow)
                                          .where(LetterRow.case_id.in_(results["product"]["ids"])))).scalar_one()
        await engine.dispose()
    write_section("cpu_profile", report(args, results, profiles, payloads, load, letters / args.cases))


def report(args, results, profiles, payloads, load, letters: float) -> str:
    p, res = profiles["product"], results["product"]
    worker_ms = res["cpu"]["worker"] / args.cases * 1000
    renderer_ms = res["cpu"]["renderer"] / args.cases * 1000
    sampled_ms = p["samples"] / args.rate / args.cases * 1000
    rows = {name: {r["event"]: r for r in payloads[name][0]} for name in payloads}
    kinds = list(dict.fromkeys([r["event"] for r in payloads["product"][0]] + [r["event"] for r in payloads["floor"][0]]))
    table = [{"event": k,
              **{f"{n}_{c}": rows[n].get(k, {}).get(c) for n in ("product", "floor") for c in ("events", "bytes", "payload")}}
             for k in kinds]
    hist = {n: payloads[n][1] for n in payloads}
    return f"""## CPU profile

`{command_line()}`: {args.cases} cases (referral to active, 10 at a time) on the product's `ccs worker`
and as many on the no-op floor's worker, each after {args.warmup} warm-up cases, with `py-spy record
--rate {args.rate} --nonblocking --subprocesses` attached to the worker (and so its letter-rendering
process) for the measured cases only. Load average
{load[0]} before, {load[1]} after (the machine is shared; the shares below are within the worker, so
other load changes them less than it changes times).

{machine_md()}

The product's worker used {worker_ms:.0f} ms CPU per case and its letter-rendering process
{renderer_ms:.0f} ms ({res['cases_per_s']:.1f} cases/s); they rendered {letters:.1f} PDF letters per case. py-spy counted {sampled_ms:.0f} ms of busy Python threads per case (it counts a
thread busy unless it sees it wait, and cannot see the SDK's Rust core: compare shares, not
times). Where the samples fell, by the first matching frame of each stack:

{md_table(p['buckets'], [("what", "bucket"), ("share", "share of samples")])}

Top functions by own time (the flame graph's widest leaves):

{md_table(p['own'], [("function", "function"), ("share", "own")])}

The project's functions by time including what they call:

{md_table(p['incl'], [("function", "function"), ("share", "with callees")])}

What one case's history carries (mean over a sample of the measured cases): events, bytes of
the events and, inside them, bytes of (encrypted) payloads. **History bytes per case: product
{hist['product']:,.0f}, floor {hist['floor']:,.0f}.**

{md_table(table, [("event", "event"), ("product_events", "product events"), ("product_bytes", "bytes"),
                  ("product_payload", "payload bytes"), ("floor_events", "floor events"),
                  ("floor_bytes", "bytes"), ("floor_payload", "payload bytes")])}
"""


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--out", default=os.environ.get("TMPDIR", "/tmp") + "/ccs-cpu-profile",
                   help="directory for the raw stacks and flame graphs")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
