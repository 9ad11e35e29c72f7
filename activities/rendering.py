"""Where letters are laid out: a child process of the worker, so a layout (tens of ms of pure
Python) never holds the interpreter lock the workflows and the step recorder share.

One process, one letter at a time, as the worker's one rendering thread did before. It is
started on the first letter ("spawn": the worker has threads, and a forked copy of a
threaded process can deadlock), replaced if it dies (a letter it was rendering is rendered
again by the new one), and ends with the worker (concurrent.futures joins it at exit;
``shutdown`` does it sooner; a worker killed outright takes it along). Like every spawned
process it imports the worker's main module first, so a script that renders letters runs
its work under ``if __name__ == "__main__":``. Tests give ``LetterStore`` a plain function
instead, run on a thread (``RenderingThread``)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from letters.render import Letter, LetterData, render

log = logging.getLogger(__name__)


def _serve_the_worker() -> None:
    """In the rendering process: Ctrl-C reaches the whole process group, but the worker decides
    when its renderer ends; and a worker killed outright (SIGKILL) takes its renderer along
    rather than leave it waiting for letters forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True, name="worker-watch").start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # readable once the worker has exited
    os._exit(0)


class RenderingProcess:
    def __init__(self, renderer: Callable[[LetterData], Letter] = render) -> None:
        self.renderer = renderer  # a module-level function: the child imports it by name
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # stores on several event loops (tests) share one process

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_serve_the_worker)
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False)

    async def render(self, data: LetterData) -> Letter:
        """The letter, laid out in the rendering process; once more in a new process if the
        process died (killed, out of memory) under this or an earlier letter."""
        pool = self._current()
        try:
            return await asyncio.wrap_future(pool.submit(self.renderer, data))
        except BrokenProcessPool:
            log.warning("letter rendering process ended; starting a new one")
            self._replace(pool)
        return await asyncio.wrap_future(self._current().submit(self.renderer, data))

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class RenderingThread:
    """A renderer function run on one thread of this process (tests' quick letters)."""

    def __init__(self, renderer: Callable[[LetterData], Letter]) -> None:
        self.renderer = renderer
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="letters")

    async def render(self, data: LetterData) -> Letter:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self.renderer, data)


# The worker's one rendering process, shared by its letter stores.
PROCESS = RenderingProcess()
