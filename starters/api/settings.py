"""Settings of the HTTP API, read from the environment like the rest (models/settings.py)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = Field("127.0.0.1", validation_alias="CCS_API_HOST")
    port: int = Field(8000, validation_alias="CCS_API_PORT")
    # Signs the embedded sign-in's tokens (HS256). Generated into $CCS_HOME/api_secret if unset.
    token_secret: str | None = Field(None, validation_alias="CCS_API_SECRET")
    token_minutes: int = Field(30, ge=1, le=24 * 60, validation_alias="CCS_TOKEN_MINUTES")
    # OpenID Connect: tokens from this issuer are checked against its JWKS.
    oidc_issuer: str | None = Field(None, validation_alias="CCS_OIDC_ISSUER")
    oidc_audience: str | None = Field(None, validation_alias="CCS_OIDC_AUDIENCE")
    oidc_jwks_url: str | None = Field(None, validation_alias="CCS_OIDC_JWKS_URL")
    oidc_user_claim: str = Field("sub", validation_alias="CCS_OIDC_USER_CLAIM")
    oidc_role_claim: str = Field("ccs_role", validation_alias="CCS_OIDC_ROLE_CLAIM")
    oidc_county_claim: str = Field("ccs_county", validation_alias="CCS_OIDC_COUNTY_CLAIM")
    # Failed sign-ins allowed per user and per address within the window before a 429.
    max_failures_per_user: int = Field(5, validation_alias="CCS_SIGNIN_MAX_PER_USER")
    max_failures_per_address: int = Field(20, validation_alias="CCS_SIGNIN_MAX_PER_ADDRESS")
    failure_window_minutes: int = Field(15, validation_alias="CCS_SIGNIN_WINDOW_MINUTES")
    # The browser origin allowed by CORS (the web app or Temporal Web UI), if any.
    ui_origin: str | None = Field(None, validation_alias="CCS_UI_ORIGIN")

    def __init__(self, **values) -> None:
        values.setdefault("_env_file", os.environ.get("CCS_ENV_FILE", ".env"))
        super().__init__(**values)

    def secret(self, home: Path) -> bytes:
        """The token-signing secret: configured, or generated once and kept in ``home``."""
        if self.token_secret:
            return self.token_secret.encode()
        path = home / "api_secret"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
