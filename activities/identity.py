"""The identity index in PostgreSQL: resolve a referral to its case and claim its keys in one
transaction, find a child's cases, and re-point a merged case's keys to the case kept.

Two referrals that could concern one child share their name + DOB key or their CIN key;
a transaction-scoped advisory lock on those keys serializes them, so referrals of a new
child that arrive at once all resolve to one case, and the partial unique index on CIN
keys is the last guard that no CIN ever locates two cases.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.tables import CaseRow, IdentityKeyRow
from models.referral import Child
from rules.identity import (
    ChildKeys,
    IndexedCase,
    Resolution,
    child_keys,
    cin_key,
    name_keys,
    resolve,
)


def keys_of(child: Child, secret: bytes) -> ChildKeys:
    return child_keys(secret, first_name=child.first_name, last_name=child.last_name,
                      date_of_birth=child.date_of_birth, cin=child.cin)


async def _lock(session: AsyncSession, keys: ChildKeys) -> None:
    # Sorted, so two transactions never wait on each other's second lock (no deadlock).
    for key in sorted(k for k in (keys.name_dob, keys.cin) if k):
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(key[:15], 16)})


async def _cases_with(session: AsyncSession, key: str) -> list[IndexedCase]:
    case_ids = (await session.scalars(select(IdentityKeyRow.case_id).where(IdentityKeyRow.key_hash == key))).all()
    if not case_ids:
        return []
    rows = (await session.execute(
        select(IdentityKeyRow.case_id, func.min(IdentityKeyRow.dob_hash),
               func.bool_or(IdentityKeyRow.kind == "cin"))
        .where(IdentityKeyRow.case_id.in_(case_ids)).group_by(IdentityKeyRow.case_id)
        .order_by(IdentityKeyRow.case_id))).all()
    return [IndexedCase(case_id=c, dob=dob, has_cin=has_cin) for c, dob, has_cin in rows]


async def resolve_and_claim(sessions: async_sessionmaker, keys: ChildKeys) -> Resolution:
    """The referral's case by the identity rules, its keys claimed for that case: one transaction.
    Raises IdentityRefused (nothing claimed) when the rules refuse."""
    async with sessions.begin() as session:
        await _lock(session, keys)
        cin_case = None
        if keys.cin:
            cin_case = next(iter(await _cases_with(session, keys.cin)), None)
        found = resolve(keys, cin_case, await _cases_with(session, keys.name_dob))
        if found.possible_duplicate_of:  # a closed case needs no supervisor's decision
            closed = set((await session.scalars(select(CaseRow.case_id).where(
                CaseRow.case_id.in_(found.possible_duplicate_of), CaseRow.stage == "closed"))).all())
            still_open = tuple(c for c in found.possible_duplicate_of if c not in closed)
            outcome = "new_case" if found.outcome == "possible_duplicate" and not still_open else found.outcome
            found = replace(found, outcome=outcome, possible_duplicate_of=still_open)
        await session.execute(insert(IdentityKeyRow).values([
            dict(key_hash=key, case_id=found.case_id, kind=kind, dob_hash=keys.dob)
            for kind, key in found.claims.items()
        ]).on_conflict_do_nothing(index_elements=["key_hash", "case_id"]))
        return found


async def find_cases(session: AsyncSession, secret: bytes, *, cin: str | None = None,
                     first_name: str | None = None, last_name: str | None = None,
                     date_of_birth: date | None = None) -> list[str]:
    """Case IDs of a child, found by CIN, by full name + date of birth, or by last name +
    date of birth (folded as referrals are). Criteria given together must all match."""
    wanted: list[str] = []
    if cin:
        wanted.append(cin_key(secret, cin))
    if last_name and date_of_birth:
        wanted.append(name_keys(secret, last_name=last_name, date_of_birth=date_of_birth, first_name=first_name)[1])
    elif first_name or last_name or date_of_birth:
        raise ValueError("a search by name needs the last name and the date of birth (the first name is optional)")
    if not wanted:
        raise ValueError("search by Medi-Cal number (CIN), or by last name and date of birth")
    found: set[str] | None = None
    for key in wanted:
        ids = set((await session.scalars(select(IdentityKeyRow.case_id).where(IdentityKeyRow.key_hash == key))).all())
        found = ids if found is None else found & ids
    return sorted(found or ())


class IdentityActivities:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    @activity.defn(name="merge_identity")
    async def merge_identity(self, merged_case_id: str, kept_case_id: str) -> int:
        """The merged case's keys now locate the case kept (idempotent: a retry finds none left)."""
        async with self.sessions.begin() as session:
            # A key both cases hold stays once, on the case kept.
            kept_keys = select(IdentityKeyRow.key_hash).where(IdentityKeyRow.case_id == kept_case_id)
            await session.execute(delete(IdentityKeyRow).where(
                IdentityKeyRow.case_id == merged_case_id, IdentityKeyRow.key_hash.in_(kept_keys)))
            moved = await session.execute(update(IdentityKeyRow).where(IdentityKeyRow.case_id == merged_case_id)
                                          .values(case_id=kept_case_id))
            return moved.rowcount


async def claim_for_case(sessions: async_sessionmaker, keys: ChildKeys, case_id: str) -> int:
    """Add a child's keys to a case already open (cases opened before the index existed).
    A CIN that another case holds stays with that case. Returns the keys added."""
    async with sessions.begin() as session:
        await _lock(session, keys)
        added = await session.execute(insert(IdentityKeyRow).values([
            dict(key_hash=key, case_id=case_id, kind=kind, dob_hash=keys.dob) for kind, key in keys.claims().items()
        ]).on_conflict_do_nothing().returning(IdentityKeyRow.kind))
        return len(added.all())
