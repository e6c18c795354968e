"""Major incidents end to end (issue 19, DESIGN.md §13) on the dev server: open one, link
tickets by id and by rule, one update answers them all once, resolve, unlink; a partner sees
its own tickets only; a customer sees no incident; bad input changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.fixtures_api import Stack, recorded_timeline, wait_until_recorded
from tests.incident_support import (
    ADMIN,
    CUSTOMER,
    PARTNER,
    SUPPORT,
    an_hour_ago,
    fanned_out,
    file_ticket,
    incident_until,
    linked_to,
    open_incident,
    requests_taken,
    ticket_until,
)
from workflows import search_attributes as sa
from workflows.actions.incident import APPLIED, IncidentUpdate
from workflows.enums import Role
from workflows.models import Principal


def first_response(state: dict[str, Any]) -> dict[str, Any]:
    clock: dict[str, Any] = next(c for c in state["clocks"] if c["kind"] == "first_response")
    return clock


async def incident_comments(stack: Stack, ticket_id: str) -> list[Any]:
    return [e for e in await recorded_timeline(stack, ticket_id) if e.detail.get("update_id")]


async def test_one_update_answers_every_linked_ticket_once_then_resolve_resolves_them(stack: Stack) -> None:
    acme = (await file_ticket(stack, "acme"))["ticket_id"]
    globex = (await file_ticket(stack, "globex"))["ticket_id"]
    contoso = (await file_ticket(stack, "contoso"))["ticket_id"]
    other = (await file_ticket(stack, "globex", product="audit"))["ticket_id"]
    incident = await open_incident(stack, also_products=["partner_solution"])

    by_id = await stack.http.post(
        f"/incidents/{incident}/links", json={"ticket_ids": [acme, contoso]}, headers=stack.as_(SUPPORT)
    )
    assert by_id.status_code == 200, by_id.text
    by_rule = await stack.http.post(
        f"/incidents/{incident}/links",
        json={"product": "config", "severities": [2], "received_from": an_hour_ago()},
        headers=stack.as_(SUPPORT),
    )
    assert by_rule.status_code == 200, by_rule.text
    # The rule's sweep links the globex ticket; the audit ticket matches no rule.
    for ticket_id in (acme, globex, contoso):
        await ticket_until(stack, ticket_id, linked_to(incident))
    assert (await stack.handle(other).query("state"))["incident_id"] is None
    shown = await stack.http.get(f"/tickets/{globex}", headers=stack.as_(SUPPORT))
    assert shown.json()["incident_id"] == incident

    posted = await stack.http.post(
        f"/incidents/{incident}/updates",
        json={"message": "Config reads restored in EU"},
        headers=stack.as_(SUPPORT),
    )
    assert posted.status_code == 202, posted.text
    update_id, update_at = posted.json()["update_id"], datetime.fromisoformat(posted.json()["at"])
    state = await fanned_out(stack, incident)
    assert (state["updates"][0]["delivered"], state["updates"][0]["total"]) == (3, 3)

    for ticket_id in (acme, globex):
        ticket = await ticket_until(stack, ticket_id, lambda s: first_response(s)["status"] == "met")
        comments = await incident_comments(stack, ticket_id)
        assert [c.detail["update_id"] for c in comments] == [update_id]
        # Met at the update's time, as the ticket's own history records it.
        met_at = datetime.fromisoformat(first_response(ticket)["stopped_at"])
        assert met_at == comments[0].at == update_at
        assert ticket["acknowledged_at"] is not None
    # The partner's ticket: a notice to the partner, its own clock still running.
    partner_ticket = await ticket_until(stack, contoso, lambda s: True)
    assert first_response(partner_ticket)["status"] == "running"
    [notice] = await incident_comments(stack, contoso)
    deliveries = await stack.http.get(f"/tickets/{contoso}/notifications", headers=stack.as_(SUPPORT))
    assert f"{notice.seq}-partner" in {n["key"] for n in deliveries.json()["notifications"]}

    # The same update id again, straight to the workflow: refused as done, nothing changes.
    before = await stack.handle(acme).query("state")
    again = IncidentUpdate(
        actor=Principal(role=Role.SUPPORT, name="anna", level=3),
        incident_id=incident,
        update_id=update_id,
        message="Config reads restored in EU",
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await stack.handle(acme).execute_update("incident-update", again)
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.details == (APPLIED,)
    assert await stack.handle(acme).query("state") == before

    seen = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()
    assert {k: seen[k] for k in ("status", "linked", "open", "met", "breached")} == {
        "status": "open",
        "linked": 3,
        "open": 3,
        "met": 2,
        "breached": 0,
    }

    unlinked = await stack.http.delete(f"/incidents/{incident}/links/{globex}", headers=stack.as_(SUPPORT))
    assert unlinked.status_code == 200 and unlinked.json()["incident_id"] is None
    globex_state = await ticket_until(stack, globex, lambda s: s["incident_id"] is None)
    unset = (await stack.handle(globex).describe()).typed_search_attributes
    assert unset.get(sa.INCIDENT_ID) is None
    assert (await stack.handle(acme).describe()).typed_search_attributes.get(sa.INCIDENT_ID) == incident

    resolved = await stack.http.post(
        f"/incidents/{incident}/resolve",
        json={"resolution": "Config store failed over"},
        headers=stack.as_(ADMIN),
    )
    assert resolved.status_code == 202, resolved.text
    await fanned_out(stack, incident)
    for ticket_id in (acme, contoso):
        ticket = await ticket_until(stack, ticket_id, lambda s: s["status"] == "resolved")
        assert ticket["resolved_at"] is not None
    # Unlinked, the globex ticket stays on its own: open, not resolved by the incident.
    assert (await stack.handle(globex).query("state"))["status"] == globex_state["status"] != "resolved"
    final = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(SUPPORT))).json()
    assert (final["status"], final["linked"], final["open"]) == ("resolved", 2, 0)
    again_resolved = await stack.http.post(
        f"/incidents/{incident}/updates", json={"message": "late"}, headers=stack.as_(SUPPORT)
    )
    assert again_resolved.status_code == 409 and again_resolved.json()["rule"] == "incident_resolved"


async def test_a_ticket_filed_while_a_rule_matches_is_linked_at_intake(stack: Stack) -> None:
    incident = await open_incident(stack, product="bot", severity=1)
    added = await stack.http.post(
        f"/incidents/{incident}/links",
        json={"product": "bot", "severities": [1, 2], "received_from": an_hour_ago()},
        headers=stack.as_(SUPPORT),
    )
    assert added.status_code == 200, added.text
    filed = await file_ticket(stack, "acme", severity=1, product="bot")
    assert filed["incident_id"] == incident
    later = await file_ticket(stack, "acme", severity=3, product="bot")
    assert later["incident_id"] is None
    timeline = await recorded_timeline(stack, filed["ticket_id"])
    assert [e.kind for e in timeline][:2] == ["opened", "incident_linked"]
    await stack.http.post(
        f"/incidents/{incident}/resolve", json={"resolution": "done"}, headers=stack.as_(SUPPORT)
    )
    await fanned_out(stack, incident)


async def test_a_partner_sees_its_own_tickets_of_an_incident_and_a_customer_sees_none(stack: Stack) -> None:
    acme = (await file_ticket(stack, "acme"))["ticket_id"]
    contoso = (await file_ticket(stack, "contoso"))["ticket_id"]
    incident = await open_incident(stack, also_products=["partner_solution"])
    hidden = await open_incident(stack)
    linked = await stack.http.post(
        f"/incidents/{incident}/links", json={"ticket_ids": [acme, contoso]}, headers=stack.as_(SUPPORT)
    )
    assert linked.status_code == 200, linked.text
    for ticket_id in (acme, contoso):
        await ticket_until(stack, ticket_id, linked_to(incident))

    seen = (await stack.http.get(f"/incidents/{incident}", headers=stack.as_(PARTNER))).json()
    assert (seen["linked"], [t["ticket_id"] for t in seen["tickets"]]) == (1, [contoso])
    # The ticket list by incident is scoped like the rest of the list.
    for who, expected in ((SUPPORT, {acme, contoso}), (PARTNER, {contoso}), (CUSTOMER, {acme})):
        query = {"incident_id": incident}
        by_incident = await stack.http.get("/tickets", params=query, headers=stack.as_(who))
        assert {item["ticket_id"] for item in by_incident.json()["items"]} == expected, who
    listed = (await stack.http.get("/incidents", headers=stack.as_(PARTNER))).json()
    assert [each["incident_id"] for each in listed["items"]] == [incident]
    everything = (await stack.http.get("/incidents", headers=stack.as_(SUPPORT))).json()
    assert {incident, hidden} <= {each["incident_id"] for each in everything["items"]}

    missing = await stack.http.get("/incidents/inc-0000000000", headers=stack.as_(PARTNER))
    for who, path in ((PARTNER, f"/incidents/{hidden}"), (CUSTOMER, f"/incidents/{incident}")):
        answer = await stack.http.get(path, headers=stack.as_(who))
        assert answer.status_code == 404
        assert answer.json() | {"detail": ""} == missing.json() | {"detail": ""}
    # The customer reads the update as a public comment on its own ticket.
    await stack.http.post(
        f"/incidents/{incident}/updates", json={"message": "Fixing"}, headers=stack.as_(SUPPORT)
    )
    await fanned_out(stack, incident)
    # The timeline is the read model's: wait until the ticket's events are all recorded.
    await wait_until_recorded(stack, acme)
    timeline = (await stack.http.get(f"/tickets/{acme}/timeline", headers=stack.as_(CUSTOMER))).json()
    assert [e["detail"]["visibility"] for e in timeline["events"] if e["detail"].get("update_id")] == [
        "public"
    ]
    for each in (incident, hidden):
        await stack.http.post(
            f"/incidents/{each}/resolve", json={"resolution": "ok"}, headers=stack.as_(SUPPORT)
        )


async def incidents_started_since(stack: Stack, since: datetime) -> int:
    query = f"WorkflowType = 'IncidentWorkflow' AND StartTime >= '{since.isoformat()}'"
    return len([e async for e in stack.client.list_workflows(query)])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "x", "product": "config", "severity": 2}, "title"),
        ({"title": "x", "description": "x", "product": "nope", "severity": 2}, "product"),
        ({"title": "x", "description": "x", "product": "config", "severity": 9}, "severity"),
        (
            {
                "title": "x",
                "description": "x",
                "product": "config",
                "severity": 2,
                "customer_ids": ["nobody"],
            },
            "customer_ids",
        ),
    ],
    ids=["no-title", "unknown-product", "bad-severity", "unknown-customer"],
)
async def test_bad_input_to_open_an_incident_starts_nothing(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    since = datetime.now(UTC)
    response = await stack.http.post("/incidents", json=body, headers=stack.as_(SUPPORT))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text
    assert await incidents_started_since(stack, since) == 0


async def test_bad_links_and_updates_link_nothing_and_signal_nothing(stack: Stack) -> None:
    acme = (await file_ticket(stack, "acme"))["ticket_id"]
    incident = await open_incident(stack)
    bad = [
        ({"ticket_ids": [acme], "product": "config"}, 422, "ticket_ids"),
        ({"product": "config", "severities": [2]}, 422, "received_from"),
        ({"product": "audit", "severities": [2], "received_from": an_hour_ago()}, 422, "product"),
        (
            {
                "product": "config",
                "severities": [2],
                "received_from": an_hour_ago(),
                "received_to": an_hour_ago(),
            },
            422,
            "received_to",
        ),
        ({"ticket_ids": [acme, "0123456789ab"]}, 422, "ticket_ids"),
    ]
    for body, status, field in bad:
        response = await stack.http.post(
            f"/incidents/{incident}/links", json=body, headers=stack.as_(SUPPORT)
        )
        assert response.status_code == status, (body, response.text)
        assert field in response.text, (body, response.text)
    empty = await stack.http.post(
        f"/incidents/{incident}/updates", json={"message": ""}, headers=stack.as_(SUPPORT)
    )
    assert empty.status_code == 422 and "message" in empty.text
    # Nothing reached the ticket, and the incident's history holds no accepted request.
    assert (await stack.handle(acme).query("state"))["incident_id"] is None
    assert await requests_taken(stack, incident) == 0
    unknown = await stack.http.post(
        "/incidents/inc-0000000000/updates", json={"message": "x"}, headers=stack.as_(SUPPORT)
    )
    assert unknown.status_code == 404 and unknown.json()["rule"] == "unknown_incident"
    not_linked = await stack.http.delete(f"/incidents/{incident}/links/{acme}", headers=stack.as_(SUPPORT))
    assert not_linked.status_code == 409 and not_linked.json()["rule"] == "ticket_not_linked"
    await stack.http.post(
        f"/incidents/{incident}/resolve", json={"resolution": "ok"}, headers=stack.as_(SUPPORT)
    )
    await incident_until(stack, incident, lambda s: s["status"] == "resolved")
