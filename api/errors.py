"""Every refusal is an RFC 9457 problem (`application/problem+json`): `detail` tells a person what
to do instead, and `rule` names the rule that refused the request.

One function, `problem_response`, builds every error body (and counts it by rule for GET
/metrics); each exception handler below only chooses its status, rule and sentence.
`problem_responses` declares the same bodies in the OpenAPI document.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from api import metrics
from api.schemas import Problem
from workflows.calendars import CalendarError
from workflows.entitlement import IntakeRefused

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:escalator:problem:"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

# RFC 9110's phrases where Python 3.11's `http` module still has the older ones.
_TITLES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}

# What each documented error status means anywhere in this API.
_DESCRIPTIONS = {
    400: "The body could not be parsed",
    401: "No valid API key: send `Authorization: Bearer <key>`",
    403: "The caller may not do this to this resource",
    404: "No such resource within the caller's reach",
    405: "The method is not allowed on this path",
    409: "Not possible in the resource's current state",
    413: "The request body is over 1 MiB",
    422: "The request is invalid, or a rule refused it",
    429: "Over the key's rate limit for this kind of request: retry after `Retry-After` seconds",
    503: "The database or Temporal did not answer; retry after `Retry-After` seconds",
}

# How long a client should wait before it retries after an outage answer.
RETRY_AFTER_SECONDS = 5

# What an outage of the read model or of Temporal raises (issue 17 §3). A connection that is
# refused outright surfaces as the OS's own error (asyncpg raises it unwrapped), one that the
# pool waited too long for as its timeout.
SERVICE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    ConnectionError,
    TimeoutError,
    RPCError,
)

# Temporal statuses where the request's own values were refused (an over-long id, say): the
# caller must change the request, so a retry would not help.
_CALLER_AT_FAULT = frozenset(
    {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.OUT_OF_RANGE, RPCStatusCode.FAILED_PRECONDITION}
)


class ApiError(Exception):
    """A refusal raised by a route or service; answered as a problem with this status and rule."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        rule: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.rule = rule
        self.headers = headers


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_title(status_code: int) -> str:
    return _TITLES.get(status_code) or http.client.responses.get(status_code, "Error")


def problem_response(
    status_code: int,
    detail: str,
    *,
    rule: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    """The one shape of every error answer.

    Without a rule only the HTTP status applies: the type is `about:blank` (RFC 9457 §4.2.1) and
    `rule` still names the status, so a client can always switch on `rule`.
    """
    problem = Problem(
        type=f"{PROBLEM_TYPE_PREFIX}{rule}" if rule else "about:blank",
        title=problem_title(status_code),
        status=status_code,
        detail=detail,
        rule=rule or f"http_{status_code}",
        errors=errors,
    )
    metrics.count_refusal(rule=problem.rule, status=status_code)
    return ProblemResponse(
        problem.model_dump(mode="json", exclude_none=True), status_code=status_code, headers=headers
    )


def _database_outage(exc: DBAPIError) -> bool:
    """Whether the database was unreachable, not a statement it refused (those are bugs)."""
    return (
        isinstance(exc, (OperationalError, InterfaceError))
        or exc.connection_invalidated
        or isinstance(exc.orig, (OSError, TimeoutError))
    )


def service_error_problem(exc: Exception) -> ProblemResponse | None:
    """The problem for a database or Temporal failure; None where it is a bug to surface (500).

    An outage is a 503 with Retry-After: nothing was changed that a retry would duplicate, as
    starts and updates are idempotent by workflow id and Idempotency-Key, and a claimed key
    keeps the ticket id it will be filed under.
    """
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if isinstance(exc, RPCError):
        if exc.status in _CALLER_AT_FAULT:
            return problem_response(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "The workflow service refused a value in this request (an id or a text too long, "
                "say); check the ids and lengths you sent against the API's schema.",
                rule="invalid_request",
            )
        if exc.status == RPCStatusCode.NOT_FOUND:
            return problem_response(404, "No such resource within your reach.", rule="unknown_resource")
        return problem_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"The workflow service did not answer; retry in {RETRY_AFTER_SECONDS} seconds.",
            rule="temporal_unavailable",
            headers=retry,
        )
    if isinstance(exc, DBAPIError) and not _database_outage(exc):
        return None
    return problem_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"The ticket database did not answer; retry in {RETRY_AFTER_SECONDS} seconds (a retry with "
        "the same Idempotency-Key applies its change once).",
        rule="database_unavailable",
        headers=retry,
    )


async def service_error(request: Request, exc: Exception) -> ProblemResponse:
    """The exception handler for SERVICE_ERRORS: a problem, or the exception again (a 500)."""
    problem = service_error_problem(exc)
    if problem is None:
        raise exc
    return problem


def problem_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries that document these error statuses as problems.

    Usage: `@router.get(..., responses=problem_responses(401, 404))`, or merged with others:
    `responses={200: {...}, **problem_responses(401, 403, 422)}`.
    """
    return {
        status_code: {
            # `model` puts Problem into the document's components; `install` then drops the
            # application/json entry FastAPI derives from it, since no error is sent as that.
            "model": Problem,
            "description": _DESCRIPTIONS.get(status_code, problem_title(status_code)),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
        }
        for status_code in status_codes
    }


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    kind = str(error.get("type", "invalid"))
    field = _field(tuple(error.get("loc", ())))
    message = str(error.get("msg", "is invalid"))
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known field; remove it"
    elif kind == "json_invalid":
        # The location is a character offset into the body, not a field.
        field = "body"
        message = "is not valid JSON; send a JSON object as the schema shows"
    return {"field": field, "message": message, "type": kind}


def describe_validation(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in map(_field_error, errors)) + "."


def _http_problem(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
    """FastAPI's and Starlette's own refusals, in the same shape as ours."""
    headers = getattr(exc, "headers", None)
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        detail = "The body could not be read as JSON in UTF-8; send a JSON object as the schema shows."
        return problem_response(exc.status_code, detail, rule="unparseable_body", headers=headers)
    if exc.status_code == status.HTTP_404_NOT_FOUND and "endpoint" not in request.scope:
        detail = f"No route {request.method} {request.url.path}; the API is described at /docs."
        return problem_response(exc.status_code, detail, rule="unknown_route", headers=headers)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = (headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}."
        return problem_response(exc.status_code, detail, rule="method_not_allowed", headers=headers)
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


def _document_problems_only(app: FastAPI) -> None:
    """Make the document say what the handlers send: every error body is problem+json.

    FastAPI documents a response `model` under the route's media type, application/json; this
    moves each error response with the Problem schema to application/problem+json, including
    those of a route that still declares `{"model": Problem}`.
    """
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict):
                    continue
                for status_code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    as_json = content.get("application/json", {})
                    if str(status_code)[0] in "45" and as_json.get("schema") == {"$ref": PROBLEM_SCHEMA_REF}:
                        content.setdefault(PROBLEM_MEDIA_TYPE, content.pop("application/json"))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def install(app: FastAPI) -> None:
    _document_problems_only(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> ProblemResponse:
        return problem_response(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            describe_validation(list(exc.errors())),
            rule="invalid_request",
            errors=[_field_error(e) for e in exc.errors()],
        )

    @app.exception_handler(IntakeRefused)
    async def _refused_intake(request: Request, exc: IntakeRefused) -> ProblemResponse:
        return problem_response(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.message, rule=exc.rule)

    @app.exception_handler(CalendarError)
    async def _calendar_error(request: Request, exc: CalendarError) -> ProblemResponse:
        return problem_response(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), rule="calendar")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
        return _http_problem(request, exc)

    # Database and Temporal outages: a 503 problem with Retry-After on every route (the
    # console overrides these with its own page for /console).
    for error in SERVICE_ERRORS:
        app.add_exception_handler(error, service_error)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> ProblemResponse:
        return problem_response(exc.status_code, exc.detail, rule=exc.rule, headers=exc.headers)
