"""The API's side of observability: which ticket a request concerns (for the JSON logs),
request metrics (api/metrics.py), and tracing with FastAPI's OpenTelemetry instrumentation.

`create_app` calls `install(app, ...)` after its own middleware, so that what is installed
here sees every answer, and declares `TICKET_CONTEXT` as an app dependency.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from runtime.telemetry import current_ticket_id

TICKETS_PREFIX = "/tickets/"
# Probes and scrapes every few seconds would drown the traces that matter.
UNTRACED_URLS = "healthz,readyz,metrics"


async def bind_ticket_id(request: Request) -> None:
    """Every log line of a request on `/tickets/{ticket_id}...` carries that ticket's id.

    Async, so that it runs in the request's own context rather than a thread's copy of it."""
    ticket_id = request.path_params.get("ticket_id")
    if isinstance(ticket_id, str):
        current_ticket_id.set(ticket_id)


TICKET_CONTEXT = Depends(bind_ticket_id)


def _filed_ticket(message: Message) -> str | None:
    """The id of the ticket an intake answer points to (`Location: /tickets/<id>`)."""
    for name, value in message.get("headers", ()):
        if name.lower() == b"location":
            location = bytes(value).decode("latin-1")
            if location.startswith(TICKETS_PREFIX):
                return location[len(TICKETS_PREFIX) :].split("/", 1)[0] or None
    return None


class TicketLogContextMiddleware:
    """Scopes the request's ticket id to the request, and names the ticket before the answer
    goes out, so the server's access log line carries it too: the route's `{ticket_id}`, or
    the new ticket's id from an intake answer's Location."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = current_ticket_id.set(None)

        async def send_naming_the_ticket(message: Message) -> None:
            if message["type"] == "http.response.start":
                ticket_id = scope.get("path_params", {}).get("ticket_id") or _filed_ticket(message)
                if isinstance(ticket_id, str):
                    current_ticket_id.set(ticket_id)
            await send(message)

        try:
            await self.app(scope, receive, send_naming_the_ticket)
        finally:
            current_ticket_id.reset(token)


def install(app: FastAPI, *, tracer_provider: TracerProvider | None) -> None:
    """Outermost first: the trace's server span, then the request's ticket, then its count."""
    metrics.install(app)
    app.add_middleware(TicketLogContextMiddleware)
    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls=UNTRACED_URLS,
            exclude_spans=["receive", "send"],
        )
