"""Settings: one machine with no configuration, environment overrides, an optional env
file, and nothing read from environment variables that merely share a field's name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.settings import DEFAULT_TASK_QUEUE, Settings, load_settings


@pytest.fixture
def bare_env(monkeypatch, tmp_path) -> Path:
    """No CCS_*, TEMPORAL_* or DATABASE_URL variables; the working directory is empty."""
    for name in list(os.environ):
        if name.startswith(("CCS_", "TEMPORAL_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_configuration_means_one_machine(bare_env):
    s = load_settings()
    assert s.task_queue == DEFAULT_TASK_QUEUE == "ccs-cases"
    assert s.temporal_address == "localhost:7233"
    assert s.temporal_namespace == "default"
    assert s.database_url is None
    assert s.embedded is True
    assert s.home == Path(".ccs")
    assert s.home_dir == (bare_env / ".ccs").resolve()
    assert s.mailbox == (bare_env / ".ccs" / "mailbox").resolve()
    assert s.notify_channel == "mailbox"
    assert s.encryption_keys is None and s.case_id_secret is None
    assert s.policy_file is None


def test_environment_overrides(bare_env, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.prod:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "ccs")
    monkeypatch.setenv("CCS_TASK_QUEUE", "ccs-kern")
    monkeypatch.setenv("DATABASE_URL", "postgresql://ccs@db/ccs")
    monkeypatch.setenv("CCS_HOME", str(bare_env / "data"))
    monkeypatch.setenv("CCS_POLICY", "/etc/ccs/policy.toml")
    monkeypatch.setenv("CCS_NOTIFY_CHANNEL", "smtp")
    monkeypatch.setenv("CCS_SMTP_PORT", "2525")
    s = Settings()
    assert s.temporal_address == "temporal.prod:7233"
    assert s.temporal_namespace == "ccs"
    assert s.task_queue == "ccs-kern"
    assert s.database_url == "postgresql://ccs@db/ccs"
    assert s.embedded is False
    assert s.home_dir == (bare_env / "data").resolve()
    assert s.policy_file == Path("/etc/ccs/policy.toml")
    assert s.notify_channel == "smtp"
    assert s.smtp_port == 2525


def test_env_file_named_by_ccs_env_file_is_read(bare_env, monkeypatch):
    env_file = bare_env / "conf" / "ccs.env"
    env_file.parent.mkdir()
    env_file.write_text("CCS_TASK_QUEUE=from-file\nTEMPORAL_NAMESPACE=file-ns\nCCS_SMTP_PORT=2526\n")
    monkeypatch.setenv("CCS_ENV_FILE", str(env_file))
    s = Settings()
    assert (s.task_queue, s.temporal_namespace, s.smtp_port) == ("from-file", "file-ns", 2526)
    # A real environment variable wins over the file.
    monkeypatch.setenv("CCS_TASK_QUEUE", "from-env")
    assert Settings().task_queue == "from-env"


def test_dot_env_in_working_directory_is_the_default_file(bare_env):
    (bare_env / ".env").write_text("CCS_TASK_QUEUE=from-dot-env\n")
    assert Settings().task_queue == "from-dot-env"


def test_unrelated_variables_named_like_fields_are_ignored(bare_env, monkeypatch):
    # HOME once set the data directory to the user's home: it must not.
    monkeypatch.setenv("HOME", str(bare_env / "somebody"))
    for name, value in {"home": "/nope", "task_queue": "nope", "TASK_QUEUE": "nope",
                        "database_url_x": "x", "SMTP_PORT": "1", "smtp_port": "1",
                        "MAIL_FROM": "x@y", "ENCRYPTION_KEYS": "k:AAAA", "NOTIFY_CHANNEL": "smtp"}.items():
        monkeypatch.setenv(name, value)
    (bare_env / ".env").write_text("HOME=/from-file\nhome=/from-file\nTASK_QUEUE=nope\n")
    s = Settings()
    assert s.home == Path(".ccs")
    assert s.home_dir == (bare_env / ".ccs").resolve()
    assert s.task_queue == "ccs-cases"
    assert s.smtp_port == 25
    assert s.mail_from == "ccs-noreply@localhost"
    assert s.encryption_keys is None
    assert s.notify_channel == "mailbox"


def test_bad_value_names_the_variable(bare_env, monkeypatch):
    monkeypatch.setenv("CCS_SMTP_PORT", "twenty-five")
    with pytest.raises(ValueError, match="CCS_SMTP_PORT"):
        Settings()
