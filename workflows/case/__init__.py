"""The case: ChildCaseWorkflow (workflow.py) and its rules by concern, each a mixin of it:
actions.py, stages.py (the stage machine), clocks.py, requests.py."""

from workflows.case.workflow import ChildCaseWorkflow

__all__ = ["ChildCaseWorkflow"]
