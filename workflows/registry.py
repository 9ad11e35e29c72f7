"""Every workflow a worker runs (and a replayer replays)."""

from workflows.authorization import ServiceAuthorizationWorkflow
from workflows.case import ChildCaseWorkflow
from workflows.meals_lodging import MealsLodgingWorkflow

WORKFLOWS = [ChildCaseWorkflow, MealsLodgingWorkflow, ServiceAuthorizationWorkflow]
