"""Processes: the worker, the codec server, and `ccs up` (the whole stack on one machine)."""
