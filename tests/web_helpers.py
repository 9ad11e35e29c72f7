"""Shared by the web tests: the service (API and web app) in process on a worker of its own
task queue, people of each role with passwords, and a referral form a clerk fills in."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import timedelta

from activities.notify import MailboxChannel, Notifier
from activities.storage import CaseActivities
from models.policy import ActivePolicy, Policy
from starters.api.app import build_services, create_app
from starters.api.settings import ApiSettings
from tests.conftest import cases_for
from workers.worker import build_worker

PASSWORD = "correct-horse-battery-staple"
# The supervisor's assignment task falls due a moment after a case becomes active, so a
# walk through a case ends with an overdue task for the supervisor to see.
POLICY = Policy(active=ActivePolicy(assign_case_manager_within=timedelta(seconds=1)))
ROLES = {"clerk": ("intake_clerk", "Kern"), "cm": ("case_manager", "Kern"), "cm2": ("case_manager", "Kern"),
         "doc": ("medical_consultant", "Kern"), "sup": ("supervisor", "Kern"), "aud": ("auditor", "Kern"), "fresno": ("case_manager", "Fresno")}


@dataclass
class Office:
    app: object
    services: object
    users: dict[str, str]  # short name -> user ID


async def open_office(dev_env, engine, sessions, tmp) -> tuple[Office, object]:
    """The app and its people; returns the office and the worker to run as a context."""
    notifier = Notifier(sessions, MailboxChannel(tmp / "mailbox"), "ccs@county.example", "supervisor@county.example")
    queue = f"tq-web-{uuid.uuid4().hex[:8]}"
    cases = cases_for(dev_env, queue, POLICY)
    # Other tests' failed sign-ins share this database and the address 127.0.0.1: the address
    # throttle would refuse this office's people (the per-user throttle still holds).
    settings = ApiSettings(CCS_API_SECRET="test-" + os.urandom(16).hex(), CCS_SIGNIN_MAX_PER_ADDRESS=1_000_000)
    services = build_services(cases, engine, settings, settings.token_secret.encode())
    run = uuid.uuid4().hex[:6]
    users = {}
    for short, (role, county) in ROLES.items():
        users[short] = f"{short}.{run}"
        await services.users.add(users[short], role, county, PASSWORD)
    worker = build_worker(dev_env.client, queue, CaseActivities(sessions, notifier))
    return Office(create_app(api=settings, services=services), services, users), worker


# The web tests' own client address: their failed sign-ins count against no other test's.
CLIENT = ("10.13.0.1", 4313)

REFERRAL_FORM = {
    "child.first_name": "Rosa", "child.last_name": "Synthetic", "child.date_of_birth": "2017-04-09",
    "child.county": "Kern", "referrer.kind": "specialist", "referrer.organization": "Example Children's Clinic",
    "conditions.0.icd10": "E84.0", "conditions.0.description": "Cystic fibrosis with pulmonary manifestations",
    "medi_cal.full_scope": "true",
}
