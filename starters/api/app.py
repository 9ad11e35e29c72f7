"""The ASGI application: `create_app(settings)` builds it; `ccs serve` and `ccs up` run it
with uvicorn. Services (Temporal client, database, tokens, users) live on app.state.services."""

from __future__ import annotations

import importlib.util
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.db import make_engine, session_factory
from activities.letters import LetterStore
from models.converter import Keyring
from models.settings import Settings
from starters.api import problems
from starters.api.auth import Tokens
from starters.api.settings import ApiSettings
from starters.api.users import Users
from starters.client import Cases
from starters.supervisor import WorkQueue


@dataclass
class Services:
    cases: Cases
    engine: AsyncEngine
    sessions: object  # async_sessionmaker
    tokens: Tokens
    users: Users
    queue: WorkQueue
    secret: bytes  # keys the Idempotency-Key body MACs
    letters: LetterStore | None = None  # the case's letters (PDFs); None: this service shows none


def build_services(cases: Cases, engine: AsyncEngine, api: ApiSettings, secret: bytes,
                   keyring: Keyring | None = None) -> Services:
    sessions = session_factory(engine)
    if cases.identity is None:
        cases.identity = sessions  # referrals find the child's case through the identity index
    return Services(cases=cases, engine=engine, sessions=sessions, tokens=Tokens(api, secret),
                    users=Users(sessions, api), queue=WorkQueue(engine), secret=secret,
                    letters=LetterStore(sessions, keyring) if keyring is not None else None)


async def connect_services(settings: Settings, api: ApiSettings) -> Services:
    """Reach Temporal and PostgreSQL as configured (the embedded one under `ccs up`)."""
    from models.converter import load_keyring
    from starters.console import open_cases as _cases
    from starters.supervisor import database_url_for_cli

    from models.converter import EncryptionCodec
    from starters.records import Records

    cases = await _cases(settings, with_records=False)
    engine = make_engine(database_url_for_cli(settings), pool_size=10)
    keyring = load_keyring(settings)
    # One pool for the service: the case records read through it too.
    cases.records = Records(session_factory(engine), EncryptionCodec(keyring.keys, keyring.active))
    return build_services(cases, engine, api, api.secret(settings.home_dir), keyring)


def create_app(settings: Settings | None = None, api: ApiSettings | None = None, *,
               services: Services | None = None) -> FastAPI:
    """The API. Tests pass ``services``; otherwise they are connected at start-up."""
    api = api or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if services is not None:
            app.state.services = services
            yield
            return
        app.state.services = await connect_services(settings or Settings(), api)
        try:
            yield
        finally:
            await app.state.services.engine.dispose()

    app = FastAPI(title="CCS case orchestrator API", version="1", lifespan=lifespan,
                  description="California Children's Services cases: referrals, case status, actions, "
                              "work queues. Sign in (POST /api/v1/sign-in) and send the token as "
                              "`Authorization: Bearer TOKEN`. Errors are RFC 9457 problem+json.")
    if services is not None:
        app.state.services = services
    app.state.api_settings = api
    problems.install(app)
    if api.ui_origin:
        app.add_middleware(CORSMiddleware, allow_origins=[api.ui_origin], allow_credentials=True,
                           allow_methods=["GET", "POST"], allow_headers=["authorization", "content-type",
                                                                        "idempotency-key"])
    from starters.api.routes import router

    app.include_router(router, prefix="/api/v1")
    # ---- web app (issue 13) ------------------------------------------------------------
    # starters/web/routes.py, when present, exposes `router`: its pages sign people in with a
    # form and set SESSION_COOKIE (starters.api.auth) to a token from services.tokens.issue(...);
    # current_principal reads that cookie exactly like a bearer token.
    if importlib.util.find_spec("starters.web.routes") is not None:
        from starters.web.routes import router as web_router

        app.include_router(web_router)
    return app
