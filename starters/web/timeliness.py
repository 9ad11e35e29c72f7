"""Timeliness figures from the audit log and the notice outbox, per month (California time):
Notices of Action sent within 7 days, authorizations decided in time, days from referral to
medical determination, and the figures CMS-0057-F asks payers to publish for prior
authorizations (share approved and denied, average and median days to decide, standard and
expedited apart)."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text

from activities.tables import AuditRow
from starters.web.humane import PACIFIC, local

NOA_WITHIN = timedelta(days=7)
DAY_BUCKETS = ((0, 7), (8, 14), (15, 30), (31, 60), (61, None))


def _month(at: datetime) -> str:
    return f"{local(at):%Y-%m}"


def _share(hits: int, total: int) -> float | None:
    return round(100 * hits / total, 1) if total else None


_DAYS = text("""
WITH referred AS (
    SELECT case_id, min(at) AS at FROM audit_log WHERE action = 'refer' AND (CAST(:county AS varchar) IS NULL OR county = :county)
    GROUP BY case_id),
decided AS (
    SELECT case_id, min(at) AS at FROM audit_log
    WHERE action = 'record_medical_determination' AND (CAST(:county AS varchar) IS NULL OR county = :county) GROUP BY case_id),
spans AS (
    SELECT to_char(d.at AT TIME ZONE :tz, 'YYYY-MM') AS month, extract(day FROM d.at - r.at)::int AS days
    FROM decided d JOIN referred r USING (case_id) WHERE d.at >= :since)
SELECT month, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY days),
       count(*) FILTER (WHERE days <= 7), count(*) FILTER (WHERE days BETWEEN 8 AND 14),
       count(*) FILTER (WHERE days BETWEEN 15 AND 30), count(*) FILTER (WHERE days BETWEEN 31 AND 60),
       count(*) FILTER (WHERE days > 60)
FROM spans GROUP BY month ORDER BY month
""")
_NOA = text("""
SELECT to_char(o.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month,
       count(*) FILTER (WHERE o.sent_at IS NOT NULL AND o.sent_at - o.created_at <= :within), count(*)
FROM outbox o WHERE o.kind = 'notice_of_action' AND o.created_at >= :since
  AND (CAST(:county AS varchar) IS NULL OR o.case_id IN (SELECT case_id FROM cases WHERE county = :county))
GROUP BY month ORDER BY month
""")


async def figures(engine, county: str | None, months: int = 12, now: datetime | None = None) -> dict:
    """The figures of the last ``months`` months; the sums run in PostgreSQL."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=31 * months)
    args = {"county": county, "since": since, "tz": PACIFIC.key}
    sars = select(AuditRow.source, AuditRow.action, AuditRow.at, AuditRow.detail).where(
        AuditRow.action.in_(("request_authorization", "decide_authorization")), AuditRow.at >= since - timedelta(days=30))
    if county:
        sars = sars.where(AuditRow.county == county)
    async with engine.connect() as conn:
        days = (await conn.execute(_DAYS, args)).all()
        noas = (await conn.execute(_NOA, {**args, "within": NOA_WITHIN})).all()
        auth = (await conn.execute(sars.order_by(AuditRow.at))).all()
    return {
        "noa": [{"month": m, "within": w, "total": t, "percent": _share(w, t)} for m, w, t in noas],
        "determination_days": [{"month": m, "cases": n, "median": round(float(med), 1), "buckets": list(b)}
                               for m, n, med, *b in days],
        "authorizations": _authorizations(auth, since),
    }


def _authorizations(rows, since: datetime) -> list[dict]:
    asked: dict[str, tuple[datetime, str]] = {}
    groups: dict[tuple[str, str], dict] = {}
    for source, action, at, detail in rows:
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
