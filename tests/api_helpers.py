"""Shared by the API tests: a worker and the API app in process, and a local OpenID Connect
issuer (an RSA key and its JWKS in a file: no network) that mints tokens for any person."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.notify import MailboxChannel, Notifier
from activities.storage import CaseActivities
from starters.api.app import build_services, create_app
from starters.api.settings import ApiSettings
from tests.conftest import cases_for
from workers.worker import build_worker

ISSUER = "https://login.county.example/realms/ccs"
AUDIENCE = "ccs-api"


@dataclass
class Issuer:
    key: rsa.RSAPrivateKey
    kid: str

    def token(self, sub: str = "cm.oidc", role: str | None = "case_manager", county: str | None = "Kern",
              key=None, kid: str | None = None, **claims) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300,
                "ccs_role": role, "ccs_county": county, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@contextmanager
def local_issuer():
    """An issuer whose JWKS is served on 127.0.0.1 (PyJWT fetches JWKS over HTTP only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex[:8]
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    body = json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Issuer(key, kid), f"http://127.0.0.1:{server.server_port}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def api_settings(jwks_url: str) -> ApiSettings:
    return ApiSettings(CCS_OIDC_ISSUER=ISSUER, CCS_OIDC_AUDIENCE=AUDIENCE, CCS_OIDC_JWKS_URL=jwks_url,
                       CCS_API_SECRET="test-" + os.urandom(16).hex(), CCS_SIGNIN_MAX_PER_USER=3)


@dataclass
class Api:
    http: httpx.AsyncClient
    services: object
    issuer: Issuer

    def auth(self, role: str, county: str | None = "Kern", sub: str | None = None) -> dict:
        return {"Authorization": "Bearer " + self.issuer.token(sub or f"{role}.{county or 'state'}".lower(),
                                                                 role, county)}


@pytest_asyncio.fixture(scope="module")
async def api(dev_env, engine, sessions, tmp_path_factory):
    """The API in process (httpx over ASGI) on a worker of its own task queue."""
    tmp = tmp_path_factory.mktemp("api")
    notifier = Notifier(sessions, MailboxChannel(tmp / "mailbox"), "ccs@county.example", "supervisor@county.example")
    queue = f"tq-api-{uuid.uuid4().hex[:8]}"
    cases = cases_for(dev_env, queue)
    with local_issuer() as (issuer, jwks_url):
        settings = api_settings(jwks_url)
        services = build_services(cases, engine, settings, settings.token_secret.encode())
        app = create_app(api=settings, services=services)
        async with build_worker(dev_env.client, queue, CaseActivities(sessions, notifier)):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ccs.test") as http:
                yield Api(http, services, issuer)
