"""Workflows: deterministic orchestration only (no I/O, no SQLAlchemy, no clock)."""

from workflows.case import ChildCaseWorkflow

WORKFLOWS = [ChildCaseWorkflow]
