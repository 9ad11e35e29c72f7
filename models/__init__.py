"""Shapes shared by every part of the product: settings, policy, referral, case state, actions."""
