"""DESIGN.md §11, cell by cell: every ticket endpoint x every principal x own and foreign tickets.

The expected table below is written out by hand, independently of workflows/permissions.py,
so a wrong cell in the code fails its own test here. For every refused cell the test also
proves that nothing changed: the workflow's state is the same and its history holds no
accepted update. For every allowed cell it proves the action happened, in the caller's name.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType

import policies
from api.console.queue import PAGE_SIZE
from api.console.session import SESSION_COOKIE, csrf_token_for
from tests.fixtures_api import (
    Stack,
    actor_of,
    assert_nothing_filed,
    console_session_id,
    record_written,
    recorded_timeline,
    settled_state,
    wait_for_event,
    wait_until_recorded,
)
from tests.incident_support import page_the_incident
from workflows.policy import POLICY_VERSION

ADMIN, SUPPORT, PARTNER, CUSTOMER = "dev-admin", "dev-support", "dev-partner-northwind", "dev-customer-acme"
PRINCIPALS = (ADMIN, SUPPORT, PARTNER, CUSTOMER)
# Each demo key's actor is `role:name (key id)`; the id is the seeded key's (issue 17 §4).
ACTOR_NAME = {
    ADMIN: "admin:dev-admin",
    SUPPORT: "support:dev-support",
    PARTNER: "partner:northwind",
    CUSTOMER: "customer:acme",
}
# A ticket within reach of each principal, and one outside it (admin and support reach all).
OWN = {ADMIN: "acme", SUPPORT: "acme", PARTNER: "contoso", CUSTOMER: "acme"}
FOREIGN = {PARTNER: "acme", CUSTOMER: "contoso"}

OK, FORBIDDEN, NOT_FOUND = 200, 403, 404


def ticket_body(customer: str) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "title": "Audit export fails",
        "description": "The nightly export stops at 80%",
        "severity": 3,
        "product": "partner_solution" if customer == "contoso" else "audit",
        "channel": "email",
        "category": "bug",
    }


@dataclass(frozen=True)
class Cell:
    """One action row: its body, the steps that bring a ticket to a state where it applies,
    the event it records when allowed, and the expected status for each principal."""

    action: str
    body: dict[str, Any]
    expected: dict[str, int]
    event: str
    setup: tuple[tuple[str, dict[str, Any]], ...] = ()
    # Which customer's ticket each principal acts on, where it is not OWN.
    customer: dict[str, str] = field(default_factory=dict)


PARTNER_TICKET = {ADMIN: "contoso", SUPPORT: "contoso", PARTNER: "contoso"}
HANDOFF = ("handoff", {"category": "platform_bug"})

# An outage that began an hour ago and is over: an outage time is never in the future.
_NOW = datetime.now(UTC).replace(microsecond=0)
RECENT_OUTAGE = ((_NOW - timedelta(hours=1)).isoformat(), (_NOW - timedelta(minutes=10)).isoformat())

# The permission table of DESIGN.md §11, for tickets within reach.
CELLS = [
    Cell("acknowledge", {}, {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN}, "acknowledged"),
    Cell("comment", {"body": "Any news?"}, dict.fromkeys(PRINCIPALS, OK), "commented"),
    Cell(
        "comment",
        {"body": "Looks like the export job", "public": False},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN},
        "commented",
    ),
    Cell(
        "escalate",
        {"level": 2, "trigger": "requires_technical_expertise"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: FORBIDDEN, CUSTOMER: FORBIDDEN},
        "escalated",
    ),
    Cell(
        "handoff",
        {"category": "platform_bug"},
        {ADMIN: OK, SUPPORT: FORBIDDEN, PARTNER: OK, CUSTOMER: FORBIDDEN},
        "handed_off",
        customer=PARTNER_TICKET,
    ),
    Cell(
        "handback",
        {"note": "Patched in 4.2.1"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: FORBIDDEN},
        "handed_back",
        setup=(HANDOFF,),
        customer=PARTNER_TICKET,
    ),
    # A customer's own ticket is no partner's: the permission is refused before the state.
    Cell("handback", {"note": "Patched in 4.2.1"}, {CUSTOMER: FORBIDDEN}, "handed_back"),
    Cell(
        "change-severity",
        {"severity": 2, "reason": "More users affected"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN},
        "severity_changed",
    ),
    Cell(
        "wait-on-customer",
        {"note": "Which region?"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN},
        "waiting_on_customer",
    ),
    Cell(
        "resume",
        {"note": "EU"},
        dict.fromkeys(PRINCIPALS, OK),
        "resumed",
        setup=(("wait-on-customer", {}),),
    ),
    Cell(
        "resolve",
        {"resolution": "Fixed the export job"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN},
        "resolved",
    ),
    # Support resolves only ConnectSoft's own tickets; the partner resolves with its customer.
    Cell(
        "resolve",
        {"resolution": "Fixed the export job"},
        {ADMIN: OK, SUPPORT: FORBIDDEN, PARTNER: OK},
        "resolved",
        customer=PARTNER_TICKET,
    ),
    # While ConnectSoft owns a partner ticket (DESIGN.md §6): the partner may comment, raise the
    # severity and close with a reason; lowering the severity and resolving are ConnectSoft's.
    Cell(
        "comment",
        {"body": "The customer asks for news"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK},
        "commented",
        setup=(HANDOFF,),
        customer=PARTNER_TICKET,
    ),
    Cell(
        "change-severity",
        {"severity": 2, "reason": "More users affected"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK},
        "severity_changed",
        setup=(HANDOFF,),
        customer=PARTNER_TICKET,
    ),
    Cell(
        "change-severity",
        {"severity": 4, "reason": "A workaround helps"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: FORBIDDEN},
        "severity_changed",
        setup=(HANDOFF,),
        customer=PARTNER_TICKET,
    ),
    Cell(
        "resolve",
        {"resolution": "Fixed the export job"},
        {ADMIN: OK, SUPPORT: FORBIDDEN, PARTNER: FORBIDDEN},
        "resolved",
        setup=(HANDOFF,),
        customer=PARTNER_TICKET,
    ),
    Cell(
        "close",
        {"note": "The customer withdrew it"},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK},
        "closed",
        setup=(HANDOFF,),
        customer=PARTNER_TICKET,
    ),
    Cell("close", {}, {PARTNER: FORBIDDEN}, "closed", setup=(HANDOFF,), customer=PARTNER_TICKET),
    Cell(
        "reopen",
        {"reason": "It failed again"},
        dict.fromkeys(PRINCIPALS, OK),
        "reopened",
        setup=(("resolve", {"resolution": "Fixed"}),),
    ),
    Cell("close", {"note": "No longer needed"}, dict.fromkeys(PRINCIPALS, OK), "closed"),
    Cell(
        "outage",
        # Within the bounds (workflows/outages.py): began after the ticket's 30-day floor, ended.
        {"started_at": RECENT_OUTAGE[0], "ended_at": RECENT_OUTAGE[1]},
        {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN},
        "outage_recorded",
        setup=(("change-severity", {"severity": 1, "reason": "Everyone is down"}),),
    ),
]
CASES = [(cell, who) for cell in CELLS for who in cell.expected]


def case_id(case: tuple[Cell, str]) -> str:
    cell, who = case
    customer = cell.customer.get(who, OWN[who])
    private = "-internal" if cell.body.get("public") is False else ""
    severity = f"-to-sev{cell.body['severity']}" if "severity" in cell.body else ""
    reason = "" if cell.action != "close" or cell.body else "-without-reason"
    after = "".join(f"-after-{action}" for action, _ in cell.setup)
    return f"{cell.action}{private}{severity}{reason}-{who}-on-{customer}{after}"


async def file_ticket(stack: Stack, customer: str) -> str:
    response = await stack.http.post("/tickets", json=ticket_body(customer), headers=stack.as_(ADMIN))
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["ticket_id"]
    return ticket_id


async def unchanged_proof(stack: Stack, ticket_id: str) -> tuple[dict[str, Any], list[int]]:
    state = await settled_state(stack, ticket_id)
    history = await stack.handle(ticket_id).fetch_history()
    accepted = [
        e.event_id
        for e in history.events
        if e.event_type
        in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        )
    ]
    return state, accepted


def missing_ticket_id() -> str:
    # The shape of a real id (12 hex digits), so only existence can differ.
    return uuid.uuid4().hex[:12]


def answer(response: httpx.Response, *, ticket_id: str = "", as_id: str = "") -> tuple[int, str, Any]:
    """Status, media type and body; with `ticket_id`, the body as if it named `as_id` instead.

    A foreign ticket's answer, its id swapped for a missing ticket's, must equal the missing
    ticket's answer exactly (issue 17 §2).
    """
    media_type = response.headers.get("content-type", "")
    text = response.text.replace(ticket_id, as_id) if ticket_id else response.text
    return response.status_code, media_type, json.loads(text) if media_type.endswith("json") else text


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
async def test_action_on_a_ticket_within_reach(module_stack: Stack, case: tuple[Cell, str]) -> None:
    cell, who = case
    stack = module_stack
    ticket_id = await file_ticket(stack, cell.customer.get(who, OWN[who]))
    for action, body in cell.setup:
        prepared = await stack.http.post(
            f"/tickets/{ticket_id}/{action}", json=body, headers=stack.as_(ADMIN)
        )
        assert prepared.status_code == 200, prepared.text
    before = await unchanged_proof(stack, ticket_id)

    response = await stack.http.post(
        f"/tickets/{ticket_id}/{cell.action}", json=cell.body, headers=stack.as_(who)
    )

    expected = cell.expected[who]
    assert response.status_code == expected, response.text
    if expected == OK:
        last = (await recorded_timeline(stack, ticket_id))[-1]
        actor = await actor_of(stack, who)
        assert actor.startswith(f"{ACTOR_NAME[who]} (key_")
        assert (last.kind, last.actor) == (cell.event, actor)
    else:
        problem = response.json()
        assert problem["status"] == expected and problem["detail"].endswith(".")
        assert await unchanged_proof(stack, ticket_id) == before


# Support escalates at most one level above its own; `critical_production_incident` goes
# straight to any entitled level; admins go to any entitled level (DESIGN.md §5, §11).
ESCALATIONS = [
    (1, {"level": 2, "trigger": "requires_technical_expertise"}, OK),
    (1, {"level": 3, "trigger": "requires_engineering"}, FORBIDDEN),
    (1, {"level": 4, "trigger": "business_critical_problem"}, FORBIDDEN),
    (1, {"level": 4, "trigger": "critical_production_incident"}, OK),
    (2, {"level": 4, "trigger": "strategic_issue"}, FORBIDDEN),
    (3, {"level": 4, "trigger": "strategic_issue"}, OK),
    (None, {"level": 4, "trigger": "business_critical_problem"}, OK),
]


@pytest.mark.parametrize(
    ("level", "body", "expected"),
    ESCALATIONS,
    ids=[f"L{level or 'admin'}-to-L{body['level']}-{body['trigger']}" for level, body, _ in ESCALATIONS],
)
async def test_support_escalates_at_most_one_level_above_its_own(
    module_stack: Stack, level: int | None, body: dict[str, Any], expected: int
) -> None:
    stack = module_stack
    if level is None:
        secret, actor = ADMIN, await actor_of(stack, ADMIN)
    else:
        name = f"l{level}-{uuid.uuid4().hex[:6]}"
        created = await stack.http.post(
            "/api-keys", json={"name": name, "role": "support", "level": level}, headers=stack.as_(ADMIN)
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        actor = f"support:{name} ({created.json()['id']})"
    ticket_id = await file_ticket(stack, "acme")
    before = await unchanged_proof(stack, ticket_id)

    response = await stack.http.post(f"/tickets/{ticket_id}/escalate", json=body, headers=stack.as_(secret))

    assert response.status_code == expected, response.text
    if expected == OK:
        last = (await recorded_timeline(stack, ticket_id))[-1]
        assert (last.kind, last.actor) == ("escalated", actor)
    else:
        problem = response.json()
        assert problem["status"] == FORBIDDEN and f"escalates at most to L{level + 1}" in problem["detail"]
        assert await unchanged_proof(stack, ticket_id) == before


# A foreign ticket answers the same whatever its state: one row per action (and note kind).
_FOREIGN_CELLS = {(cell.action, cell.body.get("public")): cell for cell in reversed(CELLS)}.values()
FOREIGN_CASES = [(cell, who) for cell in reversed(list(_FOREIGN_CELLS)) for who in FOREIGN]


@pytest.mark.parametrize("case", FOREIGN_CASES, ids=[f"{c.action}-{who}-foreign" for c, who in FOREIGN_CASES])
async def test_every_action_on_a_foreign_ticket_is_not_found(
    module_stack: Stack, case: tuple[Cell, str]
) -> None:
    cell, who = case
    stack = module_stack
    ticket_id = await file_ticket(stack, FOREIGN[who])
    before = await unchanged_proof(stack, ticket_id)

    response = await stack.http.post(
        f"/tickets/{ticket_id}/{cell.action}", json=cell.body, headers=stack.as_(who)
    )
    missing_id = missing_ticket_id()
    missing = await stack.http.post(
        f"/tickets/{missing_id}/{cell.action}", json=cell.body, headers=stack.as_(who)
    )

    assert response.status_code == missing.status_code == NOT_FOUND, response.text
    # Byte for byte what a ticket that does not exist answers (status, type, title, detail,
    # rule), but for its id.
    assert answer(response, ticket_id=ticket_id, as_id=missing_id) == answer(missing)
    assert await unchanged_proof(stack, ticket_id) == before


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_reads_answer_within_reach_and_404_outside_it(module_stack: Stack, who: str) -> None:
    stack = module_stack
    own = await file_ticket(stack, OWN[who])
    foreign = await file_ticket(stack, FOREIGN[who]) if who in FOREIGN else None
    for ticket_id in filter(None, (own, foreign)):
        await wait_for_event(stack.handle(ticket_id), record_written())

    headers = stack.as_(who)
    assert (await stack.http.get(f"/tickets/{own}", headers=headers)).status_code == OK
    assert (await stack.http.get(f"/tickets/{own}/timeline", headers=headers)).status_code == OK
    listed = (await stack.http.get("/tickets", params={"limit": 200}, headers=headers)).json()
    listed_ids = {item["ticket_id"] for item in listed["items"]}
    assert own in listed_ids
    if foreign is not None:
        missing = missing_ticket_id()
        for path in ("/tickets/{id}", "/tickets/{id}/timeline", "/tickets/{id}/notifications"):
            hidden = await stack.http.get(path.format(id=foreign), headers=headers)
            absent = await stack.http.get(path.format(id=missing), headers=headers)
            assert hidden.status_code == NOT_FOUND, (path, hidden.text)
            assert answer(hidden, ticket_id=foreign, as_id=missing) == answer(absent), path
        assert foreign not in listed_ids
        # Not even by asking for that customer by name.
        by_name = await stack.http.get("/tickets", params={"customer_id": FOREIGN[who]}, headers=headers)
        assert by_name.json()["items"] == [] and by_name.json()["total"] == 0
        # Every row listed is within reach.
        assert all(item["customer_id"] == OWN[who] for item in listed["items"])


# Delivery records (issue 9): ConnectSoft's support lines only; a foreign ticket is still a 404.
NOTIFICATION_READS = {ADMIN: OK, SUPPORT: OK, PARTNER: FORBIDDEN, CUSTOMER: FORBIDDEN}


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_delivery_records_are_for_admins_and_support_and_404_outside_reach(
    module_stack: Stack, who: str
) -> None:
    stack = module_stack
    own = await file_ticket(stack, OWN[who])
    await wait_for_event(stack.handle(own), record_written())
    response = await stack.http.get(f"/tickets/{own}/notifications", headers=stack.as_(who))
    assert response.status_code == NOTIFICATION_READS[who], response.text
    if response.status_code == OK:
        keys = {each["key"] for each in response.json()["notifications"]}
        assert {"1-customer"} <= keys or {"1-partner"} <= keys
    else:
        assert response.json()["rule"] == "forbidden"
        assert "ConnectSoft" in response.json()["detail"]
    if who in FOREIGN:
        foreign = await file_ticket(stack, FOREIGN[who])
        hidden = await stack.http.get(f"/tickets/{foreign}/notifications", headers=stack.as_(who))
        assert hidden.status_code == NOT_FOUND
        assert hidden.json()["rule"] == "unknown_ticket"


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_filing_is_allowed_within_reach_only(module_stack: Stack, who: str) -> None:
    stack = module_stack
    own = await stack.http.post("/tickets", json=ticket_body(OWN[who]), headers=stack.as_(who))
    assert own.status_code == 201, own.text
    assert own.json()["customer_id"] == OWN[who]
    if who in FOREIGN:
        key = uuid.uuid4().hex
        refused = await stack.http.post(
            "/tickets", json=ticket_body(FOREIGN[who]), headers={**stack.as_(who), "Idempotency-Key": key}
        )
        unknown = await stack.http.post(
            "/tickets", json=ticket_body("no-such-customer"), headers=stack.as_(who)
        )
        # The same answer as a customer that does not exist, so customer ids do not leak.
        assert refused.status_code == unknown.status_code == 422
        assert refused.json()["rule"] == unknown.json()["rule"] == "unknown_customer"
        # And no workflow was started for it.
        await assert_nothing_filed(stack, key)


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_a_contract_quote_answers_within_reach_and_like_a_missing_customer_outside_it(
    module_stack: Stack, who: str
) -> None:
    """GET /sla/deadline?customer_id= quotes the customer's own contract for a key that reaches
    it (issue 15: the quote and the console's intake form use the contract's terms)."""
    stack = module_stack
    query = {"severity": 2, "submitted_at": "2026-12-01T10:00:00Z"}
    own = await stack.http.get(
        "/sla/deadline", params=query | {"customer_id": OWN[who]}, headers=stack.as_(who)
    )
    assert own.status_code == 200, own.text
    anonymous = await stack.http.get("/sla/deadline", params=query | {"customer_id": OWN[who]})
    assert anonymous.status_code == 401
    missing = await stack.http.get(
        "/sla/deadline", params=query | {"customer_id": "no-such-customer"}, headers=stack.as_(who)
    )
    assert missing.status_code == NOT_FOUND
    if who in FOREIGN:
        foreign = await stack.http.get(
            "/sla/deadline", params=query | {"customer_id": FOREIGN[who]}, headers=stack.as_(who)
        )
        # The same answer as a customer that does not exist, but for the id it names.
        named = {"detail": foreign.json()["detail"].replace(FOREIGN[who], "no-such-customer")}
        assert (foreign.status_code, foreign.json() | named) == (missing.status_code, missing.json())


# The catalog's notification recipients: admin only, like the rest of the catalog. The
# admin's bodies are the demo catalog's own, so even the allowed cells leave the rows as seeded.
CURRENT_POLICY = json.loads((Path(policies.__file__).parent / f"{POLICY_VERSION}.json").read_text())
CATALOG_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/customers/acme/contacts", None),
    (
        "PUT",
        "/customers/acme/contacts",
        {"contacts": [{"name": "Acme Operations", "email": "ops@acme.example", "timezone": "Europe/Berlin"}]},
    ),
    ("GET", "/partners/northwind/contacts", None),
    (
        "PUT",
        "/partners/northwind/contacts",
        {
            "contacts": [
                {"name": "Northwind Support", "email": "support@northwind.example"},
                {"name": "Northwind On-call", "email": "oncall@northwind.example", "role": "on_call"},
            ]
        },
    ),
    # What-if (issue 20): admin only, and it changes nothing.
    ("POST", "/policy/simulate", {"candidate": CURRENT_POLICY, "from": "2026-01-01", "to": "2026-01-02"}),
    ("GET", "/support-teams", None),
    ("GET", "/support-teams/support_l2", None),
    (
        "PUT",
        "/support-teams/support_l2",
        {"name": "Support L2", "email": "l2@connectsoft.example", "chat_channel": "#support-l2"},
    ),
]
ADMIN_ONLY = {ADMIN: OK, SUPPORT: FORBIDDEN, PARTNER: FORBIDDEN, CUSTOMER: FORBIDDEN}
CATALOG_CASES = [(endpoint, who) for endpoint in CATALOG_ENDPOINTS for who in PRINCIPALS]


async def recipient_rows(stack: Stack) -> list[tuple[Any, ...]]:
    async with stack.sessionmaker() as session:
        contacts = await session.execute(
            text("SELECT customer_id, partner_id, role, name, email, timezone FROM contacts ORDER BY id")
        )
        teams = await session.execute(text("SELECT * FROM support_teams ORDER BY audience"))
        # By owner (a PUT renumbers its owner's rows), each in its own order.
        by_owner = sorted(contacts, key=lambda row: (str(row[0]), str(row[1])))
        return [tuple(row) for row in (*by_owner, *teams)]


@pytest.mark.parametrize("case", CATALOG_CASES, ids=[f"{m} {p}-{who}" for (m, p, _), who in CATALOG_CASES])
async def test_recipients_in_the_catalog_are_admin_only_and_refusals_change_nothing(
    module_stack: Stack, case: tuple[tuple[str, str, dict[str, Any] | None], str]
) -> None:
    (method, path, body), who = case
    stack = module_stack
    before = await recipient_rows(stack)

    response = await stack.http.request(method, path, json=body, headers=stack.as_(who))

    assert response.status_code == ADMIN_ONLY[who], response.text
    if ADMIN_ONLY[who] == FORBIDDEN:
        assert response.json()["rule"] == "forbidden"
        assert "admin key" in response.json()["detail"]
    assert before and await recipient_rows(stack) == before


ENDPOINTS = [
    ("GET", "/tickets", None),
    ("POST", "/tickets", ticket_body("acme")),
    ("GET", "/tickets/{id}", None),
    ("GET", "/tickets/{id}/timeline", None),
    ("GET", "/tickets/{id}/notifications", None),
    *[("POST", f"/tickets/{{id}}/{cell.action}", cell.body) for cell in CELLS],
    ("POST", "/codec/decode", {"payloads": []}),
    ("POST", "/codec/encode", {"payloads": []}),
    *CATALOG_ENDPOINTS,
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic ZGV2LWFkbWluOg==", "Bearer "], ids=str)
async def test_no_valid_key_is_401_with_a_bearer_challenge(
    module_stack: Stack, method: str, path: str, body: dict[str, Any] | None, authorization: str | None
) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "acme")
    before = await unchanged_proof(stack, ticket_id)
    headers = {"Authorization": authorization} if authorization else {}
    response = await stack.http.request(method, path.format(id=ticket_id), json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["rule"] == "unauthenticated"
    assert await unchanged_proof(stack, ticket_id) == before


# The remote codec of the Temporal UI and CLI: it decrypts ticket text, so admin keys only.
CODEC_CELLS = [
    (path, who, OK if who == ADMIN else FORBIDDEN)
    for path in ("/codec/decode", "/codec/encode")
    for who in PRINCIPALS
]


@pytest.mark.parametrize(
    ("path", "who", "expected"), CODEC_CELLS, ids=[f"{p}-{w}" for p, w, _ in CODEC_CELLS]
)
async def test_codec_endpoints_answer_admin_keys_only(
    module_stack: Stack, path: str, who: str, expected: int
) -> None:
    # A JSON payload, as the Temporal UI sends it (base64 metadata and data).
    payload = {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJ0aXRsZSI6ICJ4In0="}
    response = await module_stack.http.post(path, json={"payloads": [payload]}, headers=module_stack.as_(who))
    assert response.status_code == expected, response.text
    if expected == OK:
        assert len(response.json()["payloads"]) == 1
    else:
        assert response.json()["rule"] == "forbidden"


async def test_timelines_show_internal_notes_only_to_those_who_may_read_them(module_stack: Stack) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "contoso")
    notes = [
        (SUPPORT, {"body": "ConnectSoft: suspect the export worker", "public": False}),
        (PARTNER, {"body": "Northwind: customer is on the old plan", "public": False}),
        (PARTNER, {"body": "We are looking into it", "public": True}),
    ]
    for who, body in notes:
        response = await stack.http.post(f"/tickets/{ticket_id}/comment", json=body, headers=stack.as_(who))
        assert response.status_code == 200, response.text
    await wait_until_recorded(stack, ticket_id)

    def visibilities(who: str) -> list[str]:
        return [e["detail"]["visibility"] for e in seen[who] if e["kind"] == "commented"]

    seen: dict[str, list[dict[str, Any]]] = {}
    for who in (ADMIN, SUPPORT, PARTNER):
        response = await stack.http.get(f"/tickets/{ticket_id}/timeline", headers=stack.as_(who))
        seen[who] = response.json()["events"]
    assert visibilities(ADMIN) == visibilities(SUPPORT) == ["internal", "partner_internal", "public"]
    assert visibilities(PARTNER) == ["partner_internal", "public"]
    # The customer of a partner ticket is not acme; acme's own view of its ticket hides both.
    acme_ticket = await file_ticket(stack, "acme")
    for who, body in [(SUPPORT, notes[0][1]), (CUSTOMER, {"body": "Any news?"})]:
        response = await stack.http.post(f"/tickets/{acme_ticket}/comment", json=body, headers=stack.as_(who))
        assert response.status_code == 200, response.text
    await wait_until_recorded(stack, acme_ticket)
    customer_view = await stack.http.get(f"/tickets/{acme_ticket}/timeline", headers=stack.as_(CUSTOMER))
    kinds = [
        e["detail"].get("visibility") for e in customer_view.json()["events"] if e["kind"] == "commented"
    ]
    assert kinds == ["public"]


# DESIGN.md §8: what probes, scrapers and readers of the documentation call needs no key, and a
# wrong key does not turn it away either.
PUBLIC_ENDPOINTS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/policy"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), PUBLIC_ENDPOINTS, ids=[f"{m} {p}" for m, p in PUBLIC_ENDPOINTS])
@pytest.mark.parametrize("authorization", [None, "Bearer nope"], ids=str)
async def test_public_endpoints_answer_without_a_key(
    module_stack: Stack, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await module_stack.http.request(method, path, headers=headers)
    assert response.status_code == 200, response.text
    assert "www-authenticate" not in response.headers


# --- The console (/console): the same table through its pages and forms ------------------------
#
# The console signs in with the same keys (each stack opens a session per demo key,
# tests/fixtures_api.py) and acts through the same services: an action form that applies
# answers 303 to the ticket page, a refused one re-renders the page with the refusal's status
# (403 here), and a foreign ticket is a 404 page. Without a valid session a page redirects
# to the sign-in form and a fragment answers 401 (htmx follows its HX-Redirect).


def console_as(who: str | None) -> dict[str, str]:
    """Headers that carry a session of `who`'s key in the console's cookie, as a signed-in
    browser does (each stack opens one per demo key)."""
    return {"Cookie": f"{SESSION_COOKIE}={console_session_id(who)}"} if who else {}


def console_form(who: str, body: dict[str, Any]) -> dict[str, str]:
    form = {"csrf_token": csrf_token_for(console_session_id(who))}
    for name, value in body.items():
        if name == "public":
            form["visibility"] = "public" if value else "internal"
        else:
            form[name] = str(value)
    return form


@pytest.mark.parametrize("case", CASES, ids=[f"console-{case_id(c)}" for c in CASES])
async def test_console_action_forms_follow_the_same_table(
    module_stack: Stack, case: tuple[Cell, str]
) -> None:
    cell, who = case
    stack = module_stack
    ticket_id = await file_ticket(stack, cell.customer.get(who, OWN[who]))
    for action, body in cell.setup:
        prepared = await stack.http.post(
            f"/tickets/{ticket_id}/{action}", json=body, headers=stack.as_(ADMIN)
        )
        assert prepared.status_code == 200, prepared.text
    before = await unchanged_proof(stack, ticket_id)

    response = await stack.http.post(
        f"/console/tickets/{ticket_id}/{cell.action}",
        data=console_form(who, cell.body),
        headers=console_as(who),
    )

    if cell.expected[who] == OK:
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/console/tickets/{ticket_id}?done={cell.action}"
        last = (await recorded_timeline(stack, ticket_id))[-1]
        actor = await actor_of(stack, who)
        assert actor.startswith(f"{ACTOR_NAME[who]} (key_")
        assert (last.kind, last.actor) == (cell.event, actor)
    else:
        assert response.status_code == FORBIDDEN, response.text
        assert "Refused (403):" in response.text
        assert await unchanged_proof(stack, ticket_id) == before


@pytest.mark.parametrize(
    "case", FOREIGN_CASES, ids=[f"console-{c.action}-{who}-foreign" for c, who in FOREIGN_CASES]
)
async def test_console_action_forms_on_a_foreign_ticket_are_not_found(
    module_stack: Stack, case: tuple[Cell, str]
) -> None:
    cell, who = case
    stack = module_stack
    ticket_id = await file_ticket(stack, FOREIGN[who])
    before = await unchanged_proof(stack, ticket_id)
    response = await stack.http.post(
        f"/console/tickets/{ticket_id}/{cell.action}",
        data=console_form(who, cell.body),
        headers=console_as(who),
    )
    assert response.status_code == NOT_FOUND, response.text
    assert "Not found" in response.text
    missing_id = missing_ticket_id()
    missing = await stack.http.post(
        f"/console/tickets/{missing_id}/{cell.action}",
        data=console_form(who, cell.body),
        headers=console_as(who),
    )
    assert answer(response, ticket_id=ticket_id, as_id=missing_id) == answer(missing)
    assert await unchanged_proof(stack, ticket_id) == before


async def queue_ticket_ids(stack: Stack, headers: dict[str, str]) -> set[str]:
    """The ticket ids on every page of the principal's console queue (status=all)."""
    found: set[str] = set()
    for offset in itertools.count(0, PAGE_SIZE):
        page = (await stack.http.get(f"/console/queue?status=all&offset={offset}", headers=headers)).text
        ids = set(re.findall(r'data-ticket="([^"]+)"', page))
        if ids <= found:  # past the last page (or a queue that ignored the offset): done
            return found
        found |= ids
    raise AssertionError("unreachable")


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_console_pages_answer_within_reach_and_404_outside_it(module_stack: Stack, who: str) -> None:
    stack = module_stack
    own = await file_ticket(stack, OWN[who])
    foreign = await file_ticket(stack, FOREIGN[who]) if who in FOREIGN else None
    for ticket_id in filter(None, (own, foreign)):
        await wait_for_event(stack.handle(ticket_id), record_written())
    headers = console_as(who)

    for path in (
        "/console?status=all",
        "/console/queue?status=all",
        f"/console/tickets/{own}",
        f"/console/tickets/{own}/clocks",
        "/console/file",
        f"/console/file/quote?customer_id={OWN[who]}&severity=2",
        "/console/reports",
        "/console/reports/sla-chart.svg",
    ):
        response = await stack.http.get(path, headers=headers)
        assert response.status_code == OK, (path, response.text)
    # Every page of the queue: the module's earlier tests leave more than a page of tickets, and
    # the order is by due time, so a fresh ticket can sit on any page (business hours decide).
    listed = await queue_ticket_ids(stack, headers)
    assert own in listed
    if foreign is not None:
        assert foreign not in listed
        by_name = await stack.http.get(f"/console/queue?status=all&customer={FOREIGN[who]}", headers=headers)
        assert "data-ticket=" not in by_name.text
        missing = missing_ticket_id()
        for path in ("/console/tickets/{id}", "/console/tickets/{id}/clocks"):
            hidden = await stack.http.get(path.format(id=foreign), headers=headers)
            absent = await stack.http.get(path.format(id=missing), headers=headers)
            assert hidden.status_code == NOT_FOUND, path
            assert answer(hidden, ticket_id=foreign, as_id=missing) == answer(absent), path
        # The intake form offers no foreign customer, and filing for one changes nothing.
        assert f'value="{FOREIGN[who]}"' not in (await stack.http.get("/console/file", headers=headers)).text


# The What if page (issue 20): the console's face of POST /policy/simulate, admin only like it.
# Every other key gets the console's "no such page", exactly the page a console path that is
# not there answers, whether it asks for the page or posts the form, and its navigation has no
# link to it: it cannot read any customer's tickets through it, its own or a foreign one's.
WHATIF_PAGE = "/console/reports/what-if"
WHATIF_FORM = {
    "candidate": json.dumps(CURRENT_POLICY),
    "from": str(_NOW.date() - timedelta(days=1)),
    "to": str(_NOW.date() + timedelta(days=2)),
    "group_by": "customer",
}
CONSOLE_ADMIN_ONLY = {ADMIN: OK, SUPPORT: NOT_FOUND, PARTNER: NOT_FOUND, CUSTOMER: NOT_FOUND}


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_console_whatif_page_is_admin_only(module_stack: Stack, who: str) -> None:
    stack = module_stack
    own = await file_ticket(stack, OWN[who])
    foreign = await file_ticket(stack, FOREIGN.get(who, "contoso"))
    for ticket_id in (own, foreign):
        await wait_until_recorded(stack, ticket_id)
    before = [await unchanged_proof(stack, ticket_id) for ticket_id in (own, foreign)]
    headers = console_as(who)

    page = await stack.http.get(WHATIF_PAGE, headers=headers)
    posted = await stack.http.post(WHATIF_PAGE, data=console_form(who, WHATIF_FORM), headers=headers)
    reports = (await stack.http.get("/console/reports", headers=headers)).text

    assert page.status_code == posted.status_code == CONSOLE_ADMIN_ONLY[who], posted.text
    if who == ADMIN:
        assert 'data-group="acme"' in posted.text and 'data-group="contoso"' in posted.text
        assert f'href="{WHATIF_PAGE}"' in reports
    else:
        nowhere = await stack.http.post(
            f"/console/tickets/{own}/no-such-page", data=console_form(who, {}), headers=headers
        )
        assert answer(page) == answer(posted) == answer(nowhere)
        assert "There is no such page." in page.text
        assert WHATIF_PAGE not in reports
        for ticket_id in (own, foreign):
            assert ticket_id not in posted.text
    assert [await unchanged_proof(stack, ticket_id) for ticket_id in (own, foreign)] == before


@pytest.mark.parametrize("who", PRINCIPALS)
async def test_console_files_tickets_within_reach_only(module_stack: Stack, who: str) -> None:
    stack = module_stack
    body = ticket_body(OWN[who])
    filed = await stack.http.post("/console/file", data=console_form(who, body), headers=console_as(who))
    assert filed.status_code == 303, filed.text
    ticket_id = filed.headers["location"].split("/")[-1].split("?")[0]
    assert (await stack.handle(ticket_id).query("state"))["customer_id"] == OWN[who]
    if who in FOREIGN:
        key = uuid.uuid4().hex
        form = console_form(who, ticket_body(FOREIGN[who])) | {"idempotency_key": key}
        refused = await stack.http.post("/console/file", data=form, headers=console_as(who))
        if who == CUSTOMER:
            # A customer files for itself whatever the form says.
            assert refused.status_code == 303, refused.text
            refused_id = refused.headers["location"].split("/")[-1].split("?")[0]
            assert (await stack.handle(refused_id).query("state"))["customer_id"] == OWN[who]
        else:
            assert refused.status_code == 422 and "Unknown customer" in refused.text
            await assert_nothing_filed(stack, key)


CONSOLE_PAGES = [
    "/console",
    "/console/tickets/{id}",
    "/console/file",
    "/console/reports",
    "/console/reports/sla-chart.svg",
    "/console/reports/what-if",
]
CONSOLE_FRAGMENTS = ["/console/queue", "/console/tickets/{id}/clocks", "/console/file/quote"]
CONSOLE_FORMS = [
    ("/console/file", ticket_body("acme")),
    ("/console/sign-out", {}),
    ("/console/reports/what-if", {"candidate": "{}", "from": "2026-01-01", "to": "2026-01-02"}),
    *[(f"/console/tickets/{{id}}/{cell.action}", cell.body) for cell in CELLS],
]


@pytest.mark.parametrize("key", [None, "nope"], ids=["no-cookie", "unknown-key"])
async def test_console_without_a_valid_key_sends_people_to_sign_in(
    module_stack: Stack, key: str | None
) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "acme")
    before = await unchanged_proof(stack, ticket_id)
    headers = console_as(key)
    for path in CONSOLE_PAGES:
        response = await stack.http.get(path.format(id=ticket_id), headers=headers)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/sign-in?next=" + quote(
            path.format(id=ticket_id), safe=""
        )
    for path in CONSOLE_FRAGMENTS:
        response = await stack.http.get(path.format(id=ticket_id), headers=headers)
        assert response.status_code == 401, path
        assert response.headers["hx-redirect"].startswith("/console/sign-in")
    for path, body in CONSOLE_FORMS:
        form = console_form(key or "nope", body)
        response = await stack.http.post(path.format(id=ticket_id), data=form, headers=headers)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/sign-in")
    assert await unchanged_proof(stack, ticket_id) == before
    # The sign-in page itself is open to all.
    assert (await stack.http.get("/console/sign-in", headers=headers)).status_code == OK


# --- Major incidents (issue 19, DESIGN.md §11's incident rows) ----------------------------------
#
# Support and admins open, link, update, acknowledge the page of and resolve; a partner reads the
# incidents that touch its customers' tickets (403 on managing one it can see); a customer has no
# incident endpoint: an incident answers it 404, like one that does not exist. Each case acts on an
# incident linking an acme and a contoso ticket (and, to acknowledge, a Sev 1 that paged); a refused
# cell leaves the incident's history and the tickets as they were.
CREATED, ACCEPTED = 201, 202
INCIDENT_CELLS: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("POST", "/incidents", None, {ADMIN: CREATED, SUPPORT: CREATED, PARTNER: FORBIDDEN, CUSTOMER: FORBIDDEN}),
    ("GET", "/incidents", None, {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: FORBIDDEN}),
    ("GET", "/incidents/{id}", None, {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: NOT_FOUND}),
    (
        "POST",
        "/incidents/{id}/links",
        {"ticket_ids": ["{spare}"]},
        {ADMIN: OK, SUPPORT: OK, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "DELETE",
        "/incidents/{id}/links/{acme}",
        None,
        {ADMIN: OK, SUPPORT: OK, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/incidents/{id}/updates",
        {"message": "Investigating"},
        {ADMIN: ACCEPTED, SUPPORT: ACCEPTED, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/incidents/{id}/resolve",
        {"resolution": "Fixed"},
        {ADMIN: ACCEPTED, SUPPORT: ACCEPTED, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/incidents/{id}/acknowledge",
        None,
        {ADMIN: ACCEPTED, SUPPORT: ACCEPTED, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
]
INCIDENT_CASES = [(cell, who) for cell in INCIDENT_CELLS for who in PRINCIPALS]
INCIDENT_BODY = {
    "title": "Config outage",
    "description": "Config reads fail",
    "product": "config",
    "severity": 2,
}


async def an_incident_touching_acme_and_contoso(stack: Stack) -> tuple[str, dict[str, str]]:
    opened = await stack.http.post(
        "/incidents",
        json=INCIDENT_BODY | {"also_products": ["partner_solution", "audit"]},
        headers=stack.as_(SUPPORT),
    )
    assert opened.status_code == 201, opened.text
    incident_id: str = opened.json()["incident_id"]
    tickets = {"acme": await file_ticket(stack, "acme"), "contoso": await file_ticket(stack, "contoso")}
    linked = await stack.http.post(
        f"/incidents/{incident_id}/links",
        json={"ticket_ids": list(tickets.values())},
        headers=stack.as_(SUPPORT),
    )
    assert linked.status_code == 200, linked.text
    for ticket_id in tickets.values():
        await wait_until_recorded(stack, ticket_id)
    tickets["spare"] = await file_ticket(stack, "acme")
    return incident_id, tickets


async def incident_proof(stack: Stack, incident_id: str, tickets: dict[str, str]) -> tuple[Any, ...]:
    handle = stack.client.get_workflow_handle(f"incident-{incident_id}")
    history = await handle.fetch_history()
    accepted = [
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    return (accepted, *[await unchanged_proof(stack, ticket_id) for ticket_id in tickets.values()])


@pytest.mark.parametrize(
    "case", INCIDENT_CASES, ids=[f"{m} {p}-{who}" for (m, p, _, _), who in INCIDENT_CASES]
)
async def test_incident_endpoints_follow_the_incident_rows(
    module_stack: Stack, case: tuple[tuple[str, str, dict[str, Any] | None, dict[str, int]], str]
) -> None:
    (method, path, body, expected), who = case
    stack = module_stack
    incident_id, tickets = await an_incident_touching_acme_and_contoso(stack)
    if path.endswith("/acknowledge"):
        await page_the_incident(stack, incident_id)
    names = {"id": incident_id, **tickets}
    url = path.format(**names)
    sent = INCIDENT_BODY if path == "/incidents" and method == "POST" else body
    if sent is not None:
        sent = json.loads(json.dumps(sent).replace("{spare}", tickets["spare"]))
    before = await incident_proof(stack, incident_id, tickets)

    response = await stack.http.request(method, url, json=sent, headers=stack.as_(who))

    assert response.status_code == expected[who], response.text
    if expected[who] >= 400:
        problem = response.json()
        assert problem["status"] == expected[who] and problem["detail"].endswith(".")
        assert await incident_proof(stack, incident_id, tickets) == before
    elif path.endswith("/acknowledge"):
        assert response.json()["acknowledged_by"] == await actor_of(stack, who)
    if expected[who] == NOT_FOUND:
        missing = await stack.http.request(
            method, path.format(**names | {"id": "inc-0000000000"}), json=sent, headers=stack.as_(who)
        )
        assert answer(response, ticket_id=incident_id, as_id="inc-0000000000") == answer(missing)
    await stack.http.post(
        f"/incidents/{incident_id}/resolve", json={"resolution": "over"}, headers=stack.as_(SUPPORT)
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_partner_finds_an_incident_without_its_tickets_like_a_missing_one(
    module_stack: Stack, method: str
) -> None:
    stack = module_stack
    opened = await stack.http.post("/incidents", json=INCIDENT_BODY, headers=stack.as_(SUPPORT))
    incident_id = opened.json()["incident_id"]
    acme = await file_ticket(stack, "acme")
    await stack.http.post(
        f"/incidents/{incident_id}/links", json={"ticket_ids": [acme]}, headers=stack.as_(SUPPORT)
    )
    path, body = (
        ("/incidents/{id}", None) if method == "GET" else ("/incidents/{id}/updates", {"message": "x"})
    )
    foreign = await stack.http.request(
        method, path.format(id=incident_id), json=body, headers=stack.as_(PARTNER)
    )
    missing = await stack.http.request(
        method, path.format(id="inc-0000000000"), json=body, headers=stack.as_(PARTNER)
    )
    assert foreign.status_code == NOT_FOUND
    assert answer(foreign, ticket_id=incident_id, as_id="inc-0000000000") == answer(missing)
    await stack.http.post(
        f"/incidents/{incident_id}/resolve", json={"resolution": "over"}, headers=stack.as_(SUPPORT)
    )


# The console's incident pages and forms (issue 19): the same incident rows through
# api/incidents_service.py. A form that applies answers 303 (post/redirect/get), a refused one
# re-renders its page with "Refused (403)" and changes nothing, and an incident out of reach
# (every one for a customer) is the console's "no such page", exactly as a missing one.
SEE_OTHER = 303
CONSOLE_INCIDENT_CELLS: list[tuple[str, str, dict[str, str] | None, dict[str, int]]] = [
    ("GET", "/console/incidents", None, {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: NOT_FOUND}),
    ("GET", "/console/incidents/{id}", None, {ADMIN: OK, SUPPORT: OK, PARTNER: OK, CUSTOMER: NOT_FOUND}),
    (
        "POST",
        "/console/incidents/{id}/updates",
        {"message": "Investigating"},
        {ADMIN: SEE_OTHER, SUPPORT: SEE_OTHER, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/console/incidents/{id}/resolve",
        {"resolution": "Fixed"},
        {ADMIN: SEE_OTHER, SUPPORT: SEE_OTHER, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/console/incidents/{id}/acknowledge",
        {},
        {ADMIN: SEE_OTHER, SUPPORT: SEE_OTHER, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/console/incidents/{id}/links/{contoso}/unlink",
        {},
        {ADMIN: SEE_OTHER, SUPPORT: SEE_OTHER, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
    (
        "POST",
        "/console/incidents/link",
        {"incident_id": "{id}", "ticket_id": "{own}"},
        {ADMIN: SEE_OTHER, SUPPORT: SEE_OTHER, PARTNER: FORBIDDEN, CUSTOMER: NOT_FOUND},
    ),
]
CONSOLE_INCIDENT_CASES = [(cell, who) for cell in CONSOLE_INCIDENT_CELLS for who in PRINCIPALS]


@pytest.mark.parametrize(
    "case",
    CONSOLE_INCIDENT_CASES,
    ids=[f"console-{m} {p}-{who}" for (m, p, _, _), who in CONSOLE_INCIDENT_CASES],
)
async def test_console_incident_pages_follow_the_incident_rows(
    module_stack: Stack, case: tuple[tuple[str, str, dict[str, str] | None, dict[str, int]], str]
) -> None:
    (method, path, body, expected), who = case
    stack = module_stack
    incident_id, tickets = await an_incident_touching_acme_and_contoso(stack)
    if path.endswith("/acknowledge"):
        await page_the_incident(stack, incident_id)
    tickets["own"] = await file_ticket(stack, OWN[who])
    await wait_until_recorded(stack, tickets["own"])
    names = {"id": incident_id, **tickets}
    before = await incident_proof(stack, incident_id, tickets)

    def sent(ids: dict[str, str]) -> dict[str, str] | None:
        if body is None:
            return None
        return console_form(who, {name: value.format(**ids) for name, value in body.items()})

    async def ask(ids: dict[str, str]) -> httpx.Response:
        url = path.format(**ids)
        if method == "GET":
            return await stack.http.get(url, headers=console_as(who))
        return await stack.http.post(url, data=sent(ids), headers=console_as(who))

    response = await ask(names)

    assert response.status_code == expected[who], response.text
    if expected[who] == SEE_OTHER:
        assert response.headers["location"].startswith("/console/")
    if expected[who] == OK and path == "/console/incidents":
        assert f'data-incident="{incident_id}"' in response.text
    if expected[who] >= 400:
        assert await incident_proof(stack, incident_id, tickets) == before
    if expected[who] == FORBIDDEN:
        assert "Refused (403):" in response.text
    if expected[who] == NOT_FOUND:
        assert "Not found" in response.text
        missing = await ask(names | {"id": "inc-0000000000"})
        assert answer(response, ticket_id=incident_id, as_id="inc-0000000000") == answer(missing)
    nav = (await stack.http.get("/console", headers=console_as(who))).text
    assert ('data-testid="nav-incidents"' in nav) == (expected[who] != NOT_FOUND)
    await stack.http.post(
        f"/incidents/{incident_id}/resolve", json={"resolution": "over"}, headers=stack.as_(SUPPORT)
    )
