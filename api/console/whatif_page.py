"""/console/reports/what-if: the What if page (issue 20), admins only.

An admin pastes or uploads a candidate policy document, or pastes a candidate contract for one
customer (the body of PUT /customers/{id}/contract, with its `customer_id`), picks the window,
a customer if it likes, and the grouping, and sees what `POST /policy/simulate` answers for
the same body: before and after per group, the clocks that flip, and the weekly
first-response attainment drawn by the reports' chart.
Any other key gets the console's "no such page" (404), as for a page that is not there, and
the link to it is not in its navigation. Like the API, a simulation changes nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import whatif_service
from api.catalog_schemas import ContractUpdate
from api.console import session
from api.console.forms import FormInvalid
from api.console.routes import not_found_page, render
from api.console.views import may_simulate
from api.deps import ClientDep
from api.errors import describe_validation
from store import report_sql
from store.catalog import CatalogRefused, ContractNotFound, edited_terms
from workflows.models import OwningLine
from workflows.policy import TicketRules, current
from workflows.terms import ContractTerms
from workflows.whatif_report import GroupBy

router = APIRouter(prefix="/console", include_in_schema=False)
Model = TypeVar("Model", bound=BaseModel)

PATH: Final = "/console/reports/what-if"
# A policy document is about 12 KB; a candidate far larger than that is not one.
MAX_CANDIDATE_BYTES: Final = 256 * 1024
GROUP_CHOICES: Final = [("", "Nothing (all tickets)")] + [(g.value, g.value) for g in GroupBy]
CANDIDATE_KINDS: Final = ("policy", "contract")


@dataclass(frozen=True)
class Simulation:
    """A valid what-if form: the candidate (a policy document, or one customer's contract), the
    window [start, end), the customer whose tickets alone run (if any) and the grouping."""

    rules: TicketRules | None
    contract: ContractUpdate | None
    customer_id: str | None
    start: datetime
    end: datetime
    group_by: GroupBy | None


@dataclass(frozen=True)
class MetricRow:
    """One line of a group's before/after table."""

    metric: str
    label: str
    before: Any
    after: Any

    @property
    def change(self) -> str:
        if not all(isinstance(v, int | float) for v in (self.before, self.after)):
            return "—"
        delta = round(self.after - self.before, 2)
        return "no change" if delta == 0 else f"{delta:+g}"


def comparison_rows(before: dict[str, Any], after: dict[str, Any]) -> list[MetricRow]:
    """A group's before and after (a `POST /policy/simulate` group), metric by metric."""
    rows = [
        MetricRow("tickets", "Tickets", before["tickets"], after["tickets"]),
        MetricRow(
            "first_response_met",
            "First responses met",
            before["first_response_met"],
            after["first_response_met"],
        ),
        MetricRow(
            "first_response_breached",
            "First responses breached",
            before["first_response_breached"],
            after["first_response_breached"],
        ),
        MetricRow(
            "attainment_pct",
            "First-response attainment (%)",
            before["attainment_pct"],
            after["attainment_pct"],
        ),
    ]
    for line in OwningLine:
        if line.value in before["breaches"] or line.value in after["breaches"]:
            b, a = before["breaches"].get(line.value, 0), after["breaches"].get(line.value, 0)
            rows.append(MetricRow(f"breaches.{line.value}", f"Breaches: {line.label}", b, a))
    for level in ("2", "3", "4"):
        b, a = before["escalations"].get(level, 0), after["escalations"].get(level, 0)
        rows.append(MetricRow(f"escalations.{level}", f"Escalations to L{level}", b, a))
    for metric, label in (
        ("pages", "Pages"),
        ("pages_after_hours", "Pages outside business hours"),
        ("mtta_mean_minutes", "MTTA mean (min)"),
        ("mtta_p50_minutes", "MTTA p50 (min)"),
    ):
        rows.append(MetricRow(metric, label, before[metric], after[metric]))
    return rows


def _candidate_text(form: Any) -> str:
    upload = form.get("candidate_file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = upload.file.read(MAX_CANDIDATE_BYTES + 1)
        if len(raw) > MAX_CANDIDATE_BYTES:
            raise FormInvalid(
                f"candidate_file: larger than {MAX_CANDIDATE_BYTES // 1024} KiB; a policy document is not."
            )
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormInvalid(
                "candidate_file: not UTF-8 text; upload the JSON file of a policy document."
            ) from None
    text = form.get("candidate")
    return text if isinstance(text, str) else ""


def _json_object(text: str, field: str, what: str, hint: str) -> dict[str, Any]:
    """The pasted JSON object of `field` (a `what`); FormInvalid says what is wrong with it."""
    if not text.strip():
        raise FormInvalid(f"{field}: paste {what} ({hint}).")
    if len(text.encode()) > MAX_CANDIDATE_BYTES:
        raise FormInvalid(f"{field}: larger than {MAX_CANDIDATE_BYTES // 1024} KiB; {what} is not.")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormInvalid(
            f"{field}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); start from {hint}."
        ) from None
    if not isinstance(document, dict):
        raise FormInvalid(f"{field}: must be a JSON object, {what} ({hint}).")
    return document


def _validated(model: type[Model], document: dict[str, Any], field: str) -> Model:
    try:
        return model.model_validate(document)
    except ValidationError as err:
        errors = [{**error, "loc": (field, *error["loc"])} for error in err.errors()]
        raise FormInvalid(describe_validation(errors)) from None


def parse_candidate(text: str) -> TicketRules:
    """The candidate policy document, validated; FormInvalid names the field at fault."""
    hint = "the document GET /policy answers, or upload its file"
    return _validated(TicketRules, _json_object(text, "candidate", "a policy document", hint), "candidate")


def parse_contract(text: str) -> tuple[str, ContractUpdate]:
    """The candidate contract and its customer: the body of PUT /customers/{id}/contract with
    `customer_id` beside its terms, validated; FormInvalid names the field at fault."""
    hint = "the body of PUT /customers/{id}/contract with its customer_id"
    document = _json_object(text, "candidate_contract", "a contract", hint)
    customer_id = document.pop("customer_id", None)
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise FormInvalid("candidate_contract.customer_id: name the customer whose contract this is.")
    return customer_id.strip(), _validated(ContractUpdate, document, "candidate_contract")


def _day(form: Any, name: str) -> datetime:
    raw = form.get(name)
    text = raw.strip() if isinstance(raw, str) else ""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FormInvalid(f"{name}: {text!r} is not a date; pick one (YYYY-MM-DD, UTC).") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def parse_form(form: Any) -> Simulation:
    """The page's form as a simulation; FormInvalid names the first field at fault."""
    kind = _text(form, "candidate_kind") or "policy"
    if kind not in CANDIDATE_KINDS:
        raise FormInvalid(f"candidate_kind: {kind!r} is not one of {', '.join(CANDIDATE_KINDS)}.")
    customer_id = _text(form, "customer_id").strip() or None
    rules = contract = None
    if kind == "policy":
        rules = parse_candidate(_candidate_text(form))
    else:
        owner, contract = parse_contract(_text(form, "candidate_contract"))
        if customer_id is not None and customer_id != owner:
            raise FormInvalid(
                f"customer_id: the candidate contract is {owner!r}'s; leave the customer empty or "
                f"name {owner!r}."
            )
        customer_id = owner
    start, end = _day(form, "from"), _day(form, "to")
    try:
        start, end = report_sql.check_period(start, end)
    except report_sql.ReportRangeError as err:
        raise FormInvalid(f"from/to: {err.message}") from None
    raw_group = form.get("group_by") or ""
    if raw_group and raw_group not in set(GroupBy):
        raise FormInvalid(f"group_by: {raw_group!r} is not one of {', '.join(GroupBy)}.")
    return Simulation(rules, contract, customer_id, start, end, GroupBy(raw_group) if raw_group else None)


def _defaults() -> dict[str, Any]:
    """The form as first shown: the current policy to edit, last month and this one so far."""
    today = datetime.now(UTC).date()
    start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return {
        "candidate": json.dumps(current().document(), indent=2),
        "from": start.isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "group_by": "",
        "candidate_kind": "policy",
        "candidate_contract": "",
        "customer_id": "",
    }


FIELDS: Final = ("candidate", "candidate_kind", "candidate_contract", "customer_id", "from", "to", "group_by")


def _typed(form: Any) -> dict[str, Any]:
    """What was typed, to show again with the refusal."""
    return {name: _text(form, name) for name in FIELDS}


async def _results(answer: dict[str, Any], simulation: Simulation) -> dict[str, Any]:
    chart = None
    if answer["weeks"]:
        title = (
            "First-response attainment per week, before and after the candidate, "
            f"{simulation.start:%Y-%m-%d} to {simulation.end:%Y-%m-%d} (UTC)"
        )
        svg = await run_in_threadpool(
            whatif_service.weekly_chart,
            answer["weeks"],
            start=simulation.start,
            end=simulation.end,
            title=title,
        )
        chart = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    groups = [
        {"key": group["key"], "rows": comparison_rows(group["before"], group["after"])}
        for group in answer["groups"]
    ]
    if simulation.rules is not None:
        what = f"the candidate policy {simulation.rules.version}"
    else:
        what = f"{simulation.customer_id}'s candidate contract ({simulation.customer_id}'s tickets only)"
    return {"answer": answer, "groups": groups, "chart": chart, "what": what}


def _page(
    request: Request,
    viewer: session.Viewer,
    form: dict[str, Any],
    *,
    error: str | None = None,
    results: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "form": form,
        "error": error,
        "results": results,
        "group_choices": GROUP_CHOICES,
        "action": PATH,
        "nav": "whatif",
    }
    return render(request, "whatif.html", context, viewer=viewer, status_code=status_code)


@router.get("/reports/what-if")
async def whatif_page(request: Request, viewer: session.PageViewer) -> Response:
    if not may_simulate(viewer.principal):
        return not_found_page(request, viewer, None)
    return _page(request, viewer, _defaults())


@router.post("/reports/what-if")
async def whatif_simulate(request: Request, viewer: session.FormViewer, client: ClientDep) -> Response:
    """Run the candidate over the window, as POST /policy/simulate does, and show the answer
    (no redirect: a simulation changes nothing, so there is nothing to post/redirect/get)."""
    if not may_simulate(viewer.principal):
        return not_found_page(request, viewer, None)
    form = await request.form()
    try:
        simulation = parse_form(form)
        terms = await _contract_terms(request, simulation)
    except FormInvalid as err:
        return _page(request, viewer, _typed(form), error=err.message, status_code=422)
    answer = await whatif_service.simulate_window(
        client=client,
        sessionmaker=request.app.state.sessionmaker,
        rules=simulation.rules,
        contract=terms,
        start=simulation.start,
        end=simulation.end,
        customer_id=simulation.customer_id,
        group_by=simulation.group_by,
        weeks=True,
    )
    typed = _typed(form)
    if simulation.rules is not None and not typed["candidate"]:
        typed["candidate"] = json.dumps(simulation.rules.document(), indent=2)
    return _page(request, viewer, typed, results=await _results(answer, simulation))


async def _contract_terms(request: Request, simulation: Simulation) -> ContractTerms | None:
    """The candidate contract as intake would run it, checked as PUT /customers/{id}/contract
    checks an edit, and written nowhere."""
    if simulation.contract is None:
        return None
    assert simulation.customer_id is not None
    async with request.app.state.sessionmaker() as session:
        try:
            return await edited_terms(
                session=session, customer_id=simulation.customer_id, **simulation.contract.model_dump()
            )
        except ContractNotFound:
            raise FormInvalid(
                f"candidate_contract.customer_id: no customer {simulation.customer_id!r}; use an id from "
                "the catalog (GET /customers)."
            ) from None
        except CatalogRefused as err:
            raise FormInvalid(f"candidate_contract.{err.field}: {err.message}") from None
