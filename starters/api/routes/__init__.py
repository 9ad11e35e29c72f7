"""Routes under /api/v1, one module per resource."""

from fastapi import APIRouter

from starters.api.routes import cases, people, records, work

router = APIRouter()
router.include_router(people.router)
router.include_router(cases.router)
router.include_router(work.router)
router.include_router(records.router)
