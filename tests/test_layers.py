"""The layers import one way: models import no workflow, worker or starter; workers import
no starter; no module reaches into the `ccs` command's private names; one base model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def loaded_after(*modules: str) -> set[str]:
    """The project's modules a fresh interpreter has loaded after importing ``modules``."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
              "{'models', 'rules', 'activities', 'workflows', 'workers', 'starters', 'letters'})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_case_models_load_without_the_request_models():
    loaded = loaded_after("models.case")
    assert "models.case" in loaded and "models.requests" not in loaded


def test_models_and_workers_import_no_starter():
    loaded = loaded_after("models.actions", "models.request_kinds", "workers.worker", "workers.stack")
    assert "workers.stack" in loaded
    assert not {m for m in loaded if m.startswith("starters")}


def test_no_module_imports_private_names_of_the_ccs_command():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "starters").rglob("*.py")
                 if re.search(r"from starters\.cli import .*\b_\w", p.read_text())]
    assert offenders == []


def test_one_base_model():
    defined = [str(p.relative_to(ROOT)) for p in (ROOT / "models").glob("*.py")
               if re.search(r"^class _Model\(", p.read_text(), flags=re.M)]
    assert defined == []  # models/base.py: Model, and Typed for what people type
