"""Embedded users: argon2id password hashes in PostgreSQL, throttled sign-in."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from activities.tables import SignInFailureRow, UserRow
from starters.api.auth import PERSON_ROLES, USER_ID, Principal, principal_from_claims
from starters.api.problems import ApiProblem
from starters.api.settings import ApiSettings
from starters.client import CcsError

HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 12
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY = HASHER.hash(secrets.token_urlsafe(16))


def new_password() -> str:
    return secrets.token_urlsafe(15)


def check_new_user(user_id: str, role: str, county: str | None) -> Principal:
    if not USER_ID.match(user_id or ""):
        raise CcsError(f"user ID {user_id!r} is not valid: 1-64 letters, digits, . _ @ -")
    if role not in PERSON_ROLES:
        raise CcsError(f"unknown role {role!r}; roles: {', '.join(PERSON_ROLES)}")
    try:
        return principal_from_claims(user_id, role, county, local=True)
    except ApiProblem as e:
        raise CcsError(e.detail.replace("the token's", "the").replace("token", "user")) from None


class Users:
    def __init__(self, sessions, settings: ApiSettings) -> None:
        self.sessions, self.settings = sessions, settings

    async def add(self, user_id: str, role: str, county: str | None, password: str | None = None) -> str:
        """Create a user; returns the password (generated when not given)."""
        who = check_new_user(user_id, role, county)
        password = password or new_password()
        if len(password) < MIN_PASSWORD:
            raise CcsError(f"a password needs at least {MIN_PASSWORD} characters")
        async with self.sessions.begin() as s:
            inserted = await s.execute(insert(UserRow).values(
                user_id=who.user_id, role=who.role, county=who.county, password_hash=HASHER.hash(password),
                disabled=False).on_conflict_do_nothing().returning(UserRow.user_id))
            if inserted.scalar() is None:
                raise CcsError(f"user {user_id} already exists (ccs user reset-password {user_id} for a new password)")
        return password

    async def set_disabled(self, user_id: str, disabled: bool = True) -> None:
        async with self.sessions.begin() as s:
            done = await s.execute(update(UserRow).where(UserRow.user_id == user_id).values(disabled=disabled))
            if done.rowcount == 0:
                raise CcsError(f"no user {user_id}")

    async def reset_password(self, user_id: str, password: str | None = None) -> str:
        password = password or new_password()
        if len(password) < MIN_PASSWORD:
            raise CcsError(f"a password needs at least {MIN_PASSWORD} characters")
        async with self.sessions.begin() as s:
            done = await s.execute(update(UserRow).where(UserRow.user_id == user_id).values(
                password_hash=HASHER.hash(password), password_set_at=func.now()))
            if done.rowcount == 0:
                raise CcsError(f"no user {user_id}")
            await s.execute(delete(SignInFailureRow).where(SignInFailureRow.user_id == user_id))
        return password

    async def list(self) -> list[dict]:
        async with self.sessions() as s:
            rows = (await s.execute(select(UserRow).order_by(UserRow.user_id))).scalars().all()
        return [{"user_id": r.user_id, "role": r.role, "county": r.county, "disabled": r.disabled} for r in rows]

    async def count(self) -> int:
        async with self.sessions() as s:
            return (await s.execute(select(func.count()).select_from(UserRow))).scalar_one()

    async def active(self, user_id: str, issued_at: int | None = None) -> bool:
        """The user exists, is enabled, and (given a token's issue time) has not had the
        password reset since the token was issued."""
        async with self.sessions() as s:
            row = (await s.execute(select(UserRow.disabled, UserRow.password_set_at)
                                   .where(UserRow.user_id == user_id))).first()
        if row is None or row.disabled:
            return False
        return issued_at is None or issued_at >= int(row.password_set_at.timestamp())

    async def sign_in(self, user_id: str, password: str, address: str) -> Principal:
        """The user, if the password is right; throttled per user and per address."""
        s_ = self.settings
        since = datetime.now(timezone.utc) - timedelta(minutes=s_.failure_window_minutes)
        async with self.sessions() as s:
            per_user = (await s.execute(select(func.count()).where(
                SignInFailureRow.user_id == user_id[:64], SignInFailureRow.at > since))).scalar_one()
            per_address = (await s.execute(select(func.count()).where(
                SignInFailureRow.address == address[:64], SignInFailureRow.at > since))).scalar_one()
            row = (await s.execute(select(UserRow).where(UserRow.user_id == user_id[:64]))).scalar()
        if per_user >= s_.max_failures_per_user or per_address >= s_.max_failures_per_address:
            raise ApiProblem(429, f"too many failed sign-ins: wait {s_.failure_window_minutes} minutes "
                             "or ask an administrator to reset the password",
                             headers={"Retry-After": str(s_.failure_window_minutes * 60)})
        try:
            HASHER.verify(row.password_hash if row else _DUMMY, password)
            ok = row is not None and not row.disabled
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok:
            async with self.sessions.begin() as s:
                s.add(SignInFailureRow(user_id=user_id[:64], address=address[:64]))
            raise ApiProblem(401, "wrong user ID or password, or the user is disabled")
        return Principal(user_id=row.user_id, role=row.role, county=row.county, local=True)
