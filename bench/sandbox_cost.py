"""What a new workflow costs the sandbox before its first line runs: the worker re-imports a
workflow's modules (all but the passed-through ones) for every workflow it starts or loads.
Times SandboxedWorkflowRunner.prepare_workflow (the same instance creation, with fake info)
for the case workflow and for the engine floor's, and lists the modules imported afresh.

    python -m bench.sandbox_cost --runs 200                   # as the worker runs
    python -m bench.sandbox_cost --runs 200 --no-code-cache   # compiling at every import
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import temporalio.worker.workflow_sandbox._importer as importer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import _Definition

from bench._floor import FloorWorkflow
from workers import code_cache
from workflows.case import ChildCaseWorkflow


def per_instance_ms(runner: SandboxedWorkflowRunner, cls: type, runs: int) -> float:
    defn = _Definition.must_from_class(cls)
    runner.prepare_workflow(defn)  # the first pays for the passed-through modules
    t = time.process_time()
    for _ in range(runs):
        runner.prepare_workflow(defn)
    return (time.process_time() - t) / runs * 1000


HOST = sys.modules  # the host's own (a sandbox swaps in its own while it imports)


def fresh_modules(runner: SandboxedWorkflowRunner, cls: type) -> list[str]:
    names: list[str] = []
    orig = importer.Importer._import

    def spy(self, name, globals=None, locals=None, fromlist=(), level=0):
        full = importer._resolve_module_name(name, globals, level)
        new = full not in importer.sys.modules
        mod = orig(self, name, globals, locals, fromlist, level)
        if new and full not in names and mod is not HOST.get(full):  # not passed through
            names.append(full)
        return mod

    importer.Importer._import = spy
    try:
        runner.prepare_workflow(_Definition.must_from_class(cls))
    finally:
        importer.Importer._import = orig
    return names


async def main() -> None:  # (an instance is made on a running event loop)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--no-code-cache", action="store_true", help="without workers/code_cache.py (compile per import)")
    args = p.parse_args()
    if not args.no_code_cache:
        code_cache.install()
    runner = SandboxedWorkflowRunner()
    for cls in (FloorWorkflow, ChildCaseWorkflow):
        ms = per_instance_ms(runner, cls, args.runs)
        print(f"{cls.__name__}: {ms:.2f} ms CPU per new workflow")
    print("imported afresh for each case:", ", ".join(fresh_modules(runner, ChildCaseWorkflow)))


if __name__ == "__main__":
    asyncio.run(main())
