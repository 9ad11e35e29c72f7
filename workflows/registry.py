"""Every workflow a worker runs (and a replayer replays): the case, the workflow of each
request kind (models/request_kinds.py names its module and class), the records purge."""

from importlib import import_module

from models.request_kinds import REQUEST_KINDS
from workflows.case import ChildCaseWorkflow
from workflows.retention import RecordsPurgeWorkflow

REQUEST_WORKFLOWS = {k.workflow: getattr(import_module(k.module), k.workflow) for k in REQUEST_KINDS.values()}

WORKFLOWS = [ChildCaseWorkflow, *REQUEST_WORKFLOWS.values(), RecordsPurgeWorkflow]
