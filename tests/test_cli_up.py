"""The README's flow for real: `ccs up` in a subprocess (embedded PostgreSQL, the Temporal
dev server persisted to disk, codec server, worker), the `ccs` verbs against it, and a
restart that keeps every case."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
CCS = str(Path(sys.executable).parent / "ccs")



@pytest.fixture
def stack_env():
    home = Path(tempfile.mkdtemp(prefix="ccs-up-"))
    home.chmod(0o755)
    policy = home / "policy.toml"
    policy.write_text('[records]\nreminder_every = "PT2S"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCS_", "TEMPORAL_")) and k != "DATABASE_URL"}
    env.update(CCS_HOME=str(home / "data"), TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
               CCS_TEMPORAL_UI_PORT=str(free_port()), CCS_CODEC_PORT=str(free_port()), CCS_POLICY=str(policy),
               CCS_API_PORT=str(free_port()))
    yield env
    shutil.rmtree(home, ignore_errors=True)


def start(env) -> subprocess.Popen:
    proc = subprocess.Popen([CCS, "up"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            proc.startup = "".join(lines)
            return proc
    proc.kill()
    raise AssertionError("ccs up did not come up:\n" + "".join(lines))


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped" in out


def ccs(env, *args, ok=True, input=None) -> subprocess.CompletedProcess:
    result = subprocess.run([CCS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                            input=input)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_ccs_up_refer_show_act_restart(stack_env):
    env = stack_env
    proc = start(env)
    try:
        again = ccs(env, "up", ok=False)
        assert again.returncode == 2 and "already taken" in again.stderr and "Traceback" not in again.stderr

        # `ccs up` published its policy file: running cases follow it; publishing it again changes nothing.
        assert json.loads(ccs(env, "policy", "publish", "--json").stdout)["changed"] is False

        # An empty database: a first administrator, its one-time password printed once.
        assert "first administrator   user admin, one-time password " in proc.startup
        refused = ccs(env, "refer", "examples/referral.json", ok=False)
        assert refused.returncode == 2 and "ccs login" in refused.stderr
        added = json.loads(ccs(env, "user", "add", "sup.kern", "--role", "supervisor", "--county", "Kern",
                               "--json").stdout)
        bad = ccs(env, "login", "sup.kern", "--password-stdin", input="not-the-password\n", ok=False)
        assert bad.returncode == 2 and "wrong user ID or password" in bad.stderr
        ccs(env, "login", "sup.kern", "--password-stdin", input=added["password"] + "\n")

        referred = json.loads(ccs(env, "refer", "examples/referral.json", "--json").stdout)
        case_id = referred["case_id"]
        assert referred["stage"] == "intake" and case_id.startswith("case-")
        assert "Example" not in case_id and "2019" not in case_id
        status = json.loads(ccs(env, "show", case_id, "--json").stdout)
        assert status["stage"] == "intake" and status["county"] == "Kern"
        status = json.loads(ccs(env, "act", case_id, "record_application", "--data",
                                "examples/actions/record_application.json", "--json").stdout)
        assert status["stage"] == "records"
        wrong = ccs(env, "act", case_id, "record_application", "--data", "examples/actions/record_application.json",
                    ok=False)
        assert wrong.returncode == 2 and "waiting for medical records" in wrong.stderr
        for _ in range(60):  # the policy file makes records reminders come every 2 s
            status = json.loads(ccs(env, "show", case_id, "--json").stdout)
            if any("/records_reminder/" in k for k in status["notices_sent"]):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no records reminder")
        text = ccs(env, "show", case_id).stdout
        assert "waiting for     medical records" in text
        for verb in (["stuck", "--min", "0"], ["overdue", "--within", "60"], ["workload"]):
            assert isinstance(json.loads(ccs(env, *verb, "--json").stdout), dict)
        bad = ccs(env, "stuck", "--stage", "limbo", ok=False)
        assert bad.returncode == 2 and "unknown stage" in bad.stderr
        mail = list((Path(env["CCS_HOME"]) / "mailbox").glob("*.eml"))
        assert mail, "notices go to the mailbox directory by default"
    finally:
        stop(proc)

    proc = start(env)
    try:
        assert "one-time password" not in proc.startup
        status = json.loads(ccs(env, "show", case_id, "--json").stdout)
        assert status["stage"] == "records" and status["case_id"] == case_id
    finally:
        stop(proc)


def test_ccs_up_refuses_two_servers_on_one_port(stack_env):
    env = dict(stack_env, CCS_CODEC_PORT=stack_env["TEMPORAL_ADDRESS"].rpartition(":")[2])
    result = ccs(env, "up", ok=False)
    assert result.returncode == 2 and "both set to port" in result.stderr and "Traceback" not in result.stderr
    assert not (Path(env["CCS_HOME"]) / "temporal.log").exists(), "nothing started"
