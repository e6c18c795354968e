"""Who is signed in to the console, and the token every console form carries.

The console signs in with the same API keys as the API: the key a person pastes is kept in an
HttpOnly, SameSite=Strict cookie scoped to /console (Secure over https), and each request looks
its principal up exactly as `Authorization: Bearer` does (`store.keys.principal_for_secret`,
which hashes it). The key never appears in a page, a URL or a log line.

Forms carry a CSRF token bound to the session: an HMAC of a fixed label keyed by the API key,
so it is known only to pages rendered for that key, and stays valid across API replicas with
no server-side state. The sign-in form, which has no session yet, uses a double-submit token
instead: a random value in a SameSite=Strict cookie and in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.keys import principal_for_secret
from workflows.models import Principal

COOKIE_PATH = "/console"
KEY_COOKIE = "escalator_console"
SIGN_IN_COOKIE = "escalator_console_sign_in"
CSRF_FIELD = "csrf_token"
SIGN_IN_PATH = "/console/sign-in"
# A session cookie lasts as long as the browser session, at most this long.
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
    """The signed-in principal, and the token its forms carry."""

    principal: Principal
    csrf_token: str


def csrf_token_for(secret: str) -> str:
    return hmac.new(secret.encode("utf-8", "surrogatepass"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def tokens_match(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


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


async def principal_for_key(request: Request, secret: str) -> Principal | None:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        return await principal_for_secret(session, secret)


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def sign_in_url(next_url: str | None = None) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_url, safe='')}" if next_url else SIGN_IN_PATH


async def _viewer(request: Request, *, fragment: bool) -> Viewer:
    secret = (request.cookies.get(KEY_COOKIE) or "").strip()
    principal = await principal_for_key(request, secret) if secret else None
    if principal is None:
        raise SignInRequired(next_url=_here(request), fragment=fragment)
    return Viewer(principal=principal, csrf_token=csrf_token_for(secret))


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
