"""The codec server lets in only signed-in people whose role reads case records, and its
CORS answers only the configured UI origin."""

from __future__ import annotations

import os
import uuid

from aiohttp.test_utils import TestClient, TestServer

from models.converter import EncryptionCodec
from starters.api.auth import Tokens
from starters.api.codec_auth import codec_authorizer
from starters.api.settings import ApiSettings
from starters.api.users import Users
from tests.test_codec import UI_ORIGIN, from_body, plain_payloads, ui_body
from workers.codec_server import codec_app


async def test_codec_server_needs_a_phi_reader(sessions):
    codec = EncryptionCodec({"k1": os.urandom(32)}, "k1")
    api = ApiSettings(CCS_API_SECRET="codec-test-secret-codec-test-secret")
    tokens, users = Tokens(api, b"codec-test-secret-codec-test-secret"), Users(sessions, api)
    run = uuid.uuid4().hex[:6]
    reader_id, gone_id = f"cm.{run}", f"cm.gone.{run}"
    for user_id in (reader_id, gone_id):
        await users.add(user_id, "case_manager", "Kern")
    plain = await plain_payloads({"child": "Quenby Codectest"})
    body = ui_body(await codec.encode(plain))
    async with TestClient(TestServer(codec_app(codec, UI_ORIGIN, codec_authorizer(tokens, users)))) as client:
        anonymous = await client.post("/decode", json=body, headers={"Origin": UI_ORIGIN})
        assert anonymous.status == 401 and "Quenby" not in await anonymous.text()
        forged = await client.post("/decode", json=body, headers={"Authorization": "Bearer not.a.token"})
        assert forged.status == 401
        auditor, _ = tokens.issue("aud.one", "auditor", None)
        r = await client.post("/decode", json=body, headers={"Authorization": f"Bearer {auditor}"})
        assert r.status == 403 and "Quenby" not in await r.text()

        reader, _ = tokens.issue(reader_id, "case_manager", "Kern")
        gone, _ = tokens.issue(gone_id, "case_manager", "Kern")
        await users.set_disabled(gone_id)
        r = await client.post("/decode", json=body, headers={"Authorization": f"Bearer {gone}"})
        assert r.status == 401 and "disabled" in await r.text() and "Quenby" not in await r.text()
        r = await client.post("/decode", json=body, headers={"Authorization": f"Bearer {reader}", "Origin": UI_ORIGIN})
        assert r.status == 200 and from_body(await r.json()) == plain
        assert r.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        client.session.cookie_jar.update_cookies({"ccs_session": reader})  # the Web UI with credentials
        assert (await client.post("/decode", json=body)).status == 200
        client.session.cookie_jar.clear()

        elsewhere = await client.post("/decode", json=body, headers={"Authorization": f"Bearer {reader}",
                                                                     "Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in elsewhere.headers
        preflight = await client.options("/decode", headers={"Origin": UI_ORIGIN,
                                                             "Access-Control-Request-Method": "POST"})
        assert preflight.status == 200 and preflight.headers["Access-Control-Allow-Credentials"] == "true"
