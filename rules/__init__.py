"""The program's rules as pure functions of data and a policy: no I/O, no clock.

Workflows call them with ``workflow.now()``; tests call them directly.
"""
