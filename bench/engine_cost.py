"""The engine path's cost per case, letters aside: the product's `ccs worker` with PDF layout
stubbed out (the HTML is still rendered), CPU per case of the worker and the dev server, and
history bytes per case by event type, with the largest payloads of one case decoded.

A quick before/after check for work on the workflow, the step activity and the payloads;
bench/floor_vs_product.py remains the benchmark of record.

    python -m bench.engine_cost --cases 60
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

from bench.common import stack
from bench.cpu_profile import Profiler, payload_table
from bench.floor_vs_product import PRODUCT_Q, Product, run_variant

# The worker, with WeasyPrint's layout replaced by fixed bytes (only PDF layout is stubbed): its
# rendering process imports the renderer by name, so the renderer is this module's stub_render.
NO_PDF = ("import activities.rendering as r, bench.engine_cost as e; r.PROCESS.renderer = e.stub_render; "
          "import sys; sys.argv = ['ccs', 'worker']; from starters.cli import entry; entry()")


def stub_render(data):
    """letters.render.render with a stub for the PDF (in the worker's rendering process)."""
    import letters.render as r

    r.render_pdf = lambda html, letter_data: b"%PDF-1.7 stub"
    return r.render(data)


async def largest_payloads(client, wid: str, top: int = 8) -> list[tuple[int, str]]:
    hist = await client.get_workflow_handle(wid).fetch_history()
    sizes = []
    for e in hist.events:
        kind = e.WhichOneof("attributes")
        attrs = getattr(e, kind)
        name = kind.removesuffix("_event_attributes")
        if kind == "activity_task_scheduled_event_attributes":
            name += f" {attrs.activity_type.name}"
        sizes.append((e.ByteSize(), name))
    return sorted(sizes, reverse=True)[:top]


PG_TABLES = "select relname, n_tup_ins, n_tup_upd, n_tup_del from pg_stat_user_tables"
PG_DATABASE = ("select xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted from pg_stat_database "
               "where datname = current_database()")


async def pg_counts(engine) -> tuple[dict, tuple]:
    """PostgreSQL's own counters: rows written per table, and transactions (pg_stat views)."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        await conn.execute(text("select pg_stat_clear_snapshot()"))
        tables = {row[0]: row[1:] for row in (await conn.execute(text(PG_TABLES))).all()}
        database = tuple((await conn.execute(text(PG_DATABASE))).one())
    return tables, database


async def main(args) -> None:
    tag = uuid.uuid4().hex[:4]
    load = [Path("/proc/loadavg").read_text().split()[0]]
    async with stack("engine-cost") as st:
        from activities.db import make_engine
        engine = make_engine(st.database_url, pool_size=2)
        w = st.worker_process(PRODUCT_Q, 1000, [sys.executable, "-c", NO_PDF])
        await w.start()
        product = Product(st, engine)
        await run_variant(st, product, args.warmup, 10, f"w{tag}", measure=False)
        # An idle PostgreSQL backend reports its counters within 10 s (PGSTAT_IDLE_INTERVAL):
        # the warm-up's before the first reading, the measured cases' before the second.
        await asyncio.sleep(11)
        pg0 = await pg_counts(engine)
        spy = None
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            spy = Profiler(w.pid, Path(args.profile), "product", 200)
            await asyncio.sleep(1)  # py-spy attaches
        rss0 = w.rss_mb()
        res = await run_variant(st, product, args.cases, 10, f"m{tag}")
        rss1 = w.rss_mb()
        if spy:
            spy.stop()
        await asyncio.sleep(11)
        pg1 = await pg_counts(engine)
        rows, hist = await payload_table(st.client, res["ids"])
        biggest = await largest_payloads(st.client, res["ids"][0])
        if args.events:
            history = await st.client.get_workflow_handle(res["ids"][0]).fetch_history()
            for e in history.events:
                kind = e.WhichOneof("attributes").removesuffix("_event_attributes")
                extra = ""
                if kind == "upsert_workflow_search_attributes":
                    extra = " " + ",".join(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
                elif kind.startswith("workflow_execution_update_accepted"):
                    extra = " " + e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                print(f"  {e.event_id:3} {kind}{extra}")
        await engine.dispose()
    load.append(Path("/proc/loadavg").read_text().split()[0])
    n = args.cases
    cpu = res["cpu"]
    print(f"\nload {load[0]} -> {load[1]}; other load {cpu['other_share']:.0%}; {res['cases_per_s']:.1f} cases/s")
    print(f"CPU ms/case: worker {cpu['worker'] / n * 1000:.1f}, dev server {cpu['temporal'] / n * 1000:.1f}, "
          f"PostgreSQL {cpu['postgres'] / n * 1000:.1f}, client {cpu['client'] / n * 1000:.1f}")
    print(f"history bytes per case: {hist:,.0f}")
    (t0, d0), (t1, d1) = pg0, pg1
    commits, rollbacks, ins, upd, dele = ((b - a) / n for a, b in zip(d0, d1))
    print(f"PostgreSQL per case: {commits:.1f} commits, {rollbacks:.1f} rollbacks (read-only sessions), "
          f"rows {ins:.1f} inserted, {upd:.1f} updated, {dele:.1f} deleted")
    for table in sorted(t1):
        before = t0.get(table, (0, 0, 0))
        written = [(b - a) / n for a, b in zip(before, t1[table])]
        if any(written):
            print(f"  {table:24} inserted {written[0]:.1f}, updated {written[1]:.1f}, deleted {written[2]:.1f}")
    print(f"worker RSS {rss0:.0f} -> {rss1:.0f} MB: {(rss1 - rss0) * 1024 / n:.0f} KB per case kept in its cache")
    for r in rows:
        print(f"  {r['event']:40} {r['events']:5} {r['bytes']:8,} (payload {r['payload']:,})")
    print("largest events of one case:")
    for size, name in biggest:
        print(f"  {size:8,} {name}")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--events", action="store_true", help="list the events of one case's history")
    p.add_argument("--profile", metavar="DIR", help="also record the worker with py-spy into DIR/product.txt")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
