"""Workflows: deterministic orchestration only (no I/O, no SQLAlchemy, no clock).

Kept empty on purpose: the sandbox re-imports a workflow's module (and this package) for
every workflow it loads, so the registry lives in workflows/registry.py."""
