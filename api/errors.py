"""Every refusal is a 4xx whose `detail` tells a person what to do instead."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from workflows.calendars import CalendarError
from workflows.entitlement import IntakeRefused
from workflows.machine import RefusalKind


class ApiError(Exception):
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


REFUSAL_STATUS = {
    RefusalKind.CONFLICT.value: status.HTTP_409_CONFLICT,
    RefusalKind.INVALID.value: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def describe_validation(errors: list[dict[str, Any]]) -> str:
    sentences = []
    for error in errors:
        message = error.get("msg", "is invalid")
        if error.get("type") == "missing":
            message = "is required"
        elif error.get("type") == "extra_forbidden":
            message = "is not a known field; remove it"
        sentences.append(f"{_field(tuple(error.get('loc', ())))}: {message}")
    return "; ".join(sentences) + "."


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={
                "detail": describe_validation(list(exc.errors())),
                "rule": "invalid_request",
                "errors": errors,
            },
        )

    @app.exception_handler(IntakeRefused)
    async def _refused_intake(request: Request, exc: IntakeRefused) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": exc.message, "rule": exc.rule},
        )

    @app.exception_handler(CalendarError)
    async def _calendar_error(request: Request, exc: CalendarError) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": str(exc), "rule": "calendar"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own errors (unparseable body, unknown route) in the same shape as ours.
        detail = exc.detail
        if exc.status_code == status.HTTP_400_BAD_REQUEST:
            detail = "The body is not valid JSON in UTF-8; send a JSON object as the schema shows."
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": str(detail), "rule": "http"},
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RPCError)
    async def _temporal_unavailable(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise exc
        # Nothing was changed that a retry would duplicate: starts and updates are idempotent
        # by workflow id and Idempotency-Key.
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={
                "detail": "The workflow service did not answer in time; retry in a few seconds.",
                "rule": "temporal_unavailable",
            },
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail, "rule": exc.rule}, headers=exc.headers
        )
