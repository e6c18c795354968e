"""/console: the support console's pages, fragments and form posts.

Every page takes the signed-in viewer (the principal of the key in the console's cookie) and
reads and acts through the same services as the API: the same reach (a foreign ticket is a
404 page), the same permission table, the same refusals, shown as their sentences.
Every form post carries the session's CSRF token and follows post/redirect/get.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api import incident_intake, report_cache
from api import tickets_service as service
from api.actions import action_route
from api.console import forms, session
from api.console.incident_views import banner, may_read_incidents, open_incidents
from api.console.queue import (
    ACTIVE,
    ALL,
    PAGE_SIZE,
    STATUS_CHOICES,
    QueueFilters,
    customers_in_reach,
)
from api.console.queue import (
    queue as read_queue,
)
from api.console.views import (
    LINE_NAMES,
    SEVERITY_NAMES,
    SIGNAL_LABELS,
    STATUS_NAMES,
    action_forms,
    clock_views,
    iso,
    may_simulate,
    utc_text,
)
from api.deps import ClientDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import TicketCreate
from runtime.settings import Settings
from store import report_sql, sla_report, uptime_report
from store import tickets as read_model
from store.catalog import get_contract_terms
from workflows.calendars import CalendarError
from workflows.entitlement import IntakeRefused, build_entitlement, quote_first_response
from workflows.enums import (
    CLOSED_STATES,
    Category,
    OwningLine,
    Product,
    ProductType,
    Role,
    Severity,
    TicketStatus,
    Tier,
)
from workflows.models import Principal, TicketEvent, TicketState
from workflows.permissions import TicketScope
from workflows.policy import current, rules_for

router = APIRouter(prefix="/console", include_in_schema=False)

TEMPLATES: Final = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["utc"] = utc_text
TEMPLATES.env.filters["iso"] = iso
TEMPLATES.env.globals.update(
    LINE_NAMES=LINE_NAMES,
    SEVERITY_NAMES=SEVERITY_NAMES,
    STATUS_NAMES=STATUS_NAMES,
    SIGNAL_LABELS=SIGNAL_LABELS,
    CSRF_FIELD=session.CSRF_FIELD,
    may_simulate=may_simulate,
    may_read_incidents=may_read_incidents,
)

# Products that make sense for each kind of contract.
PRODUCTS: Final = {
    ProductType.PLATFORM: [Product.IDENTITY, Product.AUDIT, Product.CONFIG, Product.BOT],
    ProductType.BESPOKE: [Product.BESPOKE],
    ProductType.PARTNER_DELIVERED: [Product.PARTNER_SOLUTION],
}

# How often the queue and a ticket's clocks refresh themselves (tests set app.state's shorter).
REFRESH_SECONDS: Final = 15


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    viewer: session.Viewer | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    base: dict[str, Any] = {"viewer": viewer, "now": datetime.now(UTC)}
    if viewer is not None:
        base["csrf_token"] = viewer.csrf_token
    return TEMPLATES.TemplateResponse(request, template, base | context, status_code=status_code)


def _refresh_seconds(request: Request) -> int:
    seconds: int = getattr(request.app.state, "console_refresh_seconds", REFRESH_SECONDS)
    return seconds


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def not_found_page(request: Request, viewer: session.Viewer | None, ticket_id: str | None) -> HTMLResponse:
    return render(request, "not_found.html", {"ticket_id": ticket_id}, viewer=viewer, status_code=404)


# --- Signing in and out --------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_page(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return _sign_in_form(request, next_url=session.safe_next(next_url))


def _sign_in_form(
    request: Request, *, next_url: str, error: str | None = None, status_code: int = 200
) -> Response:
    token = session.sign_in_token(request)
    response = render(
        request,
        "sign_in.html",
        {"next_url": next_url, "error": error, "csrf_token": token},
        status_code=status_code,
    )
    session.set_cookie(request, response, session.SIGN_IN_COOKIE, token, max_age=3600)
    return response


@router.post("/sign-in")
async def sign_in(
    request: Request,
    api_key: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/console",
) -> Response:
    target = session.safe_next(next_url)
    expected = request.cookies.get(session.SIGN_IN_COOKIE)
    if not expected or not session.tokens_match(expected, csrf_token):
        return _sign_in_form(
            request,
            next_url=target,
            error="The sign-in form had expired; paste your key again.",
            status_code=status.HTTP_403_FORBIDDEN,
        )
    secret = api_key.strip()
    key = await session.key_for_secret(request, secret) if secret else None
    if key is None:
        return _sign_in_form(
            request,
            next_url=target,
            error="That key is unknown or revoked. Paste the whole key: `make up` prints the demo keys, "
            "and an admin makes real ones with `escalator keys create`.",
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    response = see_other(target)
    session_id = await session.sign_in_session(request, key)
    session.set_cookie(request, response, session.SESSION_COOKIE, session_id, max_age=session.MAX_AGE_SECONDS)
    session.forget_cookie(request, response, session.SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, viewer: session.FormViewer) -> Response:
    await session.sign_out_session(request)
    response = see_other(session.SIGN_IN_PATH)
    session.forget_cookie(request, response, session.SESSION_COOKIE)
    return response


# --- The queue -----------------------------------------------------------------------------------


async def _queue_context(request: Request, viewer: session.Viewer, db: Any) -> dict[str, Any]:
    filters, problems = QueueFilters.parse(request.query_params)
    found = await read_queue(session=db, principal=viewer.principal, filters=filters)
    offset = filters.offset
    return {
        "queue": found,
        "filters": filters,
        "problems": problems,
        "query": filters.query(),
        "refresh_seconds": _refresh_seconds(request),
        "previous_page": filters.query(offset=max(offset - PAGE_SIZE, 0) or None) if offset else None,
        "next_page": filters.query(offset=offset + PAGE_SIZE) if found.total > offset + PAGE_SIZE else None,
    }


@router.get("")
async def queue_page(request: Request, viewer: session.PageViewer, db: SessionDep) -> Response:
    context = await _queue_context(request, viewer, db)
    customers = await customers_in_reach(session=db, principal=viewer.principal)
    status_labels = {ACTIVE: "Active (not resolved or closed)", ALL: "All"}
    choices = {
        "status": [
            (value, status_labels.get(value) or STATUS_NAMES[TicketStatus(value)]) for value in STATUS_CHOICES
        ],
        "tier": [(tier.value, tier.label) for tier in Tier],
        "severity": [(int(sev), SEVERITY_NAMES[sev]) for sev in Severity],
        "level": [(level, f"L{level}") for level in (1, 2, 3, 4)],
        "line": [(line.value, LINE_NAMES[line]) for line in OwningLine],
        "customer": [(c.id, f"{c.name} ({c.id})") for c in customers],
    }
    return render(request, "queue.html", context | {"choices": choices, "nav": "queue"}, viewer=viewer)


@router.get("/queue")
async def queue_rows(request: Request, viewer: session.FragmentViewer, db: SessionDep) -> Response:
    """The queue's rows alone: what the page polls to refresh itself."""
    context = await _queue_context(request, viewer, db)
    return render(request, "_queue_rows.html", context, viewer=viewer)


# --- A ticket ------------------------------------------------------------------------------------


def temporal_ui_link(request: Request, settings: Settings, workflow_id: str) -> str:
    base = (
        settings.temporal_ui_url
        or f"{request.url.scheme}://{request.url.hostname}:{settings.temporal_ui_port}"
    )
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


async def _timeline(db: Any, principal: Principal, state: TicketState) -> list[TicketEvent]:
    """Every event the viewer may read: those recorded, then those the workflow has not yet."""
    recorded = await read_model.get_timeline(session=db, ticket_id=state.ticket_id)
    seen = {event.seq for event in recorded}
    events = recorded + [event for event in state.events if event.seq not in seen]
    return service.visible_events(principal, events)


async def _ticket_page(
    request: Request,
    viewer: session.Viewer,
    db: Any,
    client: Any,
    settings: Settings,
    ticket_id: str,
    *,
    refusal: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        state = await service.ticket_state(client=client, principal=viewer.principal, ticket_id=ticket_id)
    except ApiError as err:
        if err.status_code == 404:
            return not_found_page(request, viewer, ticket_id)
        raise
    principal = viewer.principal
    engineer = principal.role in (Role.ADMIN, Role.SUPPORT)
    context = {
        "ticket": state,
        "clocks": clock_views(state),
        "timeline": await _timeline(db, principal, state),
        "forms": action_forms(principal, state),
        "refusal": refusal,
        "level_names": rules_for(state.entitlement.policy_version).level_names,
        "done": request.query_params.get("done"),
        "temporal_link": temporal_ui_link(request, settings, state.workflow_id) if engineer else None,
        "refresh_seconds": _refresh_seconds(request),
        "incident": await banner(client=client, principal=principal, incident_id=state.incident_id),
        "open_incidents": await open_incidents(
            client=client, db=db, principal=principal, task_queue=settings.task_queue
        )
        if state.incident_id is None and state.status not in CLOSED_STATES
        else [],
    }
    return render(request, "ticket.html", context, viewer=viewer, status_code=status_code)


async def ticket_refused(
    request: Request,
    viewer: session.Viewer,
    db: Any,
    client: Any,
    settings: Settings,
    ticket_id: str,
    action: str,
    err: ApiError,
) -> Response:
    """A refused form of the ticket page: the page again with the refusal's sentence (or the
    "not found" page, as a missing ticket answers)."""
    if err.status_code == 404:
        return not_found_page(request, viewer, ticket_id)
    refusal = {"action": action, "status": err.status_code, "detail": err.detail}
    return await _ticket_page(
        request, viewer, db, client, settings, ticket_id, refusal=refusal, status_code=err.status_code
    )


@router.get("/tickets/{ticket_id}")
async def ticket_page(
    request: Request,
    ticket_id: str,
    viewer: session.PageViewer,
    db: SessionDep,
    client: ClientDep,
    settings: SettingsDep,
) -> Response:
    return await _ticket_page(request, viewer, db, client, settings, ticket_id)


@router.get("/tickets/{ticket_id}/clocks")
async def ticket_clocks(
    request: Request, ticket_id: str, viewer: session.FragmentViewer, client: ClientDep
) -> Response:
    """The ticket's clocks alone: what its page polls to refresh them."""
    try:
        state = await service.ticket_state(client=client, principal=viewer.principal, ticket_id=ticket_id)
    except ApiError as err:
        if err.status_code == 404:
            return render(request, "_gone.html", {}, viewer=viewer, status_code=404)
        raise
    context = {"ticket": state, "clocks": clock_views(state), "refresh_seconds": _refresh_seconds(request)}
    return render(request, "_clocks.html", context, viewer=viewer)


@router.post("/tickets/{ticket_id}/{update}")
async def take_action(
    request: Request,
    ticket_id: str,
    update: str,
    viewer: session.FormViewer,
    db: SessionDep,
    client: ClientDep,
    settings: SettingsDep,
) -> Response:
    route = action_route(update)
    if route is None:
        return not_found_page(request, viewer, None)
    form = await request.form()
    try:
        body = forms.action_body(update, form)
        await service.act(
            client=client,
            session=db,
            principal=viewer.principal,
            ticket_id=ticket_id,
            update=update,
            action=route.action(body, viewer.principal),
            for_a_person=True,
        )
    except forms.FormInvalid as err:
        refusal = {"action": update, "status": 422, "detail": err.message}
        return await _ticket_page(
            request, viewer, db, client, settings, ticket_id, refusal=refusal, status_code=422
        )
    except ApiError as err:
        if err.status_code == 404:
            return not_found_page(request, viewer, ticket_id)
        refusal = {"action": update, "status": err.status_code, "detail": err.detail}
        return await _ticket_page(
            request, viewer, db, client, settings, ticket_id, refusal=refusal, status_code=err.status_code
        )
    return see_other(f"/console/tickets/{quote(ticket_id, safe='')}?done={quote(update, safe='')}")


# --- Filing a ticket -----------------------------------------------------------------------------


async def _file_context(
    db: Any, principal: Principal, customer_id: str | None, severity: Any = None
) -> dict[str, Any]:
    customers = await customers_in_reach(session=db, principal=principal)
    if principal.role == Role.CUSTOMER:
        customer_id = principal.customer_id
    elif customer_id is None and len(customers) == 1:
        customer_id = customers[0].id
    chosen = next((c for c in customers if c.id == customer_id), None)
    terms = await get_contract_terms(session=db, customer_id=chosen.id) if chosen else None
    return {
        "customers": customers,
        "customer": chosen,
        "terms": terms,
        "channels": [c.value for c in build_entitlement(terms, received_at=datetime.now(UTC)).channels]
        if terms
        else [],
        "severities": list(Severity),
        "products": [p.value for p in PRODUCTS[terms.product_type]] if terms else [],
        "categories": [c.value for c in Category if c not in current().out_of_scope],
        "quote": response_quote(terms, _severity(severity) or Severity.CRITICAL, datetime.now(UTC))
        if terms
        else None,
        "nav": "file",
    }


def _severity(raw: Any) -> Severity | None:
    text = str(raw or "").strip()
    return Severity(int(text)) if text in ("1", "2", "3", "4") else None


@router.get("/file")
async def file_page(
    request: Request,
    viewer: session.PageViewer,
    db: SessionDep,
    customer_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    context = await _file_context(db, viewer.principal, customer_id)
    return render(
        request,
        "file.html",
        context | {"form": {}, "error": None, "idempotency_key": uuid.uuid4().hex},
        viewer=viewer,
    )


def response_quote(terms: Any, severity: Severity, now: datetime) -> dict[str, Any]:
    """When a first response to a ticket filed `now` would be due, under the contract's own
    terms: the arithmetic of GET /sla/deadline and of the ticket's workflow."""
    quote = quote_first_response(terms, severity=severity, submitted_at=now)
    target = {"label": quote.target, "minutes": quote.target_minutes, "binding": quote.binding}
    return {"due": quote.response_due, "target": target, "timezone": terms.timezone, "severity": severity}


@router.get("/file/quote")
async def file_quote(
    request: Request,
    viewer: session.FragmentViewer,
    db: SessionDep,
    customer_id: Annotated[str | None, Query(max_length=100)] = None,
    severity: Annotated[str | None, Query(max_length=4)] = None,
) -> Response:
    """The first-response deadline the intake form shows before it is submitted."""
    context = await _file_context(db, viewer.principal, customer_id, severity)
    quote_ = context["quote"] if _severity(severity) else None
    return render(request, "_quote.html", {"quote": quote_}, viewer=viewer)


@router.post("/file")
async def file_ticket(
    request: Request,
    viewer: session.FormViewer,
    db: SessionDep,
    client: ClientDep,
    settings: SettingsDep,
) -> Response:
    form = await request.form()
    fields = forms.form_fields(form)
    if viewer.principal.role == Role.CUSTOMER:
        fields["customer_id"] = viewer.principal.customer_id
    raw_key = form.get("idempotency_key")
    key = raw_key if isinstance(raw_key, str) and 0 < len(raw_key) <= 200 else None
    try:
        ticket = forms.parse(TicketCreate, fields)
        assert isinstance(ticket, TicketCreate)
        state, _ = await service.open_ticket(
            client=client,
            session=db,
            task_queue=settings.task_queue,
            principal=viewer.principal,
            request=ticket,
            idempotency_key=key,
            terms_by_revision=request.app.state.terms_by_revision,
            incident_cache_seconds=settings.incident_cache_seconds,
            auto_incident=incident_intake.auto_incident_rule(settings),
        )
    except (forms.FormInvalid, IntakeRefused, CalendarError, ApiError) as err:
        detail = getattr(err, "message", None) or getattr(err, "detail", None) or str(err)
        code = err.status_code if isinstance(err, ApiError) else 422
        context = await _file_context(db, viewer.principal, fields.get("customer_id"), fields.get("severity"))
        return render(
            request,
            "file.html",
            context | {"form": fields, "error": detail, "idempotency_key": uuid.uuid4().hex},
            viewer=viewer,
            status_code=code,
        )
    return see_other(f"/console/tickets/{state.ticket_id}?done=filed")


# --- Reports -------------------------------------------------------------------------------------


def _report_period(request: Request) -> tuple[datetime, datetime, str, list[str]]:
    problems: list[str] = []
    today = datetime.now(UTC).date()
    start_default = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    end_default = today + timedelta(days=1)

    def day(name: str, default: date) -> date:
        raw = request.query_params.get(name, "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            problems.append(f"{name!r} is not a date (YYYY-MM-DD); {default} is shown.")
            return default

    start, end = day("from", start_default), day("to", end_default)
    month = request.query_params.get("month", "").strip() or f"{today:%Y-%m}"
    return (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC),
        month,
        problems,
    )


@router.get("/reports")
async def reports_page(request: Request, viewer: session.PageViewer, db: SessionDep) -> Response:
    start, end, month, problems = _report_period(request)
    raw_group = request.query_params.get("group_by", "tier")
    group_by = (
        sla_report.ReportGroupBy(raw_group)
        if raw_group in set(sla_report.ReportGroupBy)
        else sla_report.ReportGroupBy.TIER
    )
    scope = TicketScope.of(current(), viewer.principal)
    groups: list[sla_report.SlaGroup] = []
    uptime: list[uptime_report.UptimeRow] = []
    try:
        start, end = report_sql.check_period(start, end)
        groups = await report_cache.sla_groups(
            request, session=db, start=start, end=end, group_by=group_by, scope=scope
        )
    except report_sql.ReportRangeError as err:
        problems.append(err.message)
    try:
        uptime = await report_cache.uptime_rows(
            request, session=db, month=month, customer_id=None, scope=scope
        )
    except report_sql.ReportRangeError as err:
        problems.append(err.message)
    context = {
        "start": start.date(),
        "end": end.date(),
        "month": month,
        "group_by": group_by.value,
        "group_choices": [g.value for g in sla_report.ReportGroupBy],
        "groups": groups,
        "uptime": uptime,
        "problems": problems,
        "chart_query": f"from={start.date()}&to={end.date()}",
        "nav": "reports",
    }
    return render(request, "reports.html", context, viewer=viewer)


@router.get("/reports/sla-chart.svg")
async def reports_chart(request: Request, viewer: session.PageViewer, db: SessionDep) -> Response:
    start, end, _, _ = _report_period(request)
    try:
        start, end = report_sql.check_period(start, end)
    except report_sql.ReportRangeError as err:
        return Response(err.message, status_code=422, media_type="text/plain")
    scope = TicketScope.of(current(), viewer.principal)
    svg = await report_cache.sla_chart(request, session=db, start=start, end=end, scope=scope)
    return Response(svg, media_type="image/svg+xml")
