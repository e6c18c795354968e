"""The support console: server-rendered pages for agents, partners and customers (issue 11).

`install(app)` adds its routes under /console, its static files (with the vendored htmx) under
/console/static, its answers for a missing session or a forged form, and the security headers
of its pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.console import incidents_page, session, whatif_page
from api.console.routes import render, router, see_other

STATIC_DIR: Final = Path(__file__).parent / "static"

# No inline script or style anywhere in the console, nothing from other sites, no framing.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_HEADERS: Final = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class ConsoleHeaders:
    """Security headers on every /console answer; other paths pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/console" or path.startswith("/console/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith("/console/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if not (static and h[0] == b"cache-control")]
                extra = [h for h in _HEADERS if not (static and h[0] == b"cache-control")]
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, with_headers)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, session.SignInRequired)
    if exc.fragment:
        # htmx follows HX-Redirect even on an error answer: the page goes to the sign-in form.
        response = render(request, "_gone.html", {"signed_out": True}, status_code=401)
        response.headers["HX-Redirect"] = session.sign_in_url("/console")
        return response
    return see_other(session.sign_in_url(exc.next_url if request.method == "GET" else None))


async def _bad_csrf_token(request: Request, exc: Exception) -> Response:
    return render(request, "forged.html", {}, status_code=403)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """An outage on a console page is a page that says so (503, Retry-After), not a problem
    document; a fragment gets the same page, which htmx swaps in. Elsewhere, the API's problem."""
    problem = await errors.service_error(request, exc)
    if problem.status_code != 503 or not request.url.path.startswith("/console"):
        return problem
    page = render(request, "unavailable.html", {}, status_code=503)
    page.headers["Retry-After"] = problem.headers["Retry-After"]
    return page


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(whatif_page.router)
    app.include_router(incidents_page.router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_exception_handler(session.SignInRequired, _sign_in_required)
    app.add_exception_handler(session.BadCsrfToken, _bad_csrf_token)
    # In place of errors.install's handlers for the same errors (installed before these).
    for error in errors.SERVICE_ERRORS:
        app.add_exception_handler(error, _unavailable)
    app.add_middleware(ConsoleHeaders)
