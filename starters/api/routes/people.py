"""Signing in, who am I, and the users an administrator manages."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from starters.api.auth import PERSON_ROLES, Principal, current_principal, require_roles
from starters.api.problems import problem_responses

router = APIRouter(tags=["people"])
ERRORS = problem_responses(401, 403, 422)


USER_ID = r"^[A-Za-z0-9._@-]{1,64}$"


class SignIn(BaseModel):
    user_id: str = Field(pattern=USER_ID)
    password: str = Field(min_length=1, max_length=256)


class Token(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds")
    user_id: str
    role: str
    county: str | None


class Me(BaseModel):
    user_id: str
    role: str
    county: str | None


class NewUser(BaseModel):
    user_id: str = Field(pattern=USER_ID)
    role: Literal[PERSON_ROLES]  # type: ignore[valid-type]
    county: str | None = Field(None, max_length=60)


class UserOut(BaseModel):
    user_id: str
    role: str
    county: str | None
    disabled: bool


class NewPassword(BaseModel):
    user_id: str
    password: str = Field(description="shown once: give it to the person, who should keep it secret")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/sign-in", response_model=Token, responses=problem_responses(401, 422, 429))
async def sign_in(body: SignIn, request: Request) -> Token:
    """Embedded users: a user ID and password for a short-lived bearer token."""
    services = request.app.state.services
    who = await services.users.sign_in(body.user_id, body.password, client_address(request))
    token, ttl = services.tokens.issue(who.user_id, who.role, who.county)
    return Token(access_token=token, expires_in=ttl, user_id=who.user_id, role=who.role, county=who.county)


@router.get("/me", response_model=Me, responses=ERRORS)
async def me(who: Principal = Depends(current_principal)) -> Me:
    return Me(user_id=who.user_id, role=who.role, county=who.county)


@router.get("/users", response_model=list[UserOut], responses=ERRORS)
async def list_users(request: Request, _: Principal = Depends(require_roles("admin"))) -> list[UserOut]:
    return [UserOut(**u) for u in await request.app.state.services.users.list()]


@router.post("/users", response_model=NewPassword, status_code=201, responses=ERRORS)
async def add_user(body: NewUser, request: Request, _: Principal = Depends(require_roles("admin"))) -> NewPassword:
    """Administrators add a person; the answer holds their first password, once."""
    password = await request.app.state.services.users.add(body.user_id, body.role, body.county)
    return NewPassword(user_id=body.user_id, password=password)
