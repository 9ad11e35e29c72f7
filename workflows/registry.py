"""Every workflow a worker runs (and a replayer replays)."""

from models.request_kinds import REQUEST_KINDS
from workflows.authorization import ServiceAuthorizationWorkflow
from workflows.case import ChildCaseWorkflow
from workflows.grievance import GrievanceWorkflow
from workflows.meals_lodging import MealsLodgingWorkflow
from workflows.retention import RecordsPurgeWorkflow

# One workflow per request kind (models/request_kinds.py), by the workflow type the kind names.
REQUEST_WORKFLOWS = {w.__name__: w for w in (MealsLodgingWorkflow, ServiceAuthorizationWorkflow, GrievanceWorkflow)}
assert set(REQUEST_WORKFLOWS) == {k.workflow for k in REQUEST_KINDS.values()}, "a request kind without its workflow"

WORKFLOWS = [ChildCaseWorkflow, *REQUEST_WORKFLOWS.values(), RecordsPurgeWorkflow]
