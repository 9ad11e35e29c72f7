"""The codec server: lets the Temporal Web UI and `temporal workflow show --codec-endpoint`
decrypt payloads for people allowed to read PHI. With an ``authorize`` callback (as `ccs up`
and `ccs codec-server` run it) every /encode and /decode needs a signed-in caller: a bearer
token or the web app's session cookie (the Web UI sends it with "include credentials")."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web
from cryptography.exceptions import InvalidTag
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec


# Given the request's bearer token or session cookie (or None): None to let the caller in,
# or (HTTP status, reason) to refuse.
Authorize = Callable[[str | None], Awaitable[tuple[int, str] | None]]


def _credential(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get("ccs_session")


def codec_app(codec: PayloadCodec, cors_origin: str | None = None,
              authorize: Authorize | None = None) -> web.Application:
    async def cors(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if cors_origin and origin == cors_origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "content-type, x-namespace, authorization"
            response.headers["Access-Control-Allow-Credentials"] = "true"

    def handler(encode: bool):
        async def handle(request: web.Request) -> web.Response:
            if authorize is not None:
                refusal = await authorize(_credential(request))
                if refusal is not None:
                    return web.json_response({"error": refusal[1]}, status=refusal[0])
            try:
                payloads = json_format.Parse(await request.read(), Payloads())
            except (json_format.ParseError, UnicodeDecodeError):  # not JSON, or not UTF-8 at all
                return web.json_response({"error": "body must be {\"payloads\": [...]}"}, status=400)
            fn = codec.encode if encode else codec.decode
            try:
                out = await fn(list(payloads.payloads))
            except (ValueError, InvalidTag) as e:  # unknown key ID, tampered data
                return web.json_response({"error": type(e).__name__}, status=400)
            body = json_format.MessageToJson(Payloads(payloads=out))
            return web.Response(text=body, content_type="application/json")

        return handle

    async def options(_: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.on_response_prepare.append(cors)
    app.router.add_route("OPTIONS", "/{tail:.*}", options)
    app.router.add_post("/encode", handler(True))
    app.router.add_post("/decode", handler(False))
    return app


async def start_codec_server(codec: PayloadCodec, host: str, port: int, cors_origin: str | None,
                             authorize: Authorize | None = None) -> web.AppRunner:
    runner = web.AppRunner(codec_app(codec, cors_origin, authorize), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
