"""/console/reports/what-if: the What if page (issue 20), admins only.

An admin pastes or uploads a candidate policy document, picks the window and the grouping,
and sees what `POST /policy/simulate` answers for the same body: before and after per group,
the clocks that flip, and the weekly first-response attainment drawn by the reports' chart.
Any other key gets the console's "no such page" (404), as for a page that is not there, and
the link to it is not in its navigation. Like the API, a simulation changes nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import whatif_service
from api.console import session
from api.console.forms import FormInvalid
from api.console.routes import not_found_page, render
from api.console.views import may_simulate
from api.deps import ClientDep
from api.errors import describe_validation
from store import report_sql
from workflows.models import OwningLine
from workflows.policy import TicketRules, current
from workflows.whatif_report import GroupBy

router = APIRouter(prefix="/console", include_in_schema=False)

PATH: Final = "/console/reports/what-if"
# A policy document is about 12 KB; a candidate far larger than that is not one.
MAX_CANDIDATE_BYTES: Final = 256 * 1024
GROUP_CHOICES: Final = [("", "Nothing (all tickets)")] + [(g.value, g.value) for g in GroupBy]


@dataclass(frozen=True)
class Simulation:
    """A valid what-if form: the candidate, the window [start, end) and the grouping."""

    rules: TicketRules
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


def parse_candidate(text: str) -> TicketRules:
    """The candidate policy document, validated; FormInvalid names the field at fault."""
    if not text.strip():
        raise FormInvalid("candidate: paste a policy document (GET /policy answers one) or upload its file.")
    if len(text.encode()) > MAX_CANDIDATE_BYTES:
        raise FormInvalid(
            f"candidate: larger than {MAX_CANDIDATE_BYTES // 1024} KiB; a policy document is not."
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormInvalid(
            f"candidate: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
            "start from the document GET /policy answers."
        ) from None
    if not isinstance(document, dict):
        raise FormInvalid("candidate: must be a JSON object, a policy document as GET /policy answers.")
    try:
        return TicketRules.model_validate(document)
    except ValidationError as err:
        errors = [{**error, "loc": ("candidate", *error["loc"])} for error in err.errors()]
        raise FormInvalid(describe_validation(errors)) from None


def _day(form: Any, name: str) -> datetime:
    raw = form.get(name)
    text = raw.strip() if isinstance(raw, str) else ""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FormInvalid(f"{name}: {text!r} is not a date; pick one (YYYY-MM-DD, UTC).") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_form(form: Any) -> Simulation:
    """The page's form as a simulation; FormInvalid names the first field at fault."""
    rules = parse_candidate(_candidate_text(form))
    start, end = _day(form, "from"), _day(form, "to")
    try:
        start, end = report_sql.check_period(start, end)
    except report_sql.ReportRangeError as err:
        raise FormInvalid(f"from/to: {err.message}") from None
    raw_group = form.get("group_by") or ""
    if raw_group and raw_group not in set(GroupBy):
        raise FormInvalid(f"group_by: {raw_group!r} is not one of {', '.join(GroupBy)}.")
    return Simulation(rules, start, end, GroupBy(raw_group) if raw_group else None)


def _defaults() -> dict[str, Any]:
    """The form as first shown: the current policy to edit, last month and this one so far."""
    today = datetime.now(UTC).date()
    start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return {
        "candidate": json.dumps(current().document(), indent=2),
        "from": start.isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "group_by": "",
    }


def _typed(form: Any) -> dict[str, Any]:
    """What was typed, to show again with the refusal."""
    typed = {name: form.get(name) for name in ("candidate", "from", "to", "group_by")}
    return {name: value if isinstance(value, str) else "" for name, value in typed.items()}


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
    return {"answer": answer, "groups": groups, "chart": chart, "version": simulation.rules.version}


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
    except FormInvalid as err:
        return _page(request, viewer, _typed(form), error=err.message, status_code=422)
    answer = await whatif_service.simulate_window(
        client=client,
        sessionmaker=request.app.state.sessionmaker,
        rules=simulation.rules,
        start=simulation.start,
        end=simulation.end,
        group_by=simulation.group_by,
        weeks=True,
    )
    typed = _typed(form)
    if not typed["candidate"]:
        typed["candidate"] = json.dumps(simulation.rules.document(), indent=2)
    return _page(request, viewer, typed, results=await _results(answer, simulation))
