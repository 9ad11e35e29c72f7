"""Schemathesis against the served OpenAPI document, signed in: no 5xx and no response that
breaks the schema. The API runs under uvicorn in a thread with its own event loop, Temporal
client, worker and database engine (the test's requests are synchronous)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from temporalio.client import Client

from activities.db import make_engine, session_factory
from activities.notify import MailboxChannel, Notifier
from activities.storage import CaseActivities
from models.case import Actor
from models.policy import Policy
from starters.api.app import build_services, create_app
from starters.api.serve import _Quiet
from starters.client import Cases
from tests.api_helpers import api_settings, local_issuer
from tests.conftest import CONVERTER
from tests.helpers import referral, free_port
from workers.worker import build_worker

EXAMPLES = 12  # per operation: enough to walk every route's error paths, short enough for CI



async def _serve(target: str, database_url: str, jwks_url: str, port: int, mailbox, ready: threading.Event,
                 stop: threading.Event) -> None:
    client = await Client.connect(target, data_converter=CONVERTER)
    queue = f"tq-schema-{uuid.uuid4().hex[:8]}"
    cases = Cases(client, queue, Policy(), os.urandom(32))
    engine = make_engine(database_url, pool_size=4)
    sessions = session_factory(engine)
    notifier = Notifier(sessions, MailboxChannel(mailbox), "ccs@county.example", "supervisor@county.example")
    settings = api_settings(jwks_url)
    services = build_services(cases, engine, settings, settings.token_secret.encode())
    import uvicorn

    server = _Quiet(uvicorn.Config(create_app(api=settings, services=services), host="127.0.0.1", port=port,
                                   log_level="warning", lifespan="off"))
    try:
        async with build_worker(client, queue, CaseActivities(sessions, notifier)):
            task = asyncio.create_task(server.serve())
            await cases.refer(referral(first_name="Schema", last_name="Walker", cin=None),
                              Actor(id="clerk.k", role="intake_clerk"))
            while not server.started:
                await asyncio.sleep(0.05)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.1)
            server.should_exit = True
            await task
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def served_api(dev_env, database_url, engine, tmp_path_factory):  # engine: the migrated schema
    port = free_port()
    ready, stop = threading.Event(), threading.Event()
    target = dev_env.client.service_client.config.target_host
    with local_issuer() as (issuer, jwks_url):
        thread = threading.Thread(target=asyncio.run, daemon=True, args=(
            _serve(target, database_url, jwks_url, port, tmp_path_factory.mktemp("schema"), ready, stop),))
        thread.start()
        assert ready.wait(60), "the API did not start"
        try:
            yield f"http://127.0.0.1:{port}", issuer
        finally:
            stop.set()
            thread.join(30)


def test_schemathesis_finds_no_server_error_or_schema_break(served_api):
    base, issuer = served_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures = []
    for role, county in (("supervisor", "Kern"), ("auditor", None), ("admin", None)):
        headers = {"Authorization": "Bearer " + issuer.token(f"{role}.schema", role, county)}
        for result in schema.get_all_operations():
            operation = result.ok()

            @hypothesis.given(case=operation.as_strategy())
            @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                                 phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            def check(case):
                case.call_and_validate(base_url=base, headers=headers,
                                       checks=[not_a_server_error, response_schema_conformance])

            try:
                check()
            except Exception as e:  # collect every operation's failure, then report them all
                failures.append(f"{role} {operation.label}: {str(e)[:600]}")
    assert not failures, "\n\n".join(failures)
