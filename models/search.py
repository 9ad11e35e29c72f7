"""The SPEC's search attributes: the names supervisors' saved queries depend on. No PHI."""

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("CcsStage")
STAGE_SINCE = SearchAttributeKey.for_datetime("CcsStageSince")
COUNTY = SearchAttributeKey.for_keyword("CcsCounty")
CASE_MANAGER = SearchAttributeKey.for_keyword("CcsCaseManager")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("CcsNextDeadline")

ALL = (STAGE, STAGE_SINCE, COUNTY, CASE_MANAGER, NEXT_DEADLINE)
