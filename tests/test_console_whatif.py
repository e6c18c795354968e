"""The console's What if page (issue 20): an admin's candidate (a policy document, or one
customer's contract) over a window, for every customer or one, shows exactly what
POST /policy/simulate answers for the same body, from the read model's record of the tickets;
a candidate that fails validation names the field and changes nothing. Who may open it is in
tests/test_api_permissions.py."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.console.routes import TEMPLATES
from api.console.session import Viewer
from api.console.whatif_page import comparison_rows
from api.whatif_service import Candidate, compare, weekly_chart
from store.tickets import record_events, upsert_ticket_row
from store.whatif_inputs import record_inputs
from tests.factories import ADMIN as ADMIN_PRINCIPAL
from tests.fixtures_api import Stack
from tests.test_api_permissions import console_as, console_form
from tests.test_whatif import WEDNESDAY_9, WEDNESDAY_19, acked, standard_sev1_in
from tests.test_whatif_api import file_and_acknowledge, footprint
from workflows import policy
from workflows.actions.base import ACTIONS
from workflows.actions.resolve import Resolve
from workflows.models import AppliedAction, Principal, Role
from workflows.whatif import RecordedAction, RecordedTicket, simulate

ADMIN = "dev-admin"
PATH = "/console/reports/what-if"


def candidate_document(minutes: int = 120) -> dict[str, Any]:
    """Standard Sev 1 first responses in `minutes` (the issue's 2 h), all else as today."""
    document = policy.current().document()
    document["version"] = "candidate-standard-sev1"
    document["response_targets"]["standard"]["1"]["minutes"] = minutes
    return document


def days() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=1), today + timedelta(days=2)


def page_form(document: dict[str, Any], group_by: str = "customer") -> dict[str, str]:
    start, end = days()
    fields = {"candidate": json.dumps(document), "from": str(start), "to": str(end), "group_by": group_by}
    return console_form(ADMIN, fields)


def api_body(document: dict[str, Any], group_by: str = "customer") -> dict[str, Any]:
    start, end = days()
    return {
        "candidate": document,
        "from": f"{start}T00:00:00Z",
        "to": f"{end}T00:00:00Z",
        "group_by": group_by,
    }


CELLS = re.compile(
    r'<tr data-metric="([^"]+)">.*?'
    r'<td data-side="before">([^<]*)</td>\s*<td data-side="after">([^<]*)</td>',
    re.S,
)


def shown_groups(page: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Per group on the page: metric -> (before, after), as the cells read."""
    groups = {}
    for key, table in re.findall(r'data-group="([^"]*)">(.*?)</table>', page, re.S):
        cells = CELLS.findall(table)
        groups[key] = {metric: (before, after) for metric, before, after in cells}
    return groups


def shown_flips(page: str) -> list[str]:
    return re.findall(r'<tr data-flip="([^"]+)">', page)


def text(value: Any) -> str:
    return "—" if value is None else str(value)


def expected_groups(answer: dict[str, Any]) -> dict[str, dict[str, tuple[str, str]]]:
    """The API's answer flattened the way the page's rows name them, worked out here from the
    answer alone."""
    expected = {}
    for group in answer["groups"]:
        before, after = group["before"], group["after"]
        rows: dict[str, tuple[str, str]] = {}
        for metric in ("tickets", "first_response_met", "first_response_breached", "attainment_pct"):
            rows[metric] = (text(before[metric]), text(after[metric]))
        for line in sorted(set(before["breaches"]) | set(after["breaches"])):
            rows[f"breaches.{line}"] = (
                text(before["breaches"].get(line, 0)),
                text(after["breaches"].get(line, 0)),
            )
        for level in ("2", "3", "4"):
            rows[f"escalations.{level}"] = (
                text(before["escalations"][level]),
                text(after["escalations"][level]),
            )
        for metric in ("pages", "pages_after_hours", "mtta_mean_minutes", "mtta_p50_minutes"):
            rows[metric] = (text(before[metric]), text(after[metric]))
        expected[group["key"]] = rows
    return expected


async def test_the_page_shows_what_post_policy_simulate_answers_and_changes_nothing(
    module_stack: Stack,
) -> None:
    stack = module_stack
    ids = await file_and_acknowledge(stack)
    unchanged = await footprint(stack, ids)
    document = candidate_document()

    page = await stack.http.post(PATH, data=page_form(document), headers=console_as(ADMIN))
    api = await stack.http.post("/policy/simulate", json=api_body(document), headers=stack.as_(ADMIN))

    assert page.status_code == 200, page.text
    assert api.status_code == 200, api.text
    answer = api.json()
    assert answer["tickets"] >= 2
    shown = shown_groups(page.text)
    assert {"acme", "globex"} <= set(shown)
    assert shown == expected_groups(answer)
    assert shown_flips(page.text) == [f"{f['ticket_id']} {f['clock']}" for f in answer["flips"]]
    assert f"{answer['tickets']} tickets received" in page.text
    assert 'data-testid="whatif-chart"' in page.text and "data:image/svg+xml;base64," in page.text
    # The chart is an image in the page itself, which the console's CSP lets through.
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    # The candidate stays on the page to edit again.
    assert "candidate-standard-sev1" in page.text
    assert await footprint(stack, ids) == unchanged


async def test_an_uploaded_candidate_answers_as_the_pasted_one(module_stack: Stack) -> None:
    stack = module_stack
    document = candidate_document()
    pasted = await stack.http.post(PATH, data=page_form(document, "tier"), headers=console_as(ADMIN))
    form = page_form(document, "tier") | {"candidate": ""}
    upload = {"candidate_file": ("candidate.json", json.dumps(document).encode(), "application/json")}

    uploaded = await stack.http.post(PATH, data=form, files=upload, headers=console_as(ADMIN))

    assert pasted.status_code == uploaded.status_code == 200, uploaded.text
    assert shown_groups(uploaded.text) == shown_groups(pasted.text) != {}


async def test_a_candidate_that_fails_validation_names_the_field_and_shows_no_answer(
    module_stack: Stack,
) -> None:
    stack = module_stack
    start, end = days()
    broken = candidate_document(minutes=-5)
    cases = [
        (page_form(broken), "candidate.response_targets.standard.1.minutes"),
        (page_form(broken) | {"candidate": '{"version": '}, "candidate: not valid JSON (line 1, column 13"),
        (page_form(broken) | {"candidate": "[1, 2]"}, "candidate: must be a JSON object"),
        (page_form(candidate_document()) | {"from": "yesterday"}, "from: &#39;yesterday&#39; is not a date"),
        (page_form(candidate_document()) | {"from": str(end), "to": str(start)}, "from/to: `from`"),
        (
            page_form(candidate_document()) | {"group_by": "weather"},
            "group_by: &#39;weather&#39; is not one of",
        ),
    ]
    for form, field in cases:
        response = await stack.http.post(PATH, data=form, headers=console_as(ADMIN))
        assert response.status_code == 422, (field, response.text)
        assert "Refused (422):" in response.text and field in response.text, field
        assert 'data-testid="whatif-group"' not in response.text
        # What was typed is shown again, to correct.
        assert 'name="candidate"' in response.text
    # The API refuses the same candidate naming the same field.
    api = await stack.http.post("/policy/simulate", json=api_body(broken), headers=stack.as_(ADMIN))
    assert api.status_code == 422 and "candidate.response_targets.standard.1.minutes" in api.json()["detail"]


async def test_the_page_starts_from_the_current_policy_and_a_window(module_stack: Stack) -> None:
    response = await module_stack.http.get(PATH, headers=console_as(ADMIN))
    assert response.status_code == 200, response.text
    textarea = re.search(
        r'<textarea id="whatif-candidate" name="candidate"[^>]*>(.*?)</textarea>', response.text, re.S
    )
    assert textarea is not None
    shown = json.loads(html.unescape(textarea.group(1)))
    assert shown == policy.current().document()
    assert 'enctype="multipart/form-data"' in response.text
    assert 'name="csrf_token"' in response.text


async def test_a_what_if_form_without_the_sessions_token_runs_nothing(module_stack: Stack) -> None:
    form = page_form(candidate_document()) | {"csrf_token": "forged"}
    response = await module_stack.http.post(PATH, data=form, headers=console_as(ADMIN))
    assert response.status_code == 403
    assert 'data-testid="whatif-group"' not in response.text


# --- Hand-built tickets in the read model: the page's source --------------------------------------


def standard_sev1_set() -> list[RecordedTicket]:
    """tests/test_whatif.py's hand-checked set, resolved an hour after the acknowledgement and
    closed automatically a week later: at 2 h, "between" and "evening" flip (first response and
    the L2 acknowledgement, met -> breached); the others do not."""

    def resolved(ticket: RecordedTicket) -> RecordedTicket:
        [ack] = ticket.actions
        resolve = RecordedAction(
            ack.at + timedelta(hours=1), Resolve(actor=ADMIN_PRINCIPAL, resolution="fixed")
        )
        return RecordedTicket(ticket.opened, (ack, resolve), ticket.opened.received_at + timedelta(days=9))

    return [
        resolved(acked("globex", 1, WEDNESDAY_9, timedelta(hours=1))),
        resolved(acked("globex", 1, WEDNESDAY_9, timedelta(hours=3))),
        resolved(acked("globex", 1, WEDNESDAY_9, timedelta(hours=5))),
        resolved(acked("globex", 2, WEDNESDAY_9, timedelta(hours=3))),
        resolved(acked("globex", 1, WEDNESDAY_19, timedelta(hours=15))),
        resolved(acked("acme", 1, WEDNESDAY_9, timedelta(minutes=30))),
    ]


async def seed_recorded(
    sessionmaker: async_sessionmaker[AsyncSession], tickets: list[RecordedTicket]
) -> None:
    """Write recorded tickets into the read model as their workflows would have: the row and the
    timeline of their run under the pinned terms, their opening and their actions."""
    async with sessionmaker.begin() as session:
        for ticket in tickets:
            run = simulate(ticket)
            ticket_id = ticket.opened.ticket_id
            await upsert_ticket_row(session=session, row=run.state.row(ticket.until))
            await record_events(session=session, ticket_id=ticket_id, events=run.events)
            applied = [
                AppliedAction(
                    seq=n,
                    at=each.at,
                    update=ACTIONS.of(each.action).update,
                    body=each.action.model_dump(mode="json"),
                    signal=each.signal,
                )
                for n, each in enumerate(ticket.actions, start=1)
            ]
            await record_inputs(session=session, ticket_id=ticket_id, opened=ticket.opened, actions=applied)


def window_form(document: dict[str, Any] | None = None, **fields: str) -> dict[str, str]:
    """The page's form over the hand-built set's week (2026-12-02 and 03)."""
    shown = {
        "candidate": json.dumps(document or candidate_document()),
        "from": "2026-12-01",
        "to": "2026-12-05",
    }
    return console_form(ADMIN, shown | fields)


async def test_recorded_tickets_flip_on_the_page_as_worked_out_by_hand(module_stack: Stack) -> None:
    """The read model is the page's source: hand-built tickets written there flip under Standard
    Sev 1 in 2 h exactly as tests/test_whatif.py works them out, and a customer filter keeps
    only that customer's tickets (the API's `customer_id`)."""
    stack = module_stack
    tickets = standard_sev1_set()
    await seed_recorded(stack.sessionmaker, tickets)
    between, evening = tickets[1].opened.ticket_id, tickets[4].opened.ticket_id

    page = await stack.http.post(PATH, data=window_form(group_by="tier"), headers=console_as(ADMIN))

    assert page.status_code == 200, page.text
    assert sorted(shown_flips(page.text)) == sorted(
        f"{ticket_id} {clock}"
        for ticket_id in (between, evening)
        for clock in ("escalation_ack", "first_response")
    )
    shown = shown_groups(page.text)
    assert shown["standard"]["first_response_met"] == ("4", "2")
    assert shown["standard"]["attainment_pct"] == ("80.0", "40.0")
    assert shown["premium"]["first_response_met"] == ("1", "1")

    only = await stack.http.post(PATH, data=window_form(customer_id="acme"), headers=console_as(ADMIN))
    body = {"candidate": candidate_document(), "from": "2026-12-01T00:00:00Z", "to": "2026-12-05T00:00:00Z"}
    api = await stack.http.post(
        "/policy/simulate", json=body | {"customer_id": "acme"}, headers=stack.as_(ADMIN)
    )
    assert only.status_code == 200 and api.status_code == 200, only.text
    assert api.json()["tickets"] == 1 and shown_flips(only.text) == []
    assert shown_groups(only.text) == expected_groups(api.json())


async def test_a_candidate_contract_runs_its_customers_tickets_as_the_api_does(module_stack: Stack) -> None:
    """globex offered Sev 1 in 2 h by contract: the same flips as the policy candidate, for
    globex's tickets alone, and the answer of POST /policy/simulate's `candidate_contract`."""
    stack = module_stack
    tickets = standard_sev1_set()
    await seed_recorded(stack.sessionmaker, tickets)
    terms = (await stack.http.get("/customers/globex/contract", headers=stack.as_(ADMIN))).json()
    contract = {
        "tier": terms["tier"],
        "product_type": terms["product_type"],
        "timezone": terms["timezone"],
        "country": terms["country"],
        "overrides": {"response": {"1": {"minutes": 120, "calendar": "extended"}}},
    }
    form = window_form(
        candidate_kind="contract", candidate_contract=json.dumps({"customer_id": "globex", **contract})
    )

    page = await stack.http.post(PATH, data=form, headers=console_as(ADMIN))
    body = {
        "candidate_contract": contract,
        "customer_id": "globex",
        "from": "2026-12-01T00:00:00Z",
        "to": "2026-12-05T00:00:00Z",
    }
    api = await stack.http.post("/policy/simulate", json=body, headers=stack.as_(ADMIN))

    assert page.status_code == 200, page.text
    assert api.status_code == 200, api.text
    answer = api.json()
    assert answer["tickets"] == 5 * 2  # this test's five globex tickets and the previous test's
    assert shown_groups(page.text) == expected_groups(answer)
    assert shown_flips(page.text) == [f"{f['ticket_id']} {f['clock']}" for f in answer["flips"]]
    flipped = {f["ticket_id"] for f in answer["flips"]}
    assert {tickets[1].opened.ticket_id, tickets[4].opened.ticket_id} <= flipped
    assert "globex&#39;s candidate contract" in page.text
    # The catalog is as it was.
    assert (await stack.http.get("/customers/globex/contract", headers=stack.as_(ADMIN))).json() == terms


async def test_a_candidate_contract_that_fails_names_the_field(module_stack: Stack) -> None:
    stack = module_stack
    good = {"customer_id": "globex", "tier": "standard", "product_type": "platform", "timezone": "UTC"}
    cases = [
        ({"candidate_contract": ""}, "candidate_contract: paste a contract"),
        ({"candidate_contract": "{"}, "candidate_contract: not valid JSON"),
        (
            {"candidate_contract": json.dumps({**good, "customer_id": None})},
            "candidate_contract.customer_id: name",
        ),
        ({"candidate_contract": json.dumps({**good, "tier": "gold"})}, "candidate_contract.tier: "),
        ({"candidate_contract": json.dumps({**good, "warp": 9})}, "candidate_contract.warp: "),
        (
            {"candidate_contract": json.dumps({**good, "customer_id": "nobody"})},
            "candidate_contract.customer_id: no customer &#39;nobody&#39;",
        ),
        (
            {"candidate_contract": json.dumps({**good, "timezone": "Mars/Olympus"})},
            "candidate_contract.timezone: ",
        ),
        (
            {"candidate_contract": json.dumps(good), "customer_id": "acme"},
            "customer_id: the candidate contract is",
        ),
        ({"candidate_kind": "both"}, "candidate_kind: &#39;both&#39; is not one of"),
    ]
    for fields, field in cases:
        form = window_form(**({"candidate_kind": "contract"} | fields))
        response = await stack.http.post(PATH, data=form, headers=console_as(ADMIN))
        assert response.status_code == 422, (field, response.text)
        assert "Refused (422):" in response.text and field in response.text, (field, response.text)
        assert 'data-testid="whatif-group"' not in response.text
        assert 'name="candidate_contract"' in response.text


# --- Pure: the rows and the flips as the page renders them -----------------------------------------


def test_flips_and_changes_render_from_a_hand_built_answer() -> None:
    """The issue's hand-checked case (tests/test_whatif.py): two tickets flip at 2 h."""
    between = acked("globex", 1, WEDNESDAY_9, timedelta(hours=3))
    tickets = [acked("globex", 1, WEDNESDAY_9, timedelta(hours=1)), between]
    answer = compare(tickets, Candidate(rules=standard_sev1_in(120)), weeks=True)
    [group] = answer["groups"]
    rows = {row.metric: row for row in comparison_rows(group["before"], group["after"])}
    assert (rows["attainment_pct"].before, rows["attainment_pct"].after) == (100.0, 50.0)
    assert rows["attainment_pct"].change == "-50"
    assert rows["first_response_breached"].change == "+1"
    assert rows["pages"].change == "no change"
    assert rows["mtta_mean_minutes"].change == "no change"

    viewer = Viewer(principal=Principal(role=Role.ADMIN, name="dev-admin"), csrf_token="token")
    results = {"answer": answer, "groups": [{"key": "all", "rows": list(rows.values())}], "chart": None}
    page = TEMPLATES.env.get_template("whatif.html").render(
        viewer=viewer, csrf_token="token", form={}, results=results | {"what": "c"}, group_choices=[]
    )
    flipped = between.opened.ticket_id
    assert shown_flips(page) == [f"{flipped} escalation_ack", f"{flipped} first_response"]
    assert f'href="/console/tickets/{flipped}"' in page
    assert shown_groups(page)["all"]["attainment_pct"] == ("100.0", "50.0")


def test_the_weekly_chart_draws_before_and_after_with_the_reports_chart() -> None:
    weeks = [
        {"week": "2026-W49", "before": 100.0, "after": 50.0},
        {"week": "2026-W51", "before": None, "after": 0.0},
    ]
    start, end = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 12, 15, tzinfo=UTC)
    svg = weekly_chart(weeks, start=start, end=end, title="What if").decode()
    assert svg.startswith("<?xml") and 'id="before"' in svg and 'id="after"' in svg
    # Every week the window touches, by its Monday as the SLA chart labels them; W50 a gap.
    assert all(monday in svg for monday in ("23 Nov", "30 Nov", "07 Dec", "14 Dec"))
    assert "21 Dec" not in svg
