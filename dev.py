#!/usr/bin/env python3
"""Bootstrap for a fresh machine with only Python 3.11+:

    python3 dev.py up      # the whole stack on this machine (`ccs up`)
    python3 dev.py test    # the test suite

Creates .venv and installs the project (with test extras) the first time, or when
pyproject.toml changed since; then runs the command inside it. Extra arguments pass through.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed")
    stamp = VENV / ".installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing the project and its test tools into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[test]"], check=True)
    stamp.write_text(want)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("up", "test", "ccs"):
        print(__doc__)
        return 2
    ensure_venv()
    verb, rest = sys.argv[1], sys.argv[2:]
    if verb == "test":
        cmd = [str(BIN / "python"), "-m", "pytest", *rest]
    elif verb == "up":
        cmd = [str(BIN / "ccs"), "up", *rest]
    else:
        cmd = [str(BIN / "ccs"), *rest]
    os.chdir(ROOT)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
