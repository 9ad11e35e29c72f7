"""Engine floor vs product, on the same dev server in one run.

The product: the real ChildCaseWorkflow from referral to active through starters.client.Cases
(refer, record_application, record_records, record_eligibility, record_medical_determination),
N cases, C at a time, each case's actions one after another.

The floor: bench/_floor.py, a bare workflow with the product's shape (update-with-start, an
update per step, the same main loop: a batch activity for queued steps, a timer per wait,
a search-attribute upsert) and none of its work, run twice: with a no-op activity (the
engine alone) and with one INSERT per step in one transaction per activity (the engine plus
a PostgreSQL commit).

A case is done when every step is recorded: for the product, when its `case_open` notice
(the last thing the last step's activity does) is marked sent in PostgreSQL; for the
floor, when its activity has recorded every step. Updates return before their step is
recorded (the product's actions do too), so "actions answered" is reported separately.

    python -m bench.floor_vs_product                              # quick: 100 cases a variant
    python -m bench.floor_vs_product --cases 300 --rounds 3       # the recorded figures
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from activities.db import make_engine
from activities.tables import OutboxRow
from bench import _floor
from bench.common import (
    CpuMeter,
    Progress,
    bounded,
    command_line,
    latency_row,
    log,
    machine_md,
    md_table,
    referral,
    rss_mb,
    stack,
    write_section,
)
from models import search
from models.case import Actor
from models.policy import Policy
from starters.client import Cases

INTAKE = Actor(id="clerk.intake", role="intake_clerk")
CM = {"id": "cm.rivera", "role": "case_manager"}
MC = {"id": "dr.consultant", "role": "medical_consultant"}
ACTIONS = [
    ("record_application", {"actor": CM}),
    ("record_records", {"actor": CM}),
    ("record_eligibility", {"actor": CM, "finances": {"residential_in_county": True, "full_scope_medi_cal": True}}),
    ("record_medical_determination", {"actor": MC, "condition_id": "C1", "eligible": True, "reason": "meets criteria"}),
]
PARTS = ("worker", "renderer", "client", "temporal", "postgres")  # processes whose CPU is counted
PRODUCT_Q, PRODUCT_PYC_Q, FLOOR_Q = "bench-product", "bench-product-pyc", "bench-floor"


class Product:
    def __init__(self, st, engine, queue: str = PRODUCT_Q, label: str = "product (ChildCaseWorkflow)") -> None:
        self.cases = Cases(st.client, queue, Policy(), st.keyring.case_id_secret)
        self.engine, self.queue, self.label = engine, queue, label

    async def one(self, i: int, tag: str) -> tuple[str, list[float]]:
        lat = []
        t = time.perf_counter()
        status = await self.cases.refer(referral(i, tag=tag), INTAKE)
        lat.append(time.perf_counter() - t)
        for name, data in ACTIONS:
            t = time.perf_counter()
            status = await self.cases.act(status.case_id, name, data)
            lat.append(time.perf_counter() - t)
        if status.stage != "active":
            raise RuntimeError(f"case {status.case_id} ended in {status.stage}, not active")
        return status.case_id, lat

    def mark(self) -> None:
        pass

    async def recorded(self, ids: list[str]) -> int:
        # The last thing the last step's activity does: deliver the enrolment notice.
        q = (select(func.count()).select_from(OutboxRow)
             .where(OutboxRow.kind == "case_open", OutboxRow.status == "sent", OutboxRow.case_id.in_(ids)))
        async with self.engine.connect() as conn:
            return (await conn.execute(q)).scalar_one()


class Floor:
    queue = FLOOR_Q

    def __init__(self, st, status: Path, activity: str) -> None:
        self.client, self.status, self.activity = st.client, status, activity
        self.label = {"floor_noop": "floor, no-op activity", "floor_db": "floor, one INSERT per step"}[activity]
        self.base = 0

    async def one(self, i: int, tag: str) -> tuple[str, list[float]]:
        wid = f"{self.activity}-{tag}-{i}"
        start = WithStartWorkflowOperation(
            _floor.FloorWorkflow.run, {"activity": self.activity}, id=wid, task_queue=FLOOR_Q,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        lat = []
        t = time.perf_counter()
        await self.client.execute_update_with_start_workflow("refer", {}, start_workflow_operation=start)
        lat.append(time.perf_counter() - t)
        handle = self.client.get_workflow_handle(wid)
        for name, _ in ACTIONS:
            t = time.perf_counter()
            await handle.execute_update(name, {})
            lat.append(time.perf_counter() - t)
        return wid, lat

    def _read(self) -> int:
        try:
            return int(self.status.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def mark(self) -> None:
        self.base = self._read()

    async def recorded(self, ids: list[str]) -> int:
        # Six steps per case: the opening step, the referral and the four actions.
        return (self._read() - self.base) // 6


async def run_variant(st, variant, n: int, concurrency: int, tag: str, measure: bool = True,
                      timeout: float = 300) -> dict:
    variant.mark()
    progress = Progress(variant.label, n) if measure else None
    meter = CpuMeter(st)

    async def one(i):
        r = await variant.one(i, tag)
        if progress:
            progress.tick()
        return r

    meter.start()
    t0 = time.perf_counter()
    results = await bounded(range(n), concurrency, one)
    answered = time.perf_counter() - t0
    ids = [wid for wid, _ in results]
    deadline = time.monotonic() + timeout
    while (done := await variant.recorded(ids)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{variant.label}: only {done} of {n} cases recorded in {timeout:.0f} s")
        await asyncio.sleep(0.25)  # a poll costs the client and PostgreSQL CPU: not too often
    recorded = time.perf_counter() - t0
    cpu = meter.stop()
    lat = [x for _, ls in results for x in ls]
    return {
        "variant": variant.label, "cases": n, "ids": ids,
        "answered_s": answered, "recorded_s": recorded,
        "answered_per_s": n / answered, "cases_per_s": n / recorded,
        "action": latency_row(lat),
        "cpu": {"client": cpu["bench"], "worker": cpu[f"worker:{variant.queue}"],
                "renderer": cpu[f"children:{variant.queue}"], "temporal": cpu["temporal"],
                "postgres": cpu["postgres"], "wall": cpu["wall"], "busy": cpu["busy"],
                "other_share": cpu["other_share"]},
    }


async def history_shape(client, ids: list[str], sample: int = 20) -> dict:
    """Mean events per case, by kind, over a sample of the run's workflows."""
    kinds = Counter()
    picked = ids[:: max(1, len(ids) // sample)][:sample]
    for wid in picked:
        hist = await client.get_workflow_handle(wid).fetch_history()
        kinds["events"] += len(hist.events)
        for e in hist.events:
            kinds[e.WhichOneof("attributes").removesuffix("_event_attributes")] += 1
    n = len(picked)
    return {
        "events": kinds["events"] / n,
        "updates": kinds["workflow_execution_update_completed"] / n,
        "activities": kinds["activity_task_scheduled"] / n,
        "timers": kinds["timer_started"] / n,
        "timers_cancelled": kinds["timer_canceled"] / n,
        "upserts": kinds["upsert_workflow_search_attributes"] / n,
        "workflow_tasks": kinds["workflow_task_completed"] / n,
    }


async def stale_stage(client, ids: list[str], sample: int = 50) -> tuple[int, int]:
    """How many sampled product cases (all active) still show another stage in visibility."""
    picked = ids[:: max(1, len(ids) // sample)][:sample]
    stale = 0
    for wid in picked:
        desc = await client.get_workflow_handle(wid).describe()
        if desc.typed_search_attributes.get(search.STAGE) != "active":
            stale += 1
    return stale, len(picked)


async def main(args) -> None:
    tag = uuid.uuid4().hex[:4]
    async with stack("floor") as st:
        engine = make_engine(st.database_url, pool_size=2)
        status = st.tmp / "floor-recorded"
        product_worker = st.worker_process(PRODUCT_Q, args.max_cached)
        floor_worker = st.worker_process(FLOOR_Q, args.max_cached,
                                         [sys.executable, "-m", "bench._floor", str(status)])
        workers = [product_worker, floor_worker]
        variants = [Floor(st, status, "floor_noop"), Floor(st, status, "floor_db"), Product(st, engine)]
        if args.bytecode:
            # The same `ccs worker`, allowed to cache bytecode (in a directory of its own).
            workers.append(st.worker_process(PRODUCT_PYC_Q, args.max_cached, env={
                "PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": str(st.tmp / "pycache")}))
            variants.append(Product(st, engine, PRODUCT_PYC_Q, "product, bytecode cached"))
        for w in workers:
            await w.start()
        log(f"warm-up: {args.warmup} cases of each")
        for vi, v in enumerate(variants):
            await run_variant(st, v, args.warmup, args.concurrency, f"{vi}w{tag}", measure=False)
        runs: dict[str, list[dict]] = {v.label: [] for v in variants}
        for r in range(args.rounds):
            for vi, v in enumerate(variants):
                log(f"round {r + 1}/{args.rounds}: {v.label}, {args.cases} cases, {args.concurrency} at a time")
                res = await run_variant(st, v, args.cases, args.concurrency, f"{vi}r{r}{tag}")
                log(f"  {res['cases_per_s']:.1f} cases/s recorded, {res['answered_per_s']:.1f} answered; "
                    f"CPU busy {res['cpu']['busy']:.0%}, other load {res['cpu']['other_share']:.0%}")
                runs[v.label].append(res)
        shapes = {label: await history_shape(st.client, rs[-1]["ids"]) for label, rs in runs.items()}
        stale = await stale_stage(st.client, runs[variants[2].label][-1]["ids"])
        rss = {"product": product_worker.rss_mb(), "floor": floor_worker.rss_mb()}
        log(f"dev server RSS {rss_mb(st.server.pid):.0f} MB, SQLite {st.server.db_size_mb():.0f} MB")
        await engine.dispose()
    write_section("floor_vs_product", report(args, runs, shapes, stale, rss))


def _median_run(rs: list[dict]) -> dict:
    return sorted(rs, key=lambda r: r["cases_per_s"])[len(rs) // 2]


def report(args, runs: dict[str, list[dict]], shapes: dict[str, dict], stale: tuple[int, int],
           rss: dict[str, float]) -> str:
    labels = list(runs)
    med = {label: _median_run(rs) for label, rs in runs.items()}
    rows = []
    for label in labels:
        m = med[label]
        cpu, n = m["cpu"], m["cases"]
        rows.append({
            "variant": label,
            "cases_s": round(statistics.median(r["cases_per_s"] for r in runs[label]), 1),
            "all": ", ".join(f"{r['cases_per_s']:.1f}" for r in runs[label]),
            "answered": round(statistics.median(r["answered_per_s"] for r in runs[label]), 1),
            "p50": m["action"]["p50_ms"], "p95": m["action"]["p95_ms"],
            **{f"cpu_{k}": round(max(0.0, cpu[k]) / n * 1000, 1) for k in PARTS},
            "cpu_all": round(sum(cpu[k] for k in PARTS) / n * 1000, 1),
            "worker_core": f"{cpu['worker'] / cpu['wall']:.0%}",
            "busy": f"{cpu['busy']:.0%}", "other": f"{cpu['other_share']:.0%}",
        })
    ratio_noop = rows[0]["cases_s"] / rows[2]["cases_s"]
    ratio_db = rows[1]["cases_s"] / rows[2]["cases_s"]
    shape_rows = [{"variant": label, **{k: round(v, 1) for k, v in shapes[label].items()}} for label in labels]
    extra = {k: rows[2][f"cpu_{k}"] - rows[0][f"cpu_{k}"] for k in PARTS}
    cpu_ratio = rows[2]["cpu_all"] / rows[0]["cpu_all"]
    engine_ratio = (rows[2]["cpu_all"] - rows[2]["cpu_renderer"]) / rows[0]["cpu_all"]

    def met(ratio: float, target: float) -> str:
        return f"target within {target}x, {'met' if ratio <= target else 'missed'}"

    pyc = ""
    if len(rows) > 3:
        pyc = (f"\n\nOn a `ccs worker` allowed to write and read bytecode (`.pyc`) the product does {rows[3]['cases_s']} cases/s "
               f"(the floor is {rows[0]['cases_s'] / rows[3]['cases_s']:.2f}x that). The workflow sandbox runs the "
               "`workflows` package's modules afresh for every workflow it loads (a new case, or one "
               "that left the cache); with `PYTHONDONTWRITEBYTECODE=1` (set on this machine and in the "
               "Dockerfile) and no `.pyc` files shipped, that means compiling them from source each time. "
               "The other workers here run that way, as the Dockerfile ships the product.")
    return f"""## Engine floor vs product

`{command_line()}`: {args.cases} cases per variant and round, {args.concurrency} at a time, {args.rounds}
round(s) after {args.warmup} warm-up cases each. The variants take turns on one dev server
(SQLite, WAL) and one PostgreSQL; the product runs on a real `ccs worker` process, the floor on
a worker process of its own (`python -m bench._floor`), both with a cache of {args.max_cached}
workflows and no bytecode files for the project's code (as on a machine with PYTHONDONTWRITEBYTECODE=1); the client
(starters.client.Cases for the product) runs in the bench process.

{machine_md()}

**CPU per case (all processes): product {rows[2]['cpu_all']:.0f} ms, no-op floor {rows[0]['cpu_all']:.0f} ms, {cpu_ratio:.2f}x
({met(cpu_ratio, 1.2)}); without the product's PDF layout (its letter renderer process, {rows[2]['cpu_renderer']:.0f} ms a case),
{engine_ratio:.2f}x. Cases/s: product {rows[2]['cases_s']}, floor {rows[0]['cases_s']}: the floor is {ratio_noop:.2f}x the product
({met(ratio_noop, 1.3)}).** Against the floor that also commits one INSERT per step: {ratio_db:.2f}x (cases/s).{pyc}

A case is referral to active: update-with-start plus four updates; six steps, each recorded by
the activity. "cases/s" counts cases whose every step is recorded (median of rounds; every
round listed); "answered/s" counts cases whose five calls returned (an update answers before
its step is recorded). Action latency is per call, at the client. CPU is milliseconds per case
in each process over the measured interval ("letter renderer": the worker's child processes,
where PDF letters are laid out); "worker core" is the worker process's CPU as a
share of one core (its Python code runs on one core at a time); "busy" is the share of all
{os.cpu_count()} CPUs this benchmark's processes used, "other load" the share used by processes outside
it (anything else running on the machine: figures measured under other load are lower).

{md_table(rows, [("variant", "variant"), ("cases_s", "cases/s"), ("all", "rounds"), ("answered", "answered/s"),
                 ("p50", "action p50 ms"), ("p95", "action p95 ms"), ("cpu_worker", "CPU ms/case: worker"),
                 ("cpu_renderer", "letter renderer"), ("cpu_client", "client"), ("cpu_temporal", "dev server"), ("cpu_postgres", "PostgreSQL"),
                 ("cpu_all", "all"),
                 ("worker_core", "worker core"), ("busy", "busy"), ("other", "other load")])}

Throughput here is bounded by CPU: all these processes share {os.cpu_count()} CPUs. Per case the product
uses {rows[2]['cpu_all']:.0f} ms of CPU in all, the no-op floor {rows[0]['cpu_all']:.0f} ms: {cpu_ratio:.2f}x
(a ratio that other load on the machine disturbs less than the throughput does).
The product costs, per case, {extra['worker']:.1f} ms more worker CPU than the no-op floor,
{extra['renderer']:.1f} ms in its letter renderer (PDF layout of the case's letters; the floor sends none),
{extra['client']:.1f} ms more client CPU, {extra['temporal']:.1f} ms more dev-server CPU and {extra['postgres']:.1f} ms more
PostgreSQL CPU. Worker RSS at the end: product {rss['product']:.0f} MB, floor {rss['floor']:.0f} MB.

What each case did (mean per case over a sample of the last round's histories). The floor
runs the product's main loop, so it issues the same kinds of commands; counts differ where
timing differs (steps that arrive while an activity runs are recorded together by the next).

{md_table(shape_rows, [("variant", "variant"), ("events", "events"), ("updates", "updates"),
                       ("activities", "activities"), ("timers", "timers started"),
                       ("timers_cancelled", "cancelled"), ("upserts", "SA upserts"),
                       ("workflow_tasks", "workflow tasks")])}

Visibility after the run: {stale[0]} of {stale[1]} sampled product cases (all `active`) still showed an
earlier stage in `CcsStage` (search attributes lagging the case would mislead `ccs stuck`).
"""


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=100, help="cases per variant and round (recorded: 300)")
    p.add_argument("--concurrency", type=int, default=10, help="cases in flight at once")
    p.add_argument("--rounds", type=int, default=1, help="rounds of the variants (recorded: 3)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up cases per variant (default: concurrency)")
    p.add_argument("--max-cached", type=int, default=1000, help="worker workflow cache (the product's default)")
    p.add_argument("--no-bytecode", dest="bytecode", action="store_false",
                   help="skip the fourth variant: the product on a worker allowed to cache bytecode")
    args = p.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else args.concurrency
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
