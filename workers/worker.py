"""The worker: workflows and activities on the case task queue."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.db import make_engine, session_factory
from activities.identity import IdentityActivities
from activities.payments import PaymentActivities
from activities.policy import PolicyActivities
from activities.letters import LetterStore
from activities.retention import RetentionActivities
from activities.notify import Notifier, channel_from_settings
from activities.storage import CaseActivities
from models import search
from models.converter import EncryptionCodec, load_keyring
from models.policy import RetentionPolicy
from models.settings import Settings
from workers import code_cache
from workflows.registry import WORKFLOWS

log = logging.getLogger(__name__)



async def ensure_search_attributes(client: Client, namespace: str, known: bool = True) -> list[str]:
    """Register the SPEC's search attributes that the server lacks; return those added.

    ``known=False`` skips listing (the time-skipping test server cannot list, only add)."""
    have = (await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))).custom_attributes if known else {}
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in search.ALL
        if key.name not in have
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
    return sorted(missing)


def build_activities(settings: Settings, database_url: str) -> tuple[CaseActivities, object]:
    engine = make_engine(database_url, pre_ping=False)  # activities retry: no ping per use
    sessions = session_factory(engine)
    keyring = load_keyring(settings)
    notifier = Notifier(sessions, channel_from_settings(settings), settings.mail_from, settings.supervisor_email,
                        letters=LetterStore(sessions, keyring))
    return CaseActivities(sessions, notifier, EncryptionCodec(keyring.keys, keyring.active)), engine


def build_worker(client: Client, task_queue: str, activities: CaseActivities, max_cached: int = 1000,
                 retention: RetentionPolicy = RetentionPolicy()) -> Worker:
    purge = RetentionActivities(activities.sessions, retention.keep_closed_for).purge_records
    code_cache.install()  # each new workflow's sandbox imports workflows/ afresh: compile it once
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[activities.record_steps, PaymentActivities(activities.sessions).pay_reimbursement,
                    IdentityActivities(activities.sessions).merge_identity, purge,
                    PolicyActivities(activities.sessions).current_policy],
        max_cached_workflows=max_cached,
    )
