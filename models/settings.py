"""Deployment settings, read from environment variables (and an optional env file).

With nothing configured, everything defaults to one machine: an embedded PostgreSQL
and the Temporal dev server, both kept under ``CCS_HOME``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TASK_QUEUE = "ccs-cases"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    temporal_address: str = Field("localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", validation_alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(DEFAULT_TASK_QUEUE, validation_alias="CCS_TASK_QUEUE")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    home: Path = Field(Path(".ccs"), validation_alias="CCS_HOME")
    # "kid:base64key,kid2:base64key": the first encrypts, all decrypt (rotation).
    encryption_keys: str | None = Field(None, validation_alias="CCS_ENCRYPTION_KEYS")
    # Secret that turns a child's identity into an opaque, stable case ID.
    case_id_secret: str | None = Field(None, validation_alias="CCS_CASE_ID_SECRET")
    policy_file: Path | None = Field(None, validation_alias="CCS_POLICY")
    codec_host: str = Field("127.0.0.1", validation_alias="CCS_CODEC_HOST")
    codec_port: int = Field(8081, validation_alias="CCS_CODEC_PORT")
    # Origin allowed to call the codec server from a browser (the Web UI).
    codec_cors_origin: str = Field("http://localhost:8233", validation_alias="CCS_CODEC_CORS_ORIGIN")
    temporal_ui_port: int = Field(8233, validation_alias="CCS_TEMPORAL_UI_PORT")
    notify_channel: str = Field("mailbox", validation_alias=AliasChoices("CCS_NOTIFY_CHANNEL"))
    mailbox_dir: Path | None = Field(None, validation_alias="CCS_MAILBOX_DIR")
    smtp_host: str = Field("localhost", validation_alias="CCS_SMTP_HOST")
    smtp_port: int = Field(25, validation_alias="CCS_SMTP_PORT")
    smtp_user: str | None = Field(None, validation_alias="CCS_SMTP_USER")
    smtp_password: str | None = Field(None, validation_alias="CCS_SMTP_PASSWORD")
    smtp_allow_plain: bool = Field(False, validation_alias="CCS_SMTP_ALLOW_PLAIN")
    smtp_ca_file: str | None = Field(None, validation_alias="CCS_SMTP_CA_FILE")
    mail_from: str = Field("ccs-noreply@localhost", validation_alias="CCS_MAIL_FROM")
    supervisor_email: str = Field("ccs-supervisor@localhost", validation_alias="CCS_SUPERVISOR_EMAIL")
    max_cached_workflows: int = Field(1000, validation_alias="CCS_MAX_CACHED_WORKFLOWS")
    # How long `ccs up`'s Temporal keeps a closed workflow (ISO 8601 or seconds); the case
    # record in PostgreSQL keeps the case after that.
    temporal_retention: timedelta = Field(timedelta(days=30), validation_alias="CCS_TEMPORAL_RETENTION")

    def __init__(self, **values) -> None:
        # CCS_ENV_FILE is read when settings are made, not when this module is first imported.
        values.setdefault("_env_file", os.environ.get("CCS_ENV_FILE", ".env"))
        super().__init__(**values)

    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def mailbox(self) -> Path:
        return (self.mailbox_dir or self.home_dir / "mailbox").expanduser().resolve()

    @property
    def embedded(self) -> bool:
        return not self.database_url


def load_settings(**overrides) -> Settings:
    return Settings(**overrides)
