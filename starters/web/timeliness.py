"""Timeliness figures from the audit log and the notice outbox, per month (California time):
Notices of Action sent within 7 days, authorizations decided in time, days from referral to
medical determination, and the figures CMS-0057-F asks payers to publish for prior
authorizations (share approved and denied, average and median days to decide, standard and
expedited apart)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from activities.tables import AuditRow, OutboxRow
from starters.web.humane import local

NOA_WITHIN = timedelta(days=7)
DAY_BUCKETS = ((0, 7), (8, 14), (15, 30), (31, 60), (61, None))


def _month(at: datetime) -> str:
    return f"{local(at):%Y-%m}"


def _share(hits: int, total: int) -> float | None:
    return round(100 * hits / total, 1) if total else None


async def figures(engine, county: str | None, months: int = 12, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=31 * months)
    audit = select(AuditRow.case_id, AuditRow.source, AuditRow.action, AuditRow.at, AuditRow.detail).where(
        AuditRow.at >= since - timedelta(days=365),
        AuditRow.action.in_(("refer", "record_medical_determination", "request_authorization",
                             "decide_authorization")))
    noas = select(OutboxRow.case_id, OutboxRow.created_at, OutboxRow.sent_at).where(
        OutboxRow.kind == "notice_of_action", OutboxRow.created_at >= since)
    if county:
        audit = audit.where(AuditRow.county == county)
        noas = noas.where(OutboxRow.case_id.in_(select(AuditRow.case_id).where(AuditRow.county == county)))
    async with engine.connect() as conn:
        rows = (await conn.execute(audit.order_by(AuditRow.at))).all()
        notices = (await conn.execute(noas)).all()
    return {
        "noa": _noa(notices, now),
        "determination_days": _determination_days(rows, since),
        "authorizations": _authorizations(rows, since),
    }


def _noa(notices, now: datetime) -> list[dict]:
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, created, sent in notices:
        m = by_month[_month(created)]
        m[1] += 1
        m[0] += sent is not None and sent - created <= NOA_WITHIN
    return [{"month": k, "within": v[0], "total": v[1], "percent": _share(*v)} for k, v in sorted(by_month.items())]


def _determination_days(rows, since: datetime) -> list[dict]:
    referred: dict[str, datetime] = {}
    decided: dict[str, datetime] = {}
    for case_id, _, action, at, _ in rows:
        if action == "refer":
            referred.setdefault(case_id, at)
        elif action == "record_medical_determination":
            decided.setdefault(case_id, at)
    by_month: dict[str, list[int]] = defaultdict(list)
    for case_id, at in decided.items():
        if at >= since and case_id in referred:
            by_month[_month(at)].append((at - referred[case_id]).days)
    out = []
    for month, days in sorted(by_month.items()):
        counts = [sum(lo <= d and (hi is None or d <= hi) for d in days) for lo, hi in DAY_BUCKETS]
        out.append({"month": month, "cases": len(days), "median": statistics.median(days), "buckets": counts})
    return out


def _authorizations(rows, since: datetime) -> list[dict]:
    asked: dict[str, tuple[datetime, str]] = {}
    groups: dict[tuple[str, str], dict] = {}
    for _, source, action, at, detail in rows:
        if action == "request_authorization":
            asked[source] = (at, detail.get("urgency", "routine"))
        elif action == "decide_authorization" and source in asked and at >= since:
            start, urgency = asked[source]
            g = groups.setdefault((_month(at), urgency), {"decided": 0, "in_time": 0, "approved": 0,
                                                          "denied": 0, "days": []})
            g["decided"] += 1
            g["in_time"] += not detail.get("late", False)
            g["approved"] += detail.get("decision") in ("approve", "modify")
            g["denied"] += detail.get("decision") == "deny"
            g["days"].append((at - start).total_seconds() / 86400)
    out = []
    for (month, urgency), g in sorted(groups.items()):
        days = g.pop("days")
        out.append({"month": month, "urgency": "expedited" if urgency == "expedited" else "standard", **g,
                    "in_time_percent": _share(g["in_time"], g["decided"]),
                    "approved_percent": _share(g["approved"], g["decided"]),
                    "denied_percent": _share(g["denied"], g["decided"]),
                    "mean_days": round(statistics.fmean(days), 1), "median_days": round(statistics.median(days), 1)})
    return out


def bar_chart(title: str, bars: list[tuple[str, float | None]], unit: str = "%", top: float | None = 100) -> str:
    """A horizontal bar chart as SVG; the same numbers are in the table beside it."""
    row, label_w, width = 26, 80, 320
    top = top or max([v for _, v in bars if v is not None] or [1]) or 1
    height = row * max(len(bars), 1) + 10
    parts = [f'<svg role="img" aria-label="{title}" viewBox="0 0 {label_w + width + 70} {height}" '
             f'width="{label_w + width + 70}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{title}</title>"]
    for i, (label, value) in enumerate(bars):
        y = 5 + i * row
        w = 0 if value is None else max(1, round(width * value / top))
        text = "no data" if value is None else f"{value:g}{unit}"
        parts.append(f'<text x="0" y="{y + 16}" font-size="13" fill="#1b1b1b">{label}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="16" fill="#1a4480"/>'
                     f'<text x="{label_w + w + 6}" y="{y + 16}" font-size="13" fill="#1b1b1b">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)
