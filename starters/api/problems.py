"""RFC 9457 problem details: every error the API returns is application/problem+json,
with a message a person can act on and, for bad input, what was wrong field by field."""

from __future__ import annotations

import logging
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from starters.client import CcsError

log = logging.getLogger("ccs.api")
PROBLEM_JSON = "application/problem+json"
TITLES = {400: "Bad request", 401: "Not signed in", 403: "Not allowed", 404: "Not found", 405: "Method not allowed",
          406: "Not acceptable", 409: "Conflict", 422: "Invalid input", 429: "Too many attempts",
          500: "Internal error", 502: "Temporal unavailable"}


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` maps a field to what was wrong with it."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: dict[str, str] = Field(default_factory=dict)


def problem_responses(*codes: int) -> dict:
    """OpenAPI `responses` for these error codes: a Problem, as application/problem+json."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {code: {"model": Problem, "description": TITLES.get(code, "Error"),
                   "content": {PROBLEM_JSON: {"schema": ref}}} for code in codes}


class ApiProblem(Exception):
    def __init__(self, status: int, detail: str, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors or {}, headers


def problem(status: int, detail: str, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail, errors=errors or {})
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_for(error: CcsError) -> int:
    """A CcsError from the client: a missing case is 404, a closed one 409, the rest 422."""
    text = error.message
    if text.startswith(("no case ", "no request ")):
        return 404
    if text.startswith("cannot reach Temporal") or text.startswith("Temporal refused"):
        return 502
    if " is closed" in text or "does not fit a case in stage" in text or " takes no more actions" in text:
        return 409
    return 422


def _loc(loc) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "(root)"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api(_: Request, e: ApiProblem):
        return problem(e.status, e.detail, e.errors, e.headers)

    @app.exception_handler(CcsError)
    async def _ccs(_: Request, e: CcsError):
        return problem(status_for(e), e.message, e.fields)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError):
        errors = {_loc(err["loc"]): err["msg"] for err in e.errors()}
        return problem(422, "the request has invalid fields: see errors", errors)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception):
        # Exception messages may hold PHI: log the type and where it was raised, not the message.
        frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        log.error("unexpected %s in the API at %s", type(e).__name__,
                  f"{frame.filename}:{frame.lineno}" if frame else "?")
        return problem(500, f"the service failed ({type(e).__name__}); the error is logged, try again later")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException):
        return problem(e.status_code, str(e.detail), headers=getattr(e, "headers", None))
