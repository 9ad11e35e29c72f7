"""What a CCS service authorization request may ask for.

Outpatient drugs are not a CCS authorization: since 1 January 2022 Medi-Cal's pharmacy
benefit is administered statewide by Medi-Cal Rx, fee-for-service, and no longer by the
plans (DHCS, Medi-Cal Rx, https://www.dhcs.ca.gov/provgovpart/pharmacy/Pages/Medi-CalRX.aspx;
Kern Family Health Care, https://www.kernfamilyhealthcare.com/members/pharmacy-benefits/important-information-about-changes-in-your-pharmacy-benefit/:
"Your prescription medications are now covered by 'Medi-Cal Rx'").
"""

from __future__ import annotations

from datetime import date

from models.requests import AuthorizationRequest

MEDI_CAL_RX_SINCE = date(2022, 1, 1)


def service_problems(request: AuthorizationRequest, today: date) -> dict[str, str]:
    """Field -> what is wrong, for a request CCS cannot authorize; empty when it can."""
    if request.service_type == "pharmacy" and today >= MEDI_CAL_RX_SINCE:
        return {"service_type": "pharmacy is not a CCS service authorization: prescriptions are covered by "
                                "Medi-Cal Rx since 1 January 2022; the prescriber sends the request to Medi-Cal Rx"}
    return {}
