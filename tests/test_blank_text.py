"""Text a person writes must show something: a title, comment, message or name that is only
whitespace is refused with a 422 that says so, and changes nothing (no ticket, no history
event, no incident update)."""

from __future__ import annotations

import uuid

from tests.fixtures_api import Stack, assert_nothing_filed, history_types, wait_until_quiet
from tests.incident_support import SUPPORT, incident_handle, open_incident

TICKET = {
    "customer_id": "globex",
    "title": "Audit export slow",
    "description": "The nightly export takes hours",
    "severity": 3,
    "product": "audit",
    "channel": "email",
    "category": "performance",
}
BLANKS = ["   ", " \n\t ", "\r\n"]


def refused_as_blank(response_status: int, problem: dict[str, object], field: str) -> bool:
    return (
        response_status == 422
        and problem["rule"] == "invalid_request"
        and f"{field}:" in str(problem["detail"])
        and "only whitespace" in str(problem["detail"])
    )


async def test_a_blank_title_or_description_files_no_ticket(stack: Stack) -> None:
    for field in ("title", "description"):
        for blank in BLANKS:
            key = uuid.uuid4().hex
            answer = await stack.http.post(
                "/tickets",
                json={**TICKET, field: blank},
                headers={**stack.as_(SUPPORT), "idempotency-key": key},
            )
            assert refused_as_blank(answer.status_code, answer.json(), field), answer.text
            await assert_nothing_filed(stack, key)


async def test_a_blank_comment_or_note_writes_nothing_to_the_tickets_history(stack: Stack) -> None:
    filed = await stack.http.post("/tickets", json=TICKET, headers=stack.as_(SUPPORT))
    assert filed.status_code == 201, filed.text
    ticket_id = filed.json()["ticket_id"]
    handle = stack.handle(ticket_id)
    await wait_until_quiet(handle)
    before = await history_types(handle)
    for action, body, field in [
        ("comment", {"body": "  "}, "body"),
        ("acknowledge", {"note": "\n\n"}, "note"),
        ("change-severity", {"severity": 2, "reason": " \t "}, "reason"),
    ]:
        answer = await stack.http.post(
            f"/tickets/{ticket_id}/{action}", json=body, headers=stack.as_(SUPPORT)
        )
        assert refused_as_blank(answer.status_code, answer.json(), field), (action, answer.text)
    assert await history_types(handle) == before
    # Text with something in it still goes through.
    answer = await stack.http.post(
        f"/tickets/{ticket_id}/comment", json={"body": "  Looking at it now  "}, headers=stack.as_(SUPPORT)
    )
    assert answer.status_code == 200, answer.text


async def test_a_blank_incident_update_or_resolution_is_refused_and_fans_out_nothing(stack: Stack) -> None:
    answer = await stack.http.post(
        "/incidents",
        json={"title": "  ", "description": "Config reads fail", "product": "config", "severity": 2},
        headers=stack.as_(SUPPORT),
    )
    assert refused_as_blank(answer.status_code, answer.json(), "title"), answer.text
    incident_id = await open_incident(stack)
    handle = incident_handle(stack, incident_id)
    before = await history_types(handle)
    for path, body, field in [
        ("updates", {"message": "   "}, "message"),
        ("resolve", {"resolution": "\n"}, "resolution"),
    ]:
        answer = await stack.http.post(
            f"/incidents/{incident_id}/{path}", json=body, headers=stack.as_(SUPPORT)
        )
        assert refused_as_blank(answer.status_code, answer.json(), field), (path, answer.text)
    shown = (await stack.http.get(f"/incidents/{incident_id}", headers=stack.as_(SUPPORT))).json()
    assert shown["status"] == "open" and shown["updates"] == []
    assert [t for t in await history_types(handle) if "UPDATE" in str(t)] == [
        t for t in before if "UPDATE" in str(t)
    ]
