from datetime import timedelta

from tests.conftest import INTAKE
from tests.helpers import CM, MC, act, referral


async def test_referral_opens_case_in_intake(ts_worker):
    env, cases = ts_worker
    status = await cases.refer(referral(), INTAKE)
    assert status.stage == "intake"
    assert status.case_id.startswith("case-")
    assert [c.icd10 for c in status.conditions] == ["E84.0"]
    status = await cases.act(status.case_id, "record_application",
                             act(CM, received_on=status.referral_date.isoformat()))
    assert status.stage == "records"
    await env.sleep(timedelta(days=8))
    status = await cases.show(status.case_id)
    assert any("/records_reminder/" in k for k in status.notices_sent)
