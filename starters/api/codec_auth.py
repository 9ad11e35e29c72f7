"""Who may use the codec server: a signed-in person whose role reads children's records
(the same tokens as the API). Auditors and administrators read no PHI."""

from __future__ import annotations

from models.settings import Settings
from starters.api.auth import Tokens
from starters.api.problems import ApiProblem
from starters.api.routes.cases import CASE_READERS
from starters.api.settings import ApiSettings


def codec_authorizer(tokens: Tokens):
    async def authorize(token: str | None) -> tuple[int, str] | None:
        if not token:
            return 401, "sign in first: send a bearer token or the web app's session cookie"
        try:
            who = await tokens.verify(token)
        except ApiProblem as e:
            return 401, e.detail
        if who.role not in CASE_READERS:
            return 403, f"a {who.role} may not read case payloads"
        return None

    return authorize


def phi_readers_only(settings: Settings, api: ApiSettings | None = None):
    api = api or ApiSettings()
    return codec_authorizer(Tokens(api, api.secret(settings.home_dir)))
