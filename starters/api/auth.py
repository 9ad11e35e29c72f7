"""Who is calling: a bearer token (OpenID Connect, or the embedded sign-in's) or the web
app's session cookie holding the same token. After the token, one code path: its claims
become a Principal (user ID, role, county)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import get_args

import jwt
from fastapi import Depends, Request

from models.case import Role
from models.counties import find_county
from starters.api.problems import ApiProblem
from starters.api.settings import ApiSettings

LOCAL_ISSUER = "ccs-embedded"
LOCAL_AUDIENCE = "ccs-api"
SESSION_COOKIE = "ccs_session"
USER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")  # what an action's Actor accepts
PERSON_ROLES: tuple[str, ...] = tuple(r for r in get_args(Role) if r != "system")
# Roles that work within one county; the others are statewide (or hold no case at all).
COUNTY_ROLES = ("intake_clerk", "case_manager", "supervisor", "medical_consultant")


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    county: str | None  # None: statewide (state_reviewer, a statewide auditor, admin)
    local: bool = False  # an embedded user: disabling them or resetting the password ends their tokens
    issued_at: int | None = None


def refuse(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def principal_from_claims(user_id, role, county, local: bool, issued_at: int | None = None) -> Principal:
    """The same checks for both kinds of token: a known role, and a county where one is needed."""
    if not isinstance(user_id, str) or not user_id:
        raise refuse("the token names no user")
    if not USER_ID.match(user_id):
        raise refuse("the token's user ID must be 1-64 letters, digits, . _ @ - "
                     "(set CCS_OIDC_USER_CLAIM to a claim such as preferred_username)")
    if role not in PERSON_ROLES:
        raise refuse(f"the token's role {role!r} is not one of: {', '.join(PERSON_ROLES)}")
    if county is not None:
        found = find_county(county) if isinstance(county, str) else None
        if found is None:
            raise refuse(f"the token's county {county!r} is not a California county")
        county = found.name
    if role in COUNTY_ROLES and county is None:
        raise refuse(f"a {role} token must name a county")
    if role in ("state_reviewer", "admin"):
        county = None
    return Principal(user_id=user_id, role=role, county=county, local=local, issued_at=issued_at)


class Tokens:
    """Issues the embedded sign-in's tokens and checks every bearer token."""

    def __init__(self, settings: ApiSettings, secret: bytes) -> None:
        self.settings, self.secret = settings, secret
        self._jwks = jwt.PyJWKClient(settings.oidc_jwks_url, cache_keys=True) if settings.oidc_jwks_url else None

    def issue(self, user_id: str, role: str, county: str | None) -> tuple[str, int]:
        now = int(time.time())
        ttl = self.settings.token_minutes * 60
        claims = {"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": user_id, "role": role, "county": county,
                  "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.secret, algorithm="HS256"), ttl

    async def verify(self, token: str) -> Principal:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise refuse("the token is not a JWT") from None
        s = self.settings
        try:
            if issuer == LOCAL_ISSUER:
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], audience=LOCAL_AUDIENCE,
                                    issuer=LOCAL_ISSUER, options={"require": ["exp", "iat", "sub"]})
                return principal_from_claims(claims["sub"], claims.get("role"), claims.get("county"), local=True,
                                             issued_at=claims["iat"])
            if s.oidc_issuer and self._jwks and issuer == s.oidc_issuer:
                key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                claims = jwt.decode(token, key.key, algorithms=["RS256", "ES256", "PS256"],
                                    audience=s.oidc_audience, issuer=s.oidc_issuer,
                                    options={"require": ["exp", "iat"], "verify_aud": s.oidc_audience is not None})
                return principal_from_claims(claims.get(s.oidc_user_claim), claims.get(s.oidc_role_claim),
                                             claims.get(s.oidc_county_claim), local=False)
        except jwt.ExpiredSignatureError:
            raise refuse("the token has expired: sign in again") from None
        except jwt.InvalidAudienceError:
            raise refuse("the token is for another audience") from None
        except jwt.MissingRequiredClaimError as e:
            raise refuse(f"the token lacks the {e.claim!r} claim") from None
        except jwt.PyJWKClientError:
            raise refuse("the token's signing key is not in the issuer's JWKS") from None
        except jwt.PyJWTError:
            raise refuse("the token's signature or claims are invalid") from None
        raise refuse("the token is from an issuer this service does not trust")


def bearer_or_cookie(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated person, or 401."""
    token = bearer_or_cookie(request)
    if not token:
        raise refuse("sign in first: send `Authorization: Bearer TOKEN` (POST /api/v1/sign-in gives one)")
    services = request.app.state.services
    who = await services.tokens.verify(token)
    if who.local and not await services.users.active(who.user_id, who.issued_at):
        raise refuse("this user is disabled, no longer exists, or had the password reset: sign in again")
    request.state.principal = who
    return who


def require_roles(*roles: str):
    """A dependency that lets only these roles through (403 otherwise)."""

    async def check(who: Principal = Depends(current_principal)) -> Principal:
        if who.role not in roles:
            raise ApiProblem(403, f"this needs one of the roles: {', '.join(roles)} (you are {who.role})")
        return who

    return check
