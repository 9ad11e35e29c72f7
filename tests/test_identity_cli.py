"""The intake clerk's scenarios of one child, one case, as `ccs refer --json` answers them
against `ccs up` (one session for all of them: it is slow to start)."""

from __future__ import annotations

import json

from tests.helpers import referral
from tests.test_cli_up import ccs, stack_env, start, stop  # noqa: F401  (stack_env is a fixture)


def write(tmp_path, name: str, cin: str | None, first="Maria", last="Garcia", dob="2018-05-05",
          icd10="E84.0") -> str:
    data = referral(first_name=first, last_name=last, date_of_birth=dob, cin=cin)
    data["conditions"] = [{"icd10": icd10, "description": "referred condition"}]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return str(path)


def refer(env, path: str, ok=True) -> dict:
    result = ccs(env, "refer", path, "--json", ok=ok)
    return json.loads(result.stdout) | {"exit": result.returncode}


def supervisor_tasks(env, case_id: str) -> list[str]:
    status = json.loads(ccs(env, "show", case_id, "--json").stdout)
    return [t["kind"] for t in status["open_tasks"] if t["kind"].startswith("possible_duplicate")]


def sign_in(env, user: str, role: str) -> str:
    """Add a Kern user (as the operator) and sign in as them: person verbs act as who signed in."""
    added = json.loads(ccs(env, "user", "add", user, "--role", role, "--county", "Kern", "--json").stdout)
    ccs(env, "login", user, "--password-stdin", input=added["password"] + "\n")
    return added["password"]


def test_identity_scenarios_through_ccs_refer(stack_env, tmp_path):
    env = stack_env
    proc = start(env)
    try:
        supervisor = sign_in(env, "sup.kern", "supervisor")
        sign_in(env, "clerk.kern", "intake_clerk")
        first = refer(env, write(tmp_path, "maria", "91234567A"))
        assert first["identity"] == "new_case" and first["duplicate_referral"] is False
        case_id = first["case_id"]

        # Same CIN, the name as the hospital registers her: the same case, her new condition added.
        hospital = refer(env, write(tmp_path, "hospital", "91234567A", "María", "García-Lopez", icd10="Q90.9"))
        assert (hospital["case_id"], hospital["identity"], hospital["conditions_added"]) == (case_id, "same_cin", ["C2"])

        # The same referral sent twice: exit 0, the case ID, duplicate_referral.
        resent = refer(env, write(tmp_path, "hospital", "91234567A", "María", "García-Lopez", icd10="Q90.9"))
        assert resent["exit"] == 0 and resent["case_id"] == case_id and resent["duplicate_referral"] is True

        # Another child, same name and birth date, another CIN: her own case, and a supervisor task on both.
        other = refer(env, write(tmp_path, "other", "97654321B", icd10="G80.9"))
        assert other["case_id"] != case_id and other["identity"] == "possible_duplicate"
        assert other["possible_duplicate_of"] == [case_id]
        assert [c["icd10"] for c in other["status"]["conditions"]] == ["G80.9"]
        shown = json.loads(ccs(env, "show", case_id, "--json").stdout)
        assert [c["icd10"] for c in shown["conditions"]] == ["E84.0", "Q90.9"]  # nothing of hers landed here
        assert supervisor_tasks(env, other["case_id"]) == [f"possible_duplicate:{case_id}"]
        assert supervisor_tasks(env, case_id) == [f"possible_duplicate:{other['case_id']}"]

        # The supervisor decides: two children. The task closes on both cases.
        decision = tmp_path / "different.json"
        decision.write_text(json.dumps({"other_case_id": case_id}))
        clerk_tries = ccs(env, "act", other["case_id"], "confirm_different_children", "--data", str(decision),
                          ok=False)
        assert clerk_tries.returncode == 2 and "supervisor" in clerk_tries.stderr  # a clerk cannot decide
        ccs(env, "login", "sup.kern", "--password-stdin", input=supervisor + "\n")
        ccs(env, "act", other["case_id"], "confirm_different_children", "--data", str(decision), "--json")
        assert supervisor_tasks(env, other["case_id"]) == []
        assert supervisor_tasks(env, case_id) == []

        # A CIN already on a child with another birth date: refused, naming no one.
        wrong = refer(env, write(tmp_path, "wrong", "91234567A", "Rosa", "Lopez", dob="2019-01-02"), ok=False)
        assert wrong["exit"] == 2 and "different date of birth" in wrong["error"]
        assert "Maria" not in wrong["error"] and "case-" not in wrong["error"]
        text = ccs(env, "refer", write(tmp_path, "maria", "91234567A")).stdout
        assert f"case_id {case_id}" in text and "duplicate referral" in text
    finally:
        stop(proc)
