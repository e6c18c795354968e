"""The console's incident pages (issue 19, DESIGN.md §13) over plain HTTP on the real app and a
Temporal dev server: support links a ticket from its page, the ticket shows the incident's
banner, the incident's page shows its counts, each update's delivery and the linked tickets'
next clocks, and its forms post an update, unlink a ticket and resolve it through the same
service as the API. A bad form is refused with its sentence and changes nothing. Who may open
which page or post which form is in tests/test_api_permissions.py."""

from __future__ import annotations

import re

from tests.fixtures_api import Stack, wait_until_recorded
from tests.incident_support import (
    CUSTOMER,
    SUPPORT,
    fanned_out,
    file_ticket,
    linked_to,
    open_incident,
    requests_taken,
    ticket_until,
)
from tests.test_api_permissions import console_as, console_form


def count(html: str, name: str) -> int:
    found = re.search(rf'data-testid="count-{name}">(\d+)<', html)
    assert found, f"no {name} count on the page"
    return int(found.group(1))


async def test_support_links_a_ticket_from_its_page_and_works_the_incident_from_the_console(
    module_stack: Stack,
) -> None:
    stack = module_stack
    incident_id = await open_incident(stack, title="Config reads fail")
    ticket = (await file_ticket(stack, "acme"))["ticket_id"]
    await wait_until_recorded(stack, ticket)

    page = await stack.http.get(f"/console/tickets/{ticket}", headers=console_as(SUPPORT))
    assert 'data-testid="link-incident"' in page.text
    assert f'<option value="{incident_id}">Config reads fail' in page.text
    linked = await stack.http.post(
        "/console/incidents/link",
        data=console_form(SUPPORT, {"incident_id": incident_id, "ticket_id": ticket}),
        headers=console_as(SUPPORT),
    )
    assert linked.status_code == 303, linked.text
    assert linked.headers["location"] == f"/console/tickets/{ticket}?done=link-incident"
    await ticket_until(stack, ticket, linked_to(incident_id))

    banner = (await stack.http.get(f"/console/tickets/{ticket}", headers=console_as(SUPPORT))).text
    assert 'data-testid="incident-banner"' in banner
    assert f'<a href="/console/incidents/{incident_id}">Config reads fail</a>' in banner
    assert 'data-testid="link-incident"' not in banner
    # The customer's own ticket names the incident, without a link to a page it may not open.
    own = (await stack.http.get(f"/console/tickets/{ticket}", headers=console_as(CUSTOMER))).text
    assert 'data-testid="incident-banner"' in own and "Config reads fail" in own
    assert f'href="/console/incidents/{incident_id}"' not in own

    listed = (await stack.http.get("/console/incidents", headers=console_as(SUPPORT))).text
    assert f'<a href="/console/incidents/{incident_id}">Config reads fail</a>' in listed
    incident = (await stack.http.get(f"/console/incidents/{incident_id}", headers=console_as(SUPPORT))).text
    assert (count(incident, "linked"), count(incident, "open")) == (1, 1)
    assert f'data-ticket="{ticket}"' in incident
    assert "First response" in incident  # the linked ticket's next clock, from the read model
    outage = incident.split('data-testid="incident-outage">', 1)[1].split("</dd>", 1)[0]
    assert "now (ongoing)" in outage  # open: the uptime report counts it down until now

    posted = await stack.http.post(
        f"/console/incidents/{incident_id}/updates",
        data=console_form(SUPPORT, {"message": "We are rolling back the config release"}),
        headers=console_as(SUPPORT),
    )
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"] == f"/console/incidents/{incident_id}?done=update"
    await fanned_out(stack, incident_id)
    incident = (await stack.http.get(f"/console/incidents/{incident_id}", headers=console_as(SUPPORT))).text
    assert "We are rolling back the config release" in incident
    assert "Delivered to 1 of 1 linked open tickets (done)" in incident
    assert 'data-testid="progress" max="1" value="1"' in incident

    unlinked = await stack.http.post(
        f"/console/incidents/{incident_id}/links/{ticket}/unlink",
        data=console_form(SUPPORT, {}),
        headers=console_as(SUPPORT),
    )
    assert unlinked.status_code == 303, unlinked.text
    await ticket_until(stack, ticket, linked_to(None))  # type: ignore[arg-type]
    page = await stack.http.get(f"/console/tickets/{ticket}", headers=console_as(SUPPORT))
    assert 'data-testid="incident-banner"' not in page.text

    resolved = await stack.http.post(
        f"/console/incidents/{incident_id}/resolve",
        data=console_form(SUPPORT, {"resolution": "Rolled back"}),
        headers=console_as(SUPPORT),
    )
    assert resolved.status_code == 303, resolved.text
    incident = (await stack.http.get(f"/console/incidents/{incident_id}", headers=console_as(SUPPORT))).text
    assert 'data-testid="incident-status">Resolved<' in incident
    outage = incident.split('data-testid="incident-outage">', 1)[1].split("</dd>", 1)[0]
    assert outage.count("<time ") == 2 and "ongoing" not in outage
    assert 'data-testid="update-form"' not in incident and 'data-testid="resolve-form"' not in incident
    # A resolved incident is no longer offered to link a ticket to.
    fresh = (await file_ticket(stack, "acme"))["ticket_id"]
    await wait_until_recorded(stack, fresh)
    offered = (await stack.http.get(f"/console/tickets/{fresh}", headers=console_as(SUPPORT))).text
    assert f'<option value="{incident_id}">' not in offered


async def test_an_empty_update_or_a_resolved_incident_is_refused_with_its_sentence_and_changes_nothing(
    module_stack: Stack,
) -> None:
    stack = module_stack
    incident_id = await open_incident(stack)
    before = await requests_taken(stack, incident_id)

    empty = await stack.http.post(
        f"/console/incidents/{incident_id}/updates",
        data=console_form(SUPPORT, {"message": ""}),
        headers=console_as(SUPPORT),
    )
    assert empty.status_code == 422, empty.text
    assert "Refused (422):</strong> message:" in empty.text
    assert await requests_taken(stack, incident_id) == before

    resolve = await stack.http.post(
        f"/incidents/{incident_id}/resolve", json={"resolution": "over"}, headers=stack.as_(SUPPORT)
    )
    assert resolve.status_code == 202, resolve.text
    again = await stack.http.post(
        f"/console/incidents/{incident_id}/updates",
        data=console_form(SUPPORT, {"message": "One more"}),
        headers=console_as(SUPPORT),
    )
    assert again.status_code == 409, again.text
    assert "Refused (409):</strong> The incident is resolved; open a new incident instead." in again.text


async def test_a_form_without_the_sessions_csrf_token_changes_nothing(module_stack: Stack) -> None:
    stack = module_stack
    incident_id = await open_incident(stack)
    before = await requests_taken(stack, incident_id)
    forged = await stack.http.post(
        f"/console/incidents/{incident_id}/updates",
        data={"message": "Forged", "csrf_token": "not-the-token"},
        headers=console_as(SUPPORT),
    )
    assert forged.status_code == 403, forged.text
    assert await requests_taken(stack, incident_id) == before
