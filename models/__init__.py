"""Shapes shared by every part of the product: settings, policy, referral, case state, actions."""

# The case models refer to the request models and the other way round: load both, case first.
from models import case, requests  # noqa: E402,F401
