"""Every refusal the API can give is an RFC 9457 problem, and a body over 1 MiB is refused
before anything parses it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.types import Message, Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode

from api import errors
from api.errors import PROBLEM_MEDIA_TYPE, ApiError
from api.main import create_app
from api.middleware import MAX_BODY_BYTES
from api.schemas import Problem
from runtime.settings import Settings
from tests.fixtures_api import Stack

ADMIN = {"Authorization": "Bearer dev-admin"}
TICKET = {
    "customer_id": "acme",
    "title": "Login down",
    "description": "SSO returns 500 for every user",
    "severity": 2,
    "product": "identity",
    "channel": "email",
    "category": "incident",
}
MB_50 = 50 * 1024 * 1024


# The standard phrases (RFC 9110) a problem's `title` must carry.
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    503: "Service Unavailable",
}
JSON = {"Content-Type": "application/json"}


def assert_problem(response: httpx.Response, status: int, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert body["type"] == f"urn:escalator:problem:{rule}"
    assert (body["title"], body["status"], body["rule"]) == (TITLES[status], status, rule)
    assert body["detail"].strip()
    return body


@dataclass(frozen=True)
class Refusal:
    name: str
    status: int
    rule: str
    method: str
    path: str
    json: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    key: str | None = "dev-admin"


REFUSALS = [
    Refusal("missing_field", 422, "invalid_request", "POST", "/tickets", json={"title": "x"}),
    Refusal(
        "unknown_field", 422, "invalid_request", "POST", "/tickets", json={**TICKET, "priority": "urgent"}
    ),
    Refusal("invalid_json", 422, "invalid_request", "POST", "/tickets", content=b'{"title": ', headers=JSON),
    Refusal(
        "intake_refused", 422, "out_of_scope", "POST", "/tickets", json={**TICKET, "category": "training"}
    ),
    Refusal("unknown_route", 404, "unknown_route", "GET", "/no-such-route"),
    Refusal("unknown_ticket", 404, "unknown_ticket", "GET", "/tickets/no-such-ticket"),
    Refusal("method_not_allowed", 405, "method_not_allowed", "DELETE", "/tickets"),
    # Not UTF-8: FastAPI cannot even start to decode it as JSON.
    Refusal(
        "unparseable_body",
        400,
        "unparseable_body",
        "POST",
        "/tickets",
        content=b'{"a": "\xff"}',
        headers=JSON,
    ),
    Refusal(
        "body_too_large",
        413,
        "body_too_large",
        "POST",
        "/tickets",
        content=b"x" * (MAX_BODY_BYTES + 1),
        headers=JSON,
    ),
    Refusal("no_api_key", 401, "unauthenticated", "GET", "/tickets", key=None),
    Refusal("not_an_admin", 403, "forbidden", "GET", "/api-keys", key="dev-support"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[refusal.name for refusal in REFUSALS])
async def test_every_kind_of_refusal_is_a_problem_naming_its_rule(stack: Stack, refusal: Refusal) -> None:
    key = {"Authorization": f"Bearer {refusal.key}"} if refusal.key else {}
    response = await stack.http.request(
        refusal.method,
        refusal.path,
        json=refusal.json,
        content=refusal.content,
        headers=key | refusal.headers,
    )
    assert_problem(response, refusal.status, refusal.rule)


async def test_an_invalid_request_lists_each_field_with_its_message_and_type(stack: Stack) -> None:
    body = {key: value for key, value in TICKET.items() if key != "title"} | {"priority": "urgent"}
    response = await stack.http.post("/tickets", json=body, headers=ADMIN)
    problem = assert_problem(response, 422, "invalid_request")
    assert {(e["field"], e["type"]) for e in problem["errors"]} == {
        ("title", "missing"),
        ("priority", "extra_forbidden"),
    }
    assert "title: is required" in problem["detail"]
    assert "priority: is not a known field; remove it" in problem["detail"]


async def test_method_not_allowed_keeps_the_allow_header_and_names_it(stack: Stack) -> None:
    response = await stack.http.delete("/tickets", headers=ADMIN)
    problem = assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    assert f"use {response.headers['allow']}." in problem["detail"]


def _bare_app() -> FastAPI:
    """The error handlers alone, on routes that raise what the real routes raise only rarely."""
    app = FastAPI()
    errors.install(app)

    @app.get("/unauthenticated")
    async def unauthenticated() -> None:
        raise ApiError(
            401, "Send an API key.", rule="unauthenticated", headers={"WWW-Authenticate": "Bearer"}
        )

    @app.get("/no-rule")
    async def no_rule() -> None:
        raise ApiError(409, "Something conflicts.")

    @app.get("/temporal-down")
    async def temporal_down() -> None:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    @app.get("/temporal-refuses-a-value")
    async def temporal_refuses_a_value() -> None:
        raise RPCError("WorkflowId length exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")

    @app.get("/database-down")
    async def database_down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))

    @app.get("/database-refused-connection")
    async def database_refused_connection() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    @app.get("/database-bug")
    async def database_bug() -> None:
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    return app


async def _get_bare(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_bare_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        return await http.get(path)


async def test_an_api_error_keeps_its_headers() -> None:
    response = await _get_bare("/unauthenticated")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_api_error_without_a_rule_is_about_blank_named_by_its_status() -> None:
    response = await _get_bare("/no-rule")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Something conflicts.",
        "rule": "http_409",
    }


async def test_temporal_unavailable_is_a_503_problem_with_retry_after() -> None:
    response = await _get_bare("/temporal-down")
    assert_problem(response, 503, "temporal_unavailable")
    assert response.headers["retry-after"] == "5"


@pytest.mark.parametrize("path", ["/database-down", "/database-refused-connection"])
async def test_a_database_outage_is_a_503_problem_with_retry_after(path: str) -> None:
    response = await _get_bare(path)
    assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "5"
    assert "Connection refused" not in response.text  # nothing of the driver's own words


async def test_a_temporal_refusal_of_the_callers_values_is_a_422_not_a_500() -> None:
    response = await _get_bare("/temporal-refuses-a-value")
    assert_problem(response, 422, "invalid_request")
    assert "retry-after" not in response.headers


async def test_a_statement_the_database_refuses_is_a_bug_not_an_outage() -> None:
    # An integrity error is no outage: it must surface (a 500 and its traceback), not ask for retries.
    with pytest.raises(IntegrityError):
        await _get_bare("/database-bug")


@pytest.mark.parametrize(("action", "body"), [("comment", {"body": "hi"}), ("acknowledge", {})])
async def test_an_over_long_ticket_id_answers_as_a_missing_ticket(
    stack: Stack, action: str, body: dict[str, Any]
) -> None:
    """Temporal refuses an id over its limit (INVALID_ARGUMENT); that id names no ticket."""
    long_id, short_id = "x" * 2000, "y" * 12
    over_long = await stack.http.post(f"/tickets/{long_id}/{action}", json=body, headers=ADMIN)
    missing = await stack.http.post(f"/tickets/{short_id}/{action}", json=body, headers=ADMIN)
    shown = await stack.http.get(f"/tickets/{long_id}", headers=ADMIN)
    assert over_long.status_code == missing.status_code == shown.status_code == 404, over_long.text
    assert over_long.json() | {"detail": ""} == missing.json() | {"detail": ""}
    assert over_long.json()["rule"] == shown.json()["rule"] == "unknown_ticket"


def test_the_document_declares_every_error_response_as_problem_json_only() -> None:
    document = create_app(Settings()).openapi()
    assert "Problem" in document["components"]["schemas"]
    problem_ref = {"$ref": errors.PROBLEM_SCHEMA_REF}
    errors_seen = 0
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    errors_seen += 1
                    assert response["content"] == {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}, (
                        method,
                        path,
                        status,
                    )
            # The body limit applies before routing, so every operation can answer 413.
            assert "413" in operation["responses"], (method, path)
    assert errors_seen > 0


# The body limit on a real server: httpx's in-process transport would hand over whatever the test
# builds, so only a socket shows what the server reads of a body that keeps coming.


@dataclass
class Probe:
    """What reached the route, and how many body bytes the middleware took from the server."""

    route_calls: list[int] = field(default_factory=list)
    bytes_read: int = 0


@asynccontextmanager
async def served(probe: Probe) -> AsyncIterator[str]:
    """The real app (its middleware and handlers) on 127.0.0.1, with a route that reads its body."""
    app = create_app(Settings())

    async def echo_length(request: Request) -> dict[str, int]:
        body = await request.body()
        probe.route_calls.append(len(body))
        return {"length": len(body)}

    app.add_api_route("/probe", echo_length, methods=["POST"])

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            probe.bytes_read += len(message.get("body", b""))
            return message

        await app(scope, counted, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: a connection waits in the backlog instead of being refused.
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(counting, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@dataclass
class Upload:
    """A body produced 64 KiB at a time, counting what the client actually produced."""

    size: int
    produced: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        while self.produced < self.size:
            piece = chunk[: self.size - self.produced]
            self.produced += len(piece)
            yield piece


async def _post(base_url: str, upload: Upload, *, declare_length: bool) -> httpx.Response:
    headers = {**ADMIN, "Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(upload.size)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        return await http.post("/probe", content=upload.chunks(), headers=headers)


async def test_a_50_mb_body_with_its_length_declared_is_refused_before_a_byte_is_read() -> None:
    probe = Probe()
    async with served(probe) as base_url:
        response = await _post(base_url, Upload(MB_50), declare_length=True)
    problem = assert_problem(response, 413, "body_too_large")
    assert "52428800 bytes" in problem["detail"] and "1 MiB (1048576 bytes)" in problem["detail"]
    assert probe.route_calls == []
    assert probe.bytes_read == 0


async def test_a_50_mb_chunked_body_is_refused_once_past_1_mib_and_never_read_whole() -> None:
    probe = Probe()
    async with served(probe) as base_url:
        response = await _post(base_url, Upload(MB_50), declare_length=False)
    problem = assert_problem(response, 413, "body_too_large")
    assert "1 MiB (1048576 bytes)" in problem["detail"]
    assert probe.route_calls == []
    # Reading stopped with the message that crossed the limit; the server dropped the rest.
    assert MAX_BODY_BYTES < probe.bytes_read <= 2 * MAX_BODY_BYTES


async def test_a_chunked_body_at_the_limit_reaches_the_route_whole() -> None:
    probe = Probe()
    async with served(probe) as base_url:
        response = await _post(base_url, Upload(MAX_BODY_BYTES), declare_length=False)
    assert response.status_code == 200, response.text
    assert response.json() == {"length": MAX_BODY_BYTES}
    assert probe.route_calls == [MAX_BODY_BYTES]


async def test_the_limit_is_one_byte_past_1_mib_when_the_body_is_chunked() -> None:
    probe = Probe()
    async with served(probe) as base_url:
        response = await _post(base_url, Upload(MAX_BODY_BYTES + 1), declare_length=False)
    assert_problem(response, 413, "body_too_large")
    assert probe.route_calls == []
