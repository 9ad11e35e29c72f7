"""Reimbursement payments: one row per meals-and-lodging request, written once ever."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.tables import PaymentRow
from models.requests import PaymentInput


class PaymentActivities:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions

    @activity.defn(name="pay_reimbursement")
    async def pay_reimbursement(self, inp: PaymentInput) -> Decimal:
        """Record the payment of a request; return the amount on record.

        Keyed by request: a retry, or a second call with another amount, pays nothing more
        and returns what was paid the first time."""
        if inp.amount <= 0 or inp.amount != inp.amount.quantize(Decimal("0.01")):
            # Bad input does not get better on retry.
            raise ApplicationError(f"a payment must be a positive amount in cents, not {inp.amount}",
                                   type="InvalidPayment", non_retryable=True)
        async with self.sessions.begin() as session:
            paid = (await session.execute(
                insert(PaymentRow).values(request_id=inp.request_id, case_id=inp.case_id, amount=inp.amount)
                .on_conflict_do_nothing(index_elements=["request_id"]).returning(PaymentRow.amount)
            )).scalar_one_or_none()
            if paid is None:
                paid = (await session.execute(
                    select(PaymentRow.amount).where(PaymentRow.request_id == inp.request_id))).scalar_one()
                activity.logger.info("payment for %s already recorded", inp.request_id)
        return paid
