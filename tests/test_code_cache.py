"""The worker compiles the workflow modules once: every new workflow's sandbox runs the same
code objects in modules of its own (workers/code_cache.py)."""

from __future__ import annotations

import sys

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import _Definition

from workers import code_cache
from workers.code_cache import CachedCodeLoader
from workflows.case import ChildCaseWorkflow


async def test_new_workflows_reuse_compiled_modules_in_fresh_namespaces(monkeypatch):
    code_cache.install()
    code_cache.install()  # (idempotent: one finder)
    assert sum(isinstance(f, code_cache.CachedCodeFinder) for f in sys.meta_path) == 1
    compiled: list[str] = []
    source_to_code = CachedCodeLoader.source_to_code

    def counting(self, data, path, **kw):
        compiled.append(path)
        return source_to_code(self, data, path, **kw)

    monkeypatch.setattr(CachedCodeLoader, "source_to_code", counting)
    instances = []
    create = SandboxedWorkflowRunner.create_instance
    monkeypatch.setattr(SandboxedWorkflowRunner, "create_instance",
                        lambda self, det: instances.append(create(self, det)) or instances[-1])
    runner = SandboxedWorkflowRunner()
    defn = _Definition.must_from_class(ChildCaseWorkflow)
    runner.prepare_workflow(defn)  # a new workflow, in a new sandbox
    compiled_by_first = len(compiled)
    runner.prepare_workflow(defn)
    runner.prepare_workflow(defn)

    assert len(compiled) == compiled_by_first, "a later workflow compiled its modules again"
    assert any(p.endswith("workflows/case/workflow.py") for p in CachedCodeLoader.codes)
    # Still one sandbox each: their modules (and so their module-level state) are their own.
    a, b = (i.importer.new_modules["workflows.case.workflow"] for i in instances[1:])
    assert a is not b and a.ChildCaseWorkflow is not b.ChildCaseWorkflow
    assert a.__spec__.loader.get_code(a.__name__) is b.__spec__.loader.get_code(b.__name__)
