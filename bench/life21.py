"""A busy case's 21 years, simulated in time-skipping (temporal-test-server): wall time and
the largest single-run history.

A newborn in Napa County with a Kaiser Permanente Medi-Cal plan is referred by the hospital and
brought to active. Napa is made a dependent county by the bench's policy (as the shipped data had
it before Napa's own FAQ was sourced; no Kaiser WCM county is dependent in the shipped data), so
the State makes the medical determination and decides SARs there, and Kaiser manages the case
(Whole Child Model). Then, until the case closes at 21: every renewal is
recorded (one, at 8, is denied and the appeal overturns it), transition tasks are completed,
new conditions are referred over the years and each is determined (one not eligible), the
case is transferred twice (to Lake, also dependent, and on to independent Fresno) and a case
manager assigned after each transfer, and, when the case takes
the `request_meals_lodging` and `request_authorization` actions (models/actions.py), every
year one trip is requested, approved, its receipts submitted and paid, and one service
authorization requested and approved (at 6, pended for information first); at 7 the
family files a grievance, resolved a week later; the condition denied at 9 is appealed on
its own and the appeal upheld; at 3 a pharmacy SAR is refused (Medi-Cal Rx). The policy changes
mid-life twice: a dated change in the policy file raises the meal cap from the 10th birthday
(`[[change]]`), and at 12 the operator publishes a new policy (a higher mileage rate) that the
running case takes for its later trips. Afterwards every history (each run of the case, each
request) is replayed with the Replayer against today's workflow code.

Histories: the test server cannot list workflows, so the case's runs are walked from the
first run ID (in the latest run's start event) through each run's continued-as-new event;
request workflows are found by the child-workflow events in those histories.

    python -m bench.life21                # one life
    python -m bench.life21 --lives 3      # three lives in a row: wall time of each
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from activities.db import stop_embedded
from bench.common import (
    BIN,
    ROOT,
    command_line,
    loadavg,
    log,
    machine_md,
    md_table,
    new_keyring,
    referral,
    settings,
    start_postgres,
    write_section,
)
from migrations import upgrade_async
from models.actions import ACTIONS, REQUEST_ACTIONS
from models.case import Actor
from models.converter import data_converter
from activities.policy import publish_policy
from models.policy import Policy
from rules.ages import age_on, birthday, local_today
from temporalio.worker import Replayer
from workflows.registry import WORKFLOWS
from starters.client import Cases, CcsError
from workers.worker import build_activities, build_worker, ensure_search_attributes

TZ = "America/Los_Angeles"
INTAKE = Actor(id="clerk.intake", role="intake_clerk")
CM = {"id": "cm.rivera", "role": "case_manager"}
SUP = {"id": "sup.nguyen", "role": "supervisor"}
MC = {"id": "dr.consultant", "role": "medical_consultant"}
STATE = {"id": "state.reviewer", "role": "state_reviewer"}
FULL_SCOPE = {"residential_in_county": True, "full_scope_medi_cal": True}
EXAMPLES = ROOT / "examples" / "actions"
QUEUE = "bench-life21"

# (age, what): the busy years besides renewals, transition tasks and requests.
EVENTS = [
    (2, ("refer", "G80.9", "Cerebral palsy, unspecified", True)),
    (3, ("pharmacy_sar",)),
    (12, ("publish_policy",)),
    (5, ("transfer", "Lake")),
    (8, ("deny_renewal_then_appeal",)),
    (7, ("grievance",)),
    (9, ("refer", "Q90.9", "Down syndrome, unspecified", False)),
    (9, ("condition_appeal",)),
    (11, ("transfer", "Fresno")),
    (13, ("refer", "D57.1", "Sickle-cell disease without crisis", True)),
    (16, ("refer", "Q21.0", "Ventricular septal defect", True)),
]


def life_policy(dob: date) -> Policy:
    """Napa dependent (see above); the meal cap rises from $15 to $18 on the child's 10th birthday."""
    return Policy.model_validate({
        "counties": {"Napa": {"jurisdiction": "dependent"}},
        "changes": [{"effective": birthday(dob, 10), "source": "bench: a dated change mid-life",
                     "values": {"meals_lodging": {"meals_per_person_per_day": "18.00"}}}],
    })


def publish_mileage(policy: Policy) -> Policy:
    """The policy file edited at 12 (a higher mileage rate, in place) and published."""
    ml = policy.meals_lodging.model_copy(update={"mileage_rate": Decimal("0.30")})
    return policy.model_copy(update={"meals_lodging": ml})


def example(name: str, **changes) -> dict:
    data = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.update(changes)
    return data


def act(actor: dict, **data) -> dict:
    return {"actor": actor, **data}


@dataclass
class Life:
    env: WorkflowEnvironment
    cases: Cases
    requests_supported: bool
    case_id: str = ""
    dob: date | None = None
    actions: Counter = field(default_factory=Counter)
    done_events: set = field(default_factory=set)
    request_years: set = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    publish: object = None  # async (Policy) -> version: `ccs policy publish`
    trip_caps: list = field(default_factory=list)  # (age, meals cap, mileage cap) of each trip
    refused: list = field(default_factory=list)  # what the case refused, in its words

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def today(self) -> date:
        return local_today(await self.now(), TZ)

    async def do(self, name: str, data: dict):
        self.actions[name] += 1
        return await self.cases.act(self.case_id, name, data)

    async def settle(self, ident: str, predicate, timeout: float = 20.0):
        status = None
        for _ in range(int(timeout / 0.02)):
            try:
                status = await self.cases.show(ident)
            except CcsError:  # a request the case has not started yet
                status = None
            if status is not None and predicate(status):
                return status
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{ident} never reached the expected state (last: {getattr(status, 'stage', None) or getattr(status, 'state', None)})")

    async def refer(self, icd10: str | None = None, description: str | None = None, county: str = "Napa"):
        data = referral(0, county=county, dob=self.dob, tag="Life")
        data["medi_cal"] = {"full_scope": True, "plan": "Kaiser Permanente"}
        data["referrer"] = {"kind": "hospital", "organization": "Synthetic Regional NICU",
                            "email": "nicu@hospital.example"}
        if icd10:
            data["conditions"] = [{"icd10": icd10, "description": description}]
        self.actions["refer"] += 1
        return await self.cases.refer(data, INTAKE)

    def reviewer(self, status) -> dict:
        return MC if status.jurisdiction == "county" else STATE

    async def live(self) -> object:
        self.dob = await self.today() - timedelta(days=3)
        self.cases.policy = life_policy(self.dob)
        status = await self.refer()
        self.case_id = status.case_id
        assert (status.jurisdiction, status.appeals_and_sars_by, status.case_management) == (
            "state", "state", "Kaiser Permanente"), status
        day = status.referral_date.isoformat()
        await self.do("record_application", act(CM, received_on=day))
        await self.do("record_records", act(CM, received_on=day))
        await self.do("record_eligibility", act(CM, finances=FULL_SCOPE))
        status = await self.do("record_medical_determination",
                               act(self.reviewer(status), condition_id="C1", eligible=True, reason="CF confirmed"))
        assert status.stage == "active", status.stage
        status = await self.do("assign_case_manager", act(SUP, case_manager="cm.rivera"))
        for _ in range(2000):
            if status.stage == "closed":
                return status
            status = await self.step(status)
        raise RuntimeError("the life did not end within 2000 steps")

    async def step(self, status):
        """One thing the staff do today, or else wait for the case's next deadline."""
        age = age_on(self.dob, await self.today())
        # Open tasks first.
        for task in status.open_tasks:
            if task.kind == "renewal":
                if age >= 8 and "deny" not in self.done_events:
                    self.done_events.add("deny")
                    status = await self.do("record_renewal", act(CM, finances={"residential_in_county": False}))
                    assert status.stage == "denied", status.stage
                    status = await self.do("file_appeal", act(CM, grounds="the family never left the county"))
                    # In a dependent county (Lake, ages 5-11) the State CCS regional office answers.
                    answers = STATE if status.appeals_and_sars_by == "state" else SUP
                    return await self.do("decide_appeal", act(answers, outcome="overturned",
                                                              reason="proof of residence was misfiled"))
                return await self.do("record_renewal", act(CM, finances=FULL_SCOPE))
            if task.kind.startswith("transition:") or task.kind == "assign_case_manager" and status.case_manager:
                return await self.do("complete_task", act(CM, task_id=task.id))
            if task.kind == "assign_case_manager":
                return await self.do("assign_case_manager", act(SUP, case_manager=f"cm.{status.county.lower()}"))
            if task.kind.startswith("medical_review:"):
                cid = task.kind.partition(":")[2]
                eligible = cid not in self.not_eligible
                return await self.do("record_medical_determination", act(
                    self.reviewer(status), condition_id=cid, eligible=eligible,
                    reason="meets CCS criteria" if eligible else "not a CCS-eligible condition"))
        # This year's events.
        for at, event in EVENTS:
            if age >= at and event not in self.done_events and event[0] != "deny_renewal_then_appeal":
                self.done_events.add(event)
                if event[0] == "refer":
                    status = await self.refer(event[1], event[2], status.county)
                    if not event[3]:
                        self.not_eligible.add(status.conditions[-1].id)
                    return status
                if event[0] == "transfer":
                    return await self.do("transfer_county", act(CM, county=event[1]))
                if event[0] == "pharmacy_sar":
                    return await self.pharmacy_sar(status)
                if event[0] == "publish_policy":
                    await self.publish(publish_mileage(self.cases.policy))
                    return status
                if event[0] == "grievance" and "file_grievance" in ACTIONS:
                    return await self.grievance(status)
                if event[0] == "condition_appeal" and "file_condition_appeal" in ACTIONS:
                    denied = next(c for c in status.conditions if c.status == "not_eligible")
                    await self.do("file_condition_appeal", act(CM, condition_id=denied.id, grounds="a second opinion"))
                    return await self.do("decide_condition_appeal", act(SUP, condition_id=denied.id, outcome="upheld",
                                                                        reason="the second opinion finds no new facts"))
        if self.requests_supported and 1 <= age < 21 and age not in self.request_years:
            self.request_years.add(age)
            return await self.yearly_requests(status)
        # Nothing to do today: wait for the next deadline.
        seen = len(status.notices_sent), status.stage, len(status.open_tasks)
        now = await self.now()
        when = min(status.deadlines.values())
        if when > now:
            await self.env.sleep(when - now + timedelta(minutes=1))
        return await self.settle(self.case_id, lambda s: (len(s.notices_sent), s.stage, len(s.open_tasks)) != seen
                                 or s.open_tasks)

    not_eligible: set = field(default_factory=set)

    async def yearly_requests(self, status):
        """One trip (request, approval, receipts, payment) and one service authorization."""
        today = await self.today()
        start = today + timedelta(days=10)
        trip = dict(example("request_meals_lodging")["request"], travel_start=start.isoformat(),
                    travel_end=(start + timedelta(days=1)).isoformat())
        before = {r.request_id for r in status.requests}
        status = await self.do("request_meals_lodging", act(CM, request=trip))
        rid = next(r.request_id for r in status.requests if r.request_id not in before)
        self.requests.append(rid)
        req = await self.settle(rid, lambda r: r.state != "starting")
        self.trip_caps.append((age_on(self.dob, today), req.caps["meals"], req.caps["mileage"]))
        await self.do("decide_meals_lodging", example("decide_meals_lodging", request_id=rid))
        await self.env.sleep(timedelta(days=12))
        items = [dict(i, spent_on=start.isoformat()) for i in example("submit_receipts")["items"]]
        await self.do("submit_receipts", example("submit_receipts", request_id=rid, items=items))
        await self.settle(rid, lambda r: r.payment is not None)

        status = await self.cases.show(self.case_id)
        before = {r.request_id for r in status.requests}
        status = await self.do("request_authorization", example("request_authorization"))
        sar = next(r.request_id for r in status.requests if r.request_id not in before)
        self.requests.append(sar)
        req = await self.settle(sar, lambda r: r.state == "awaiting_decision")
        decider = {"actor": STATE} if req.decided_by == "state" else {}  # dependent county: the State
        if age_on(self.dob, today) == 6 and "request_information" in REQUEST_ACTIONS:  # one pended request
            await self.do("request_information", example("request_information", request_id=sar, **decider))
            await self.env.sleep(timedelta(days=3))
            await self.do("record_information", example("record_information", request_id=sar))
        await self.do("decide_authorization", example("decide_authorization", request_id=sar, **decider))
        return await self.cases.show(self.case_id)

    async def pharmacy_sar(self, status):
        """A prescription asked for as a SAR: refused, pointing to Medi-Cal Rx; nothing starts."""
        before = len(status.requests)
        try:
            await self.do("request_authorization", example("request_authorization", request=dict(
                example("request_authorization")["request"], service_type="pharmacy", service="Dornase alfa")))
        except CcsError as e:
            self.refused.append(e.message)
        else:
            raise RuntimeError("a pharmacy SAR was accepted")
        status = await self.cases.show(self.case_id)
        assert len(status.requests) == before
        return status

    async def grievance(self, status):
        """A family's complaint about a delay, acknowledged at once and resolved a week later."""
        before = {r.request_id for r in status.requests}
        status = await self.do("file_grievance", example("file_grievance"))
        grv = next(r.request_id for r in status.requests if r.request_id not in before)
        self.requests.append(grv)
        await self.settle(grv, lambda r: r.state == "open")
        await self.env.sleep(timedelta(days=7))
        await self.do("resolve_grievance", example("resolve_grievance", request_id=grv))
        return await self.cases.show(self.case_id)


async def histories(client, case_id: str) -> dict:
    """Every run of the case (events, state carried into the next run) and every request."""
    latest = await client.get_workflow_handle(case_id).fetch_history()
    first = latest.events[0].workflow_execution_started_event_attributes.first_execution_run_id
    runs, children, recorded = [], [], []
    run_id = first
    while run_id:
        hist = await client.get_workflow_handle(case_id, run_id=run_id).fetch_history()
        recorded.append(hist)
        last = hist.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes if last.HasField(
            "workflow_execution_continued_as_new_event_attributes") else None
        started = hist.events[0]
        runs.append({
            "run": len(runs) + 1, "events": len(hist.events),
            "from": started.event_time.ToDatetime().date().isoformat(),
            "carried_kb": round(sum(len(p.data) for p in attrs.input.payloads) / 1024, 1) if attrs else None,
            "bytes": sum(e.ByteSize() for e in hist.events),
        })
        for e in hist.events:
            if e.HasField("start_child_workflow_execution_initiated_event_attributes"):
                children.append(e.start_child_workflow_execution_initiated_event_attributes.workflow_id)
        run_id = attrs.new_execution_run_id if attrs else ""
    kids = []
    for wid in children:
        hist = await client.get_workflow_handle(wid).fetch_history()
        recorded.append(hist)
        kids.append({"workflow_id": wid, "events": len(hist.events)})
    return {"runs": runs, "children": kids, "recorded": recorded}


async def replay(client, recorded: list) -> dict:
    """Replay every history against today's workflow code: a nondeterminism is a failure."""
    t0 = time.perf_counter()
    async def each():
        for history in recorded:
            yield history

    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter)
    async with replayer.workflow_replay_iterator(each()) as results:
        failed = [r.history.workflow_id async for r in results if r.replay_failure is not None]
    return {"histories": len(recorded), "failed": failed, "wall_s": time.perf_counter() - t0}


async def one_life(env, cases, supported: bool, sessions) -> dict:
    async with sessions.begin() as session:  # each life starts with no published policy
        await session.execute(text("TRUNCATE policy_versions, policy_publications"))

    async def publish(policy: Policy) -> str:
        return (await publish_policy(sessions, policy))[0]

    life = Life(env, cases, supported, publish=publish)
    t0 = time.perf_counter()
    started = t0
    status = await life.live()
    wall = time.perf_counter() - t0
    h = await histories(env.client, life.case_id)
    replayed = await replay(env.client, h.pop("recorded"))
    log(f"  replayed {replayed['histories']} histories in {replayed['wall_s']:.1f} s, {len(replayed['failed'])} failed")
    return {"wall_s": wall, "t_start": started, "status": status, "actions": life.actions, "histories": h, "requests": life.requests,
            "dob": life.dob, "replayed": replayed, "trip_caps": life.trip_caps, "refused": life.refused}


async def main(args) -> None:
    supported = {"request_meals_lodging", "request_authorization"} <= set(ACTIONS)
    tmp = Path(tempfile.mkdtemp(prefix="ccs-bench-life21-"))
    tmp.chmod(0o755)
    pgdata = tmp / "pg" / "data"
    keyring = new_keyring()
    load_start = loadavg()
    lives = []
    try:
        url = await asyncio.to_thread(start_postgres, pgdata)
        await upgrade_async(url)
        for n in range(args.lives):
            t_env = time.perf_counter()
            env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=data_converter(keyring))
            try:
                await ensure_search_attributes(env.client, "default", known=False)
                s = settings(tmp / "ccs", "unused:0", url, QUEUE)
                activities, engine = build_activities(s, url)
                try:
                    async with build_worker(env.client, QUEUE, activities):
                        cases = Cases(env.client, QUEUE, Policy(), keyring.case_id_secret)
                        log(f"life {n + 1}/{args.lives} (requests {'on' if supported else 'not supported'})")
                        life = await one_life(env, cases, supported, activities.sessions)
                        life["setup_s"] = life["t_start"] - t_env
                        log(f"  {life['wall_s']:.1f} s, {sum(life['actions'].values())} actions, "
                            f"{len(life['histories']['runs'])} runs, largest "
                            f"{max(r['events'] for r in life['histories']['runs'])} events")
                        lives.append(life)
                finally:
                    await engine.dispose()
            finally:
                await env.shutdown()
    finally:
        await asyncio.to_thread(stop_embedded, pgdata)
        shutil.rmtree(tmp, ignore_errors=True)
    write_section("life21", report(args, lives, supported, load_start, loadavg()))


def report(args, lives: list[dict], supported: bool, load_start: str, load_end: str) -> str:
    life = lives[0]
    status, h = life["status"], life["histories"]
    runs, kids = h["runs"], h["children"]
    biggest = max(runs, key=lambda r: r["events"])
    kid_max = max((k["events"] for k in kids), default=0)
    walls = [x["wall_s"] for x in lives]
    worst = max(walls)
    carried = [r["carried_kb"] for r in runs if r["carried_kb"] is not None]
    n_actions = sum(life["actions"].values())
    acts = ", ".join(f"{k} {v}" for k, v in sorted(life["actions"].items()))
    notices = Counter(k.split("/")[-2] for k in status.notices_sent)
    req_note = (f"{len(life['requests'])} requests ({sum('-ml-' in r for r in life['requests'])} meals-and-lodging "
                f"trips requested, approved, receipted and paid; {sum('-sar-' in r for r in life['requests'])} "
                "service authorizations requested and approved), each its own child workflow;"
                if supported else
                "meals-and-lodging requests and service authorizations: **not measured** (the case did not "
                "take `request_meals_lodging` / `request_authorization` when this ran);")
    events_ok = "met" if max(biggest["events"], kid_max) <= 10000 else "missed"
    wall_ok = "met" if worst < 30 else "missed"
    run_rows = [{k: v for k, v in r.items() if k != "bytes"} | {"kb": round(r["bytes"] / 1024)} for r in runs]
    replayed = life["replayed"]
    caps = _cap_spans(life["trip_caps"])
    return f"""## A 21-year life in time-skipping

`{command_line()}`: {len(lives)} {"life" if len(lives) == 1 else "lives"}, each on a fresh time-skipping test server
(temporal-test-server), the product's worker in process, a real (embedded) PostgreSQL; the figures
below the first line are from the first life. Load average {load_start} at the start,
{load_end} at the end.

{machine_md()}

**Whole life: {', '.join(f'{w:.1f}' for w in walls)} s of wall time, from the referral to the closure at 21
(target under 30 s: {wall_ok}; starting the test server and the worker took {life['setup_s']:.1f} s more).
Largest single-run history: {biggest['events']:,} events (run {biggest['run']}); largest request history
{kid_max:,} events (target: no run over 10,000 events: {events_ok}).**

The life: born {life['dob']}, referred at 3 days, active within the day; closed {status.closure.on}
({status.closure.reason}); {len(status.conditions)} conditions referred and determined
({', '.join(f"{c.icd10} {c.status}" for c in status.conditions)}); {len(status.stage_history)} stage changes
({' > '.join(h.stage for h in status.stage_history)}); {req_note}
{n_actions} actions in all ({acts}); {len(status.notices_sent)} notices
({', '.join(f'{k} {v}' for k, v in sorted(notices.items()))}).

{len(runs)} runs (the case continues as new about once a year, policy `run.continue_as_new_after`);
the state carried into the next run grew from {carried[0] if carried else 0} KB to {carried[-1] if carried else 0} KB
(encrypted).

**Replay: {replayed['histories']} histories ({len(runs)} runs of the case, {len(kids)} requests) replayed with
the Replayer against this code in {replayed['wall_s']:.1f} s; {len(replayed['failed'])} failed**{
": " + ", ".join(replayed['failed']) if replayed['failed'] else ""}.

Program fidelity in this life (issue 15): Napa, made dependent by the bench's policy, with a Kaiser
Permanente plan: the State made the medical determination and decided SARs and Kaiser managed
the case (Whole Child Model) until the move to Lake at 5; a SAR pended for information at 6 and
decided after it came in; a pharmacy SAR at 3 refused ({len(life['refused'])} refused: "{
life['refused'][0][:110] if life['refused'] else '-'}..."); a grievance at 7; a condition-level appeal
at 9. Policy changes mid-life: the dated change (meal cap $15 to $18 from the 10th birthday) and the
policy published at 12 (mileage $0.21 to $0.30 a mile) reached the trips of those dates; each
trip's caps (2 people, 2 days; 240 miles), by the child's age: {caps}.

Per run:

{md_table(run_rows, [("run", "run"), ("from", "from"), ("events", "events"), ("kb", "history KB"),
                     ("carried_kb", "state carried, KB")])}
"""


def _cap_spans(trips: list) -> str:
    """Consecutive trips with the same caps as one span: "ages 1-9: meals $60.00, mileage $50.40"."""
    spans: list[list] = []
    for age, meals, mileage in trips:
        if spans and spans[-1][2:] == [meals, mileage]:
            spans[-1][1] = age
        else:
            spans.append([age, age, meals, mileage])
    return "; ".join(f"ages {a}-{b}: meals ${m}, mileage ${mi}" for a, b, m, mi in spans)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lives", type=int, default=1, help="lives in a row, each on a fresh test server")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
