"""Workflows: deterministic orchestration only (no I/O, no SQLAlchemy, no clock)."""

from workflows.authorization import ServiceAuthorizationWorkflow
from workflows.case import ChildCaseWorkflow
from workflows.meals_lodging import MealsLodgingWorkflow

WORKFLOWS = [ChildCaseWorkflow, MealsLodgingWorkflow, ServiceAuthorizationWorkflow]
