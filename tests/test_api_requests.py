"""Requests that cannot be misread: strict bodies, idempotency keys that mean one thing, and
text every database can store (issue 6)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.schemas import TicketCreate
from api.tickets_service import new_ticket_id, request_digest
from store import idempotency
from store.db import IdempotencyRecord, Ticket
from store.keys import principal_for_secret
from tests.fixtures_api import (
    Stack,
    assert_nothing_filed,
    record_written,
    recorded_timeline,
    settled_state,
    wait_for_event,
)

SUPPORT = "dev-support"
TICKET = {
    "customer_id": "globex",
    "title": "Reports slow",
    "description": "p95 is 30 s since Monday",
    "severity": 3,
    "product": "audit",
    "channel": "email",
    "category": "performance",
}


async def assert_no_workflow(stack: Stack, ticket_id: str) -> None:
    with pytest.raises(RPCError) as missing:
        await stack.handle(ticket_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def file(stack: Stack, body: dict[str, Any] | None = None) -> str:
    response = await stack.http.post("/tickets", json=body or TICKET, headers=stack.as_(SUPPORT))
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["ticket_id"]
    return ticket_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "Looking", "actor": "l1-anna"}, "actor"),
        ({"body": "Looking", "pubilc": False}, "pubilc"),
        ({"bdy": "Looking"}, "bdy"),
    ],
)
async def test_an_action_body_with_an_unknown_field_is_refused_and_changes_nothing(
    module_stack: Stack, body: dict[str, Any], field: str
) -> None:
    stack = module_stack
    ticket_id = await file(stack)
    before = await settled_state(stack, ticket_id)
    response = await stack.http.post(f"/tickets/{ticket_id}/comment", json=body, headers=stack.as_(SUPPORT))
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert f"{field}: " in response.json()["detail"]
    assert await settled_state(stack, ticket_id) == before


async def test_intake_with_an_unknown_field_is_refused(module_stack: Stack) -> None:
    stack = module_stack
    key = uuid.uuid4().hex
    response = await stack.http.post(
        "/tickets", json={**TICKET, "actor": "anna"}, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )
    assert response.status_code == 422
    await assert_nothing_filed(stack, key)


async def test_the_same_idempotency_key_with_another_body_is_422_and_files_nothing(
    module_stack: Stack,
) -> None:
    stack = module_stack
    headers = {**stack.as_(SUPPORT), "Idempotency-Key": uuid.uuid4().hex}
    first = await stack.http.post("/tickets", json=TICKET, headers=headers)
    assert first.status_code == 201
    other = await stack.http.post("/tickets", json={**TICKET, "title": "Reports very slow"}, headers=headers)
    assert other.status_code == 422, other.text
    assert other.json()["rule"] == "idempotency_key_reused"
    retry = await stack.http.post("/tickets", json=TICKET, headers=headers)
    assert retry.status_code == 200 and retry.json()["ticket_id"] == first.json()["ticket_id"]
    state = await stack.handle(first.json()["ticket_id"]).query("state")
    assert state["title"] == "Reports slow"


async def test_the_same_idempotency_key_on_another_action_is_422_and_changes_nothing(
    module_stack: Stack,
) -> None:
    stack = module_stack
    ticket_id = await file(stack)
    headers = {**stack.as_(SUPPORT), "Idempotency-Key": uuid.uuid4().hex}
    first = await stack.http.post(f"/tickets/{ticket_id}/comment", json={"body": "On it"}, headers=headers)
    assert first.status_code == 200
    before = await settled_state(stack, ticket_id)
    other = await stack.http.post(f"/tickets/{ticket_id}/comment", json={"body": "Fixed"}, headers=headers)
    assert other.status_code == 422 and other.json()["rule"] == "idempotency_key_reused"
    retry = await stack.http.post(f"/tickets/{ticket_id}/comment", json={"body": "On it"}, headers=headers)
    assert retry.status_code == 200
    assert await settled_state(stack, ticket_id) == before
    assert [e.kind for e in await recorded_timeline(stack, ticket_id)].count("commented") == 1


async def test_one_key_used_by_two_principals_is_two_requests(module_stack: Stack) -> None:
    """A key is the caller's own: another principal's identical key neither collides nor
    sees the first caller's answer."""
    stack = module_stack
    key = uuid.uuid4().hex
    body = {**TICKET, "customer_id": "acme", "product": "identity"}
    mine = await stack.http.post(
        "/tickets", json=body, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )
    theirs = await stack.http.post(
        "/tickets", json=body, headers={**stack.as_("dev-customer-acme"), "Idempotency-Key": key}
    )
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["ticket_id"] != theirs.json()["ticket_id"]


async def test_concurrent_duplicates_make_exactly_one_ticket(module_stack: Stack) -> None:
    stack = module_stack
    headers = {**stack.as_(SUPPORT), "Idempotency-Key": uuid.uuid4().hex}
    answers = await asyncio.gather(
        *(stack.http.post("/tickets", json=TICKET, headers=headers) for _ in range(8))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["ticket_id"] for a in answers}) == 1
    handle = stack.handle(answers[0].json()["ticket_id"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    timeline = await recorded_timeline(stack, answers[0].json()["ticket_id"])
    assert [e.kind for e in timeline].count("opened") == 1


UNSTORABLE = ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\ud800"]


@pytest.mark.parametrize("bad", UNSTORABLE, ids=[repr(b) for b in UNSTORABLE])
@pytest.mark.parametrize("field", ["title", "description"])
async def test_text_a_database_cannot_store_is_refused_at_intake(
    db_stack: Stack, bad: str, field: str
) -> None:
    stack = db_stack
    key = uuid.uuid4().hex
    # json.dumps escapes every non-ASCII character, so even a lone surrogate travels (as \ud800).
    body = json.dumps({**TICKET, field: f"Reports{bad}slow"})
    headers = {**stack.as_(SUPPORT), "Idempotency-Key": key, "Content-Type": "application/json"}
    response = await stack.http.post("/tickets", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    # A lone surrogate is not text at all: pydantic refuses it before our own check runs.
    reason = "unable to parse raw data as a unicode string" if bad == "\ud800" else "control character"
    assert reason in response.json()["detail"]
    await assert_nothing_filed(stack, key)


async def test_newlines_tabs_and_any_script_reach_the_read_model_intact(db_stack: Stack) -> None:
    """What is allowed is stored exactly (CRLF read as a newline), on SQLite and PostgreSQL."""
    stack = db_stack
    title = "Umlaute äöü, 漢字, emoji 🚨\tand a tab"
    ticket_id = await file(stack, {**TICKET, "title": title, "description": "line 1\r\nline 2"})
    await wait_for_event(stack.handle(ticket_id), record_written())
    async with stack.sessionmaker() as session:
        stored = await session.scalar(select(Ticket.title).where(Ticket.ticket_id == ticket_id))
    assert stored == title
    state = await stack.handle(ticket_id).query("state")
    assert state["description"] == "line 1\nline 2"


async def test_a_comment_with_a_nul_is_refused_and_changes_nothing(module_stack: Stack) -> None:
    stack = module_stack
    ticket_id = await file(stack)
    before = await settled_state(stack, ticket_id)
    response = await stack.http.post(
        f"/tickets/{ticket_id}/comment", json={"body": "nul\x00here"}, headers=stack.as_(SUPPORT)
    )
    assert response.status_code == 422
    assert await settled_state(stack, ticket_id) == before


async def test_a_keyed_intake_retried_after_a_crash_before_the_start_files_the_claimed_ticket_once(
    module_stack: Stack,
) -> None:
    """The first attempt claimed its Idempotency-Key with a fresh random id and died before it
    started the workflow; the retry finds the claim and files that very ticket, once."""
    stack = module_stack
    key = f"mail-{uuid.uuid4().hex}"
    async with stack.sessionmaker() as session:
        principal = await principal_for_secret(session, SUPPORT)
        assert principal is not None
        digest = request_digest("intake", TicketCreate.model_validate(TICKET).model_dump(mode="json"))
        claimed = await idempotency.claim(
            session=session, scope=principal.identity, key=key, digest=digest, resource_id=new_ticket_id()
        )
    assert claimed is not None and claimed.resource_id is not None
    await assert_no_workflow(stack, claimed.resource_id)  # the crash: claimed, never started

    retried = await stack.http.post(
        "/tickets", json=TICKET, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )
    again = await stack.http.post(
        "/tickets", json=TICKET, headers={**stack.as_(SUPPORT), "Idempotency-Key": key}
    )

    assert (retried.status_code, again.status_code) == (201, 200), retried.text
    assert retried.json()["ticket_id"] == again.json()["ticket_id"] == claimed.resource_id


async def test_ticket_ids_are_random_even_for_the_same_key_customer_and_idempotency_key(
    module_stack: Stack,
) -> None:
    """Nothing a caller sends predicts an id (issue 17 §2): the same request under the same
    Idempotency-Key, filed afresh (its claim gone, as on another deployment), gets a new id."""
    stack = module_stack
    key = f"mail-{uuid.uuid4().hex}"
    headers = {**stack.as_(SUPPORT), "Idempotency-Key": key}
    first = await stack.http.post("/tickets", json=TICKET, headers=headers)
    async with stack.sessionmaker() as session:
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.key == key))
        await session.commit()
    second = await stack.http.post("/tickets", json=TICKET, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert first.json()["ticket_id"] != second.json()["ticket_id"]
    assert all(len(r.json()["ticket_id"]) == 12 for r in (first, second))
