"""Who is signed in to the console, and the token every console form carries.

The console signs in with the same API keys as the API, but its cookie never holds the key:
signing in opens a server-side session (store/console_sessions.py) and the cookie holds only
its random id (HttpOnly, SameSite=Strict, scoped to /console). The database keeps the id's
SHA-256, the key it acts as, and its expiry; each request looks the session and its key up, so
signing out (which deletes the session) or revoking the key ends it at once. The cookie is
Secure when the configured public URL (ESCALATOR_PUBLIC_URL) is https, whatever scheme a
proxy in front forwards. The key never appears in a page, a URL, a cookie or a log line.

Forms carry a CSRF token bound to the session: an HMAC of a fixed label keyed by the session
id, so it is known only to pages rendered for that session, and stays valid across API
replicas with no further state. The sign-in form, which has no session yet, uses a
double-submit token instead: a random value in a SameSite=Strict cookie and in the form.
Each signed-in request spends a token of the key's console rate limit (api/rate_limit.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.rate_limit import check_console_request
from store.console_sessions import close_session, key_of_session, open_session
from store.keys import ApiKeyPublic, live_key_for_secret
from workflows.models import Principal

COOKIE_PATH = "/console"
SESSION_COOKIE = "escalator_console"
SIGN_IN_COOKIE = "escalator_console_sign_in"
CSRF_FIELD = "csrf_token"
SIGN_IN_PATH = "/console/sign-in"
# A session lasts as long as the browser session, at most this long (cookie and server row).
MAX_AGE_SECONDS = 12 * 3600

_CSRF_LABEL = b"escalator console form v1"


class SignInRequired(Exception):
    """No valid key in the cookie: a page redirects to the sign-in page, a fragment answers 401."""

    def __init__(self, *, next_url: str, fragment: bool) -> None:
        super().__init__("sign in to the console")
        self.next_url = next_url
        self.fragment = fragment


class BadCsrfToken(Exception):
    """A console form came without the token of the signed-in session: nothing is changed."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in principal, the id of its key, and the token its forms carry."""

    principal: Principal
    csrf_token: str
    key_id: str = ""


def csrf_token_for(session_id: str) -> str:
    return hmac.new(session_id.encode("utf-8", "surrogatepass"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _is_https(request: Request) -> bool:
    """The configured public URL's scheme decides, not the request's: behind a proxy that
    ends TLS the API sees http, and a Secure cookie must still be Secure."""
    public_url: str = request.app.state.settings.public_url
    return public_url.lower().startswith("https://")


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=_is_https(request),
        httponly=True,
        samesite="strict",
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=_is_https(request), httponly=True, samesite="strict"
    )


def sign_in_token(request: Request) -> str:
    """The sign-in form's double-submit token: the cookie's, or a new one the page then sets."""
    token = request.cookies.get(SIGN_IN_COOKIE)
    return token if token and len(token) == 43 else secrets.token_urlsafe(32)


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


async def key_for_secret(request: Request, secret: str) -> ApiKeyPublic | None:
    async with _sessionmaker(request)() as session:
        return await live_key_for_secret(session, secret)


async def sign_in_session(request: Request, key: ApiKeyPublic) -> str:
    """Open a session for `key`; its id is what the cookie holds. Signing in spends a token
    of the key's console limit, so a key cannot fill the sessions table."""
    check_console_request(request, key.id)
    async with _sessionmaker(request)() as session:
        return await open_session(session=session, key_id=key.id, lifetime=timedelta(seconds=MAX_AGE_SECONDS))


async def sign_out_session(request: Request) -> None:
    session_id = (request.cookies.get(SESSION_COOKIE) or "").strip()
    if session_id:
        async with _sessionmaker(request)() as session:
            await close_session(session=session, session_id=session_id)


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def sign_in_url(next_url: str | None = None) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_url, safe='')}" if next_url else SIGN_IN_PATH


async def _viewer(request: Request, *, fragment: bool) -> Viewer:
    session_id = (request.cookies.get(SESSION_COOKIE) or "").strip()
    key = None
    if session_id:
        async with _sessionmaker(request)() as session:
            key = await key_of_session(session=session, session_id=session_id)
    if key is None:
        raise SignInRequired(next_url=_here(request), fragment=fragment)
    check_console_request(request, key.id)
    return Viewer(principal=key.principal, csrf_token=csrf_token_for(session_id), key_id=key.id)


async def page_viewer(request: Request) -> Viewer:
    return await _viewer(request, fragment=False)


async def fragment_viewer(request: Request) -> Viewer:
    return await _viewer(request, fragment=True)


async def form_viewer(request: Request) -> Viewer:
    """The viewer of a form post, once its CSRF token proved the form is the session's own."""
    viewer = await _viewer(request, fragment=False)
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not tokens_match(viewer.csrf_token, given if isinstance(given, str) else None):
        raise BadCsrfToken
    return viewer


PageViewer = Annotated[Viewer, Depends(page_viewer)]
FragmentViewer = Annotated[Viewer, Depends(fragment_viewer)]
FormViewer = Annotated[Viewer, Depends(form_viewer)]


def safe_next(next_url: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if next_url and next_url.startswith("/console") and not next_url.startswith("//"):
        if "\\" not in next_url and all(ch.isprintable() for ch in next_url):
            return next_url
    return "/console"
