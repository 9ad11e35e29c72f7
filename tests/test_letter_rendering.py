"""The worker's letter rendering process ends with the worker, even one killed outright
(SIGKILL gives it no chance to shut its pool down): no renderer is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

WORKER = """
import asyncio, os, signal
from activities.rendering import RenderingProcess
from letters.samples import sample
from tests.helpers import quick_letter

async def main():
    process = RenderingProcess(quick_letter)
    await process.render(sample("case_open"))
    print(*process._pool._processes, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it has ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_worker_killed_outright_takes_its_rendering_process_along(tmp_path):
    root = Path(__file__).resolve().parent.parent
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:  # files: a renderer left behind would hold a pipe open
        worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=root, stdout=stdout, stderr=stderr)
        assert worker.wait(timeout=60) == -signal.SIGKILL, err.read_text()
    [renderer] = [int(pid) for pid in out.read_text().split()]
    deadline = time.monotonic() + 10
    while alive(renderer) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive(renderer)
    if left:
        psutil.Process(renderer).kill()
    assert not left, "the rendering process outlived its worker"
