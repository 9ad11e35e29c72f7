"""Benchmarks (not tests): `python -m bench.<name>` from the repository root.

Each starts its own embedded PostgreSQL and Temporal server in a temporary directory,
measures, and writes its section of bench/RESULTS.md. See bench/common.py.
"""
