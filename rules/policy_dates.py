"""Which date's policy a request keeps (SPEC §1, meals and lodging: "rates and caps change on
dates: a request uses the values in force on its date; a clock already running keeps the value
it started with").

A request is given the values in force when it was received and keeps them for its whole life,
so its clocks (decision, receipts, the SAR's 5 working days) never move under it. A trip's caps
and rates (meals per day, lodging per night, mileage) are those in force on its first day of
travel: they price what the family spends on the road, as a mileage rate applies to the day
driven, and a trip asked for in June for July is paid at July's rates. A trip that spans a
change keeps its first day's rates for all of it (one rate a trip, as the family was told).
"""

from __future__ import annotations

from datetime import date

from models.policy import Policy

# The meals-and-lodging values that price a trip (by travel date); the rest are clocks (by receipt).
TRIP_RATES = ("meals_per_person_per_day", "lodging_per_night", "mileage_rate", "mileage_max_miles")


def request_policy(policy: Policy, received_on: date, travel_start: date | None = None) -> Policy:
    """The policy a new request keeps: in force on ``received_on``, with a trip's caps and rates
    in force on ``travel_start``."""
    at_receipt = policy.in_force(received_on)
    if travel_start is None or travel_start == received_on or not policy.changes:
        return at_receipt
    rates = policy.in_force(travel_start).meals_lodging
    trip = at_receipt.meals_lodging.model_copy(update={k: getattr(rates, k) for k in TRIP_RATES})
    return at_receipt.model_copy(update={"meals_lodging": trip})
