"""Published policy versions in PostgreSQL: ``publish_policy`` stores a policy under its
content hash and makes it the deployment's current one; the ``current_policy`` activity
tells a running case the current policy when it is not the one the case already has (its
answer is recorded in the case's history, so replay never asks again)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity

from activities.tables import PolicyPublicationRow, PolicyVersionRow
from models.policy import Policy, PublishedPolicy


async def publish_policy(sessions: async_sessionmaker, policy: Policy) -> tuple[str, bool]:
    """Store ``policy`` and make it current; (its version, whether that changed the current one).

    Publishing the current policy again changes nothing, so every start of ``ccs up`` may publish."""
    version = policy.version()
    async with sessions.begin() as session:
        await session.execute(insert(PolicyVersionRow).values(version=version, body=policy.model_dump_json())
                              .on_conflict_do_nothing(index_elements=["version"]))
        current = await _current_version(session)
        if current == version:
            return version, False
        session.add(PolicyPublicationRow(version=version))
    return version, True


async def current_published(sessions: async_sessionmaker) -> PublishedPolicy | None:
    async with sessions() as session:
        row = (await session.execute(
            select(PolicyPublicationRow.version, PolicyPublicationRow.published_at, PolicyVersionRow.body)
            .join(PolicyVersionRow, PolicyVersionRow.version == PolicyPublicationRow.version)
            .order_by(PolicyPublicationRow.id.desc()).limit(1))).first()
    if row is None:
        return None
    return PublishedPolicy(version=row.version, published_at=row.published_at,
                           policy=Policy.model_validate_json(row.body))


async def _current_version(session) -> str | None:
    return (await session.execute(select(PolicyPublicationRow.version)
                                  .order_by(PolicyPublicationRow.id.desc()).limit(1))).scalar_one_or_none()


class PolicyActivities:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    @activity.defn(name="current_policy")
    async def current_policy(self, known: str | None) -> PublishedPolicy | None:
        """The deployment's current policy, or None when it is ``known`` (or none was published)."""
        async with self.sessions() as session:
            if await _current_version(session) in (None, known):
                return None
        return await current_published(self.sessions)
