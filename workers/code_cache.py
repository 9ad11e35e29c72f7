"""Workflow modules compiled once per worker process, not once per workflow.

Temporal's sandbox runs every new workflow (a case started, or loaded again after leaving the
cache) in fresh copies of its modules: it imports `workflows/` afresh each time, and without
bytecode files (PYTHONDONTWRITEBYTECODE, a read-only install) each import compiles the source
again, most of the cost of a new workflow. A code object is immutable, so the sandbox's fresh
modules can all run the one compiled at the first import: isolation is unchanged (each copy
still executes in its own module namespace), and the worker keeps running the code it
started with even if the files change under it.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import PathFinder, SourceFileLoader
from types import CodeType

PACKAGES = ("workflows",)  # what the sandbox imports afresh (models/, rules/ ... are passed through)


class CachedCodeLoader(SourceFileLoader):
    codes: dict[str, CodeType] = {}  # source path -> its compiled module, for the process

    def get_code(self, fullname: str) -> CodeType:
        code = self.codes.get(self.path)
        if code is None:
            code = self.codes[self.path] = super().get_code(fullname)
        return code


class CachedCodeFinder(MetaPathFinder):
    """Finds the workflow modules as the path finder does, with the caching loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in PACKAGES:
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not SourceFileLoader:
            return None  # the next finder (an editable install's) finds it as before
        spec.loader = CachedCodeLoader(spec.loader.name, spec.loader.path)
        return spec


def install() -> None:
    """Idempotent; before the worker starts (the sandbox uses the process's finders)."""
    if not any(isinstance(f, CachedCodeFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, CachedCodeFinder())
