"""Handlers bound by declaration: an action's check and effect, a clock's handler, a stage's
entry, each registered with a decorator on the method that does it. A workflow reads its
table; nothing is looked up by a method's name, and tests/test_handlers.py checks that every
declared action, clock and stage has exactly one handler.

    @CASE.check("record_records")      # optional: raises InvalidAction, changes nothing
    def _check_record_records(self, a): ...

    @CASE.action("record_records")     # the step: returns the audit detail
    def _do_record_records(self, a): ...

    @CASE.clock("records_reminder")    # a deadline key (``name`` or ``name:arg``) fires it
    def _fire_records_reminder(self, arg): ...
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.handler_table import Clock, Handler, HandlerTable

__all__ = ["CASE", "Clock", "Handler", "HandlerTable"]

# The case's table: ChildCaseWorkflow and its mixins (identity, endings, condition appeals).
CASE = HandlerTable("ChildCaseWorkflow")
