"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document and checks
every answer of the real stack (app with its lifespan, worker, dev server, seeded SQLite).

Each operation gets schema-valid (positive) and schema-violating (negative) requests. Valid
requests are steered onto real data some of the time: a known customer for intake and the
catalog, and the ids of live, resolved and closed tickets for the ticket routes, so the fuzzing
reaches the workflows instead of stopping at "unknown customer" and 404. Nearly every request
carries the demo admin key, so it gets past authentication; the rest go without one, and must
get a documented answer too (a 401 on the routes that need a key).

Checks, for every request:
- no 5xx and no unhandled exception (`not_a_server_error`);
- the status code is one the operation documents (`status_code_conformance`);
- the body and its content type match the documented schema for that status
  (`response_schema_conformance`, `content_type_conformance`, `response_headers_conformance`),
  so every refusal must be the documented application/problem+json;
- a request that violates the schema is refused with a 4xx (`negative_data_rejection`).
`positive_data_acceptance` is left out on purpose: a schema-valid request may rightly be refused
by the business rules (unknown customer 422, unknown ticket 404, wrong state 409, no key 401).

Hypothesis drives generation in a worker thread; each request is sent with the stack's async
client on the session event loop, where the app and the worker live.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from runtime.settings import Settings
from store.demo_catalog import DEMO_CATALOG
from tests.fixtures_api import Stack

# The document only: building the app runs no lifespan, so nothing connects at import time.
DOCUMENT = create_app(Settings()).openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)


def _operations() -> list[APIOperation]:
    operations = []
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return sorted(operations, key=lambda operation: operation.label)


OPERATIONS = _operations()
BASE_URL = "http://api"
CUSTOMERS = [terms.customer_id for terms in DEMO_CATALOG.contracts]
# The contracts' zones plus a few with unusual offsets and DST rules.
TIMEZONES = sorted(
    {terms.timezone for terms in DEMO_CATALOG.contracts}
    | {"Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns", "Pacific/Kiritimati"}
)
# The ends of the RFC 3339 range. Generated dates are spread over 1..9999, so the fuzzer would
# meet the boundaries only now and then; a deadline must be computable (or refused) there too.
EDGE_TIMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
FUZZ_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    # The server is stateful (tickets change state as the fuzzer acts on them), so replaying a
    # stored example is not a reproduction; a failure prints its seed and a curl command instead.
    database=None,
    # The same examples on every run, so `make test` passes or fails on the code alone (a
    # random seed once found `{"payloads": [[], []]}` accepted by /codec/decode in one run of
    # two). ESCALATOR_FUZZ_EXPLORE=1 draws new examples each run, to look for more.
    derandomize=os.environ.get("ESCALATOR_FUZZ_EXPLORE") != "1",
    # No `explain` phase: it re-runs a failure many times over to annotate it, which on this
    # stack costs tens of seconds; the shrunk case and its curl command are the report.
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
# Operations that start no workflow answer in about a millisecond: they get more examples.
CHEAP_OPERATIONS = {"GET /healthz", "GET /policy", "GET /sla/deadline", "GET /tickets"}
CHEAP_EXAMPLES = 100
REQUEST_TIMEOUT = 30.0
ADMIN = {"Authorization": "Bearer dev-admin"}
# One request in ten goes without a key.
KEYS = st.sampled_from([*[ADMIN] * 9, None])

TICKET = {
    "title": "Fuzz seed",
    "description": "A ticket the fuzzer may act on",
    "severity": 2,
    "product": "audit",
    "channel": "email",
    "category": "performance",
}


def test_every_operation_is_fuzzed() -> None:
    # An operation schemathesis could not load, or skipped, would shrink the run silently.
    documented = {
        f"{method.upper()} {path}" for path, path_item in DOCUMENT["paths"].items() for method in path_item
    }
    assert {operation.label for operation in OPERATIONS} == documented
    assert len(documented) >= 29, sorted(documented)


async def _file(stack: Stack, customer_id: str, **change: Any) -> str:
    body = {**TICKET, "customer_id": customer_id, **change}
    response = await stack.http.post("/tickets", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["ticket_id"]
    return ticket_id


async def _seed_tickets(stack: Stack) -> list[str]:
    """Tickets in different states for the fuzzer to aim at."""
    live = await _file(stack, "acme")
    partner = await _file(stack, "contoso", product="partner_solution")
    resolved = await _file(stack, "globex")
    done = await stack.http.post(f"/tickets/{resolved}/resolve", json={"resolution": "fixed"}, headers=ADMIN)
    assert done.status_code == 200, done.text
    closed = await _file(stack, "initech", severity=3)
    shut = await stack.http.post(f"/tickets/{closed}/close", json={"note": "duplicate"}, headers=ADMIN)
    assert shut.status_code == 200, shut.text
    await stack.handle(closed).result()
    return [live, partner, resolved, closed]


def _strategy(operation: APIOperation) -> st.SearchStrategy[Case]:
    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    if not (operation.path_parameters or operation.query or operation.headers or operation.body):
        # Nothing to violate: GET /policy and GET /healthz take no input.
        return positive
    negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    return st.one_of(positive, negative)


def _authenticate(case: Case, key: dict[str, str] | None) -> None:
    """Send the key, positive or negative case alike: a request refused for want of a key would
    test nothing past authentication. Without one the case keeps whatever headers it has."""
    if key is not None:
        case.headers.update(key)  # case-insensitive: replaces a generated Authorization


def _aim(case: Case, steer: dict[str, str | None]) -> None:
    """Point a schema-valid case at real data; a negative case stays exactly as generated.

    Without this nearly every valid request stops at the first lookup: random customer ids
    are unknown (422), random ticket ids do not exist (404), random time zones are not IANA
    names (422). Replacing one valid string with another keeps the case valid.
    Each steer is None some of the time, so the purely generated values are sent too.
    """
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    if steer["ticket_id"] is not None and case.path_parameters and "ticket_id" in case.path_parameters:
        case.path_parameters["ticket_id"] = steer["ticket_id"]
    if steer["customer_id"] is not None and isinstance(case.body, dict) and "customer_id" in case.body:
        case.body["customer_id"] = steer["customer_id"]
    if steer["customer_id"] is not None and case.path_parameters and "customer_id" in case.path_parameters:
        case.path_parameters["customer_id"] = steer["customer_id"]
    if steer["timezone"] is not None and case.query and "timezone" in case.query:
        case.query["timezone"] = steer["timezone"]
    if steer["submitted_at"] is not None and case.query and "submitted_at" in case.query:
        case.query["submitted_at"] = steer["submitted_at"]


def _prepare(case: Case) -> requests.PreparedRequest:
    """Serialize the case exactly as schemathesis's own requests transport would send it."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    request = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    )
    return request.prepare()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation.label for operation in OPERATIONS])
async def test_api_fuzz(stack: Stack, operation: APIOperation) -> None:
    tickets = await _seed_tickets(stack) if "{ticket_id}" in operation.path else []
    loop = asyncio.get_running_loop()

    async def send(prepared: requests.PreparedRequest) -> httpx.Response:
        # Bytes, as on the wire: a generated header may hold latin-1 text httpx would not encode.
        headers = {
            name.encode("latin-1"): value.encode("latin-1") if isinstance(value, str) else value
            for name, value in prepared.headers.items()
        }
        body = prepared.body
        assert prepared.method is not None and prepared.url is not None
        assert body is None or isinstance(body, bytes | str)
        return await stack.http.request(prepared.method, prepared.url, headers=headers, content=body)

    cheap = operation.label in CHEAP_OPERATIONS

    @settings(FUZZ_SETTINGS, max_examples=CHEAP_EXAMPLES) if cheap else FUZZ_SETTINGS
    @given(
        case=_strategy(operation),
        steer=st.fixed_dictionaries(
            {
                "ticket_id": st.sampled_from(tickets) | st.none() if tickets else st.none(),
                "customer_id": st.sampled_from(CUSTOMERS) | st.none(),
                "timezone": st.sampled_from(TIMEZONES) | st.none(),
                "submitted_at": st.sampled_from([None, None, None, *EDGE_TIMES]),
            }
        ),
        key=KEYS,
    )
    def fuzz(case: Case, steer: dict[str, str | None], key: dict[str, str] | None) -> None:
        _aim(case, steer)
        _authenticate(case, key)
        prepared = _prepare(case)
        try:
            response = asyncio.run_coroutine_threadsafe(send(prepared), loop).result(REQUEST_TIMEOUT)
        except Exception as exc:
            # The in-process transport re-raises what the app did not handle; a server would answer 500.
            raise AssertionError(
                f"{operation.label} raised {exc!r} (a 500 over HTTP) for\n"
                f"{prepared.method} {prepared.url}\nheaders={dict(prepared.headers)}\nbody={prepared.body!r}"
            ) from exc
        case.validate_response(response, checks=CHECKS)

    await asyncio.to_thread(fuzz)
