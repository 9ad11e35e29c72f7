"""Who may use the codec server: a signed-in person whose role reads children's records
(the same tokens as the API, and the same check that a local user is still enabled and has
not had the password reset since the token was issued). Auditors and administrators read no
PHI."""

from __future__ import annotations

from models.settings import Settings
from starters.api.auth import Tokens
from starters.api.users import Users
from starters.api.problems import ApiProblem
from starters.api.routes.cases import CASE_READERS
from starters.api.settings import ApiSettings


def codec_authorizer(tokens: Tokens, users: Users):
    async def authorize(token: str | None) -> tuple[int, str] | None:
        if not token:
            return 401, "sign in first: send a bearer token or the web app's session cookie"
        try:
            who = await tokens.verify(token)
        except ApiProblem as e:
            return 401, e.detail
        if who.role not in CASE_READERS:
            return 403, f"a {who.role} may not read case payloads"
        if who.local and not await users.active(who.user_id, who.issued_at):
            return 401, "this user is disabled, no longer exists, or had the password reset: sign in again"
        return None

    return authorize


def phi_readers_only(settings: Settings, sessions, api: ApiSettings | None = None):
    api = api or ApiSettings()
    return codec_authorizer(Tokens(api, api.secret(settings.home_dir)), Users(sessions, api))
