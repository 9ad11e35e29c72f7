"""Every workflow a worker runs (and a replayer replays)."""

from workflows.authorization import ServiceAuthorizationWorkflow
from workflows.case import ChildCaseWorkflow
from workflows.grievance import GrievanceWorkflow
from workflows.meals_lodging import MealsLodgingWorkflow
from workflows.retention import RecordsPurgeWorkflow

WORKFLOWS = [ChildCaseWorkflow, MealsLodgingWorkflow, ServiceAuthorizationWorkflow, GrievanceWorkflow,
             RecordsPurgeWorkflow]
