"""The console over plain HTTP: signing in and out, its cookie, CSRF refusals that change
nothing, escaping, the 404 page, the action forms each principal is offered, inline refusals,
the intake quote, and the queue's order and filters. The browser tests are in tests/browser/."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.console.session import SESSION_COOKIE, SIGN_IN_COOKIE, csrf_token_for
from store.keys import create_key
from tests.browser.site import Site, running_console
from tests.fixtures_api import (
    Stack,
    console_session_id,
    record_written,
    settled_state,
    sqlite_stack,
    wait_for_event,
)
from tests.test_api_permissions import console_as, file_ticket, unchanged_proof
from workflows.enums import Role

ADMIN, SUPPORT, PARTNER, CUSTOMER = "dev-admin", "dev-support", "dev-partner-northwind", "dev-customer-acme"


@asynccontextmanager
async def browser_like(stack: Stack, base_url: str = "http://api") -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar of its own on the stack's app, as one browser would be."""
    async with httpx.AsyncClient(transport=stack.http._transport, base_url=base_url) as client:
        yield client


def hidden(name: str, html: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def hidden_time(html: str) -> str:
    found = re.search(r'<time datetime="([^"]+)"', html)
    assert found, "no time in the fragment"
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    cookies: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            cookies[name] = cookie
    return cookies


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    page = await client.get("/console/sign-in")
    token = hidden("csrf_token", page.text)
    return await client.post(
        "/console/sign-in", data={"api_key": secret, "csrf_token": token, "next": "/console"}
    )


# --- Signing in and out -----------------------------------------------------------------------


async def test_sign_in_keeps_an_opaque_session_id_in_an_httponly_strict_cookie_for_the_console_only(
    module_stack: Stack,
) -> None:
    async with browser_like(module_stack) as browser:
        anonymous = await browser.get("/console/reports")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/sign-in?next=%2Fconsole%2Freports"

        response = await sign_in(browser, SUPPORT)

        assert response.status_code == 303 and response.headers["location"] == "/console"
        cookie = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
        # The cookie holds a random session id, never the key.
        assert cookie.value != SUPPORT and SUPPORT not in cookie.value and len(cookie.value) >= 43
        assert cookie["httponly"] is True and cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/console" and not cookie["secure"]
        queue = await browser.get("/console")
        assert queue.status_code == 200 and "support:dev-support" in queue.text
        # The key is never written into a page, only its session's form token.
        assert SUPPORT not in queue.text.replace("support:dev-support", "")
        assert hidden("csrf_token", queue.text) == csrf_token_for(cookie.value)
        # The API itself does not take the console's cookie: it wants its bearer key.
        assert (await browser.get("/tickets")).status_code == 401


async def test_the_cookie_is_secure_when_the_public_url_is_https_whatever_the_request_scheme(
    module_stack: Stack, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # The configured public URL is http: a request that says https does not make it Secure.
    async with browser_like(module_stack, base_url="https://api") as browser:
        response = await sign_in(browser, CUSTOMER)
        assert response.status_code == 303
        assert not set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["secure"]
    async with sqlite_stack(dev_env, tmp_path / "https.db", public_url="https://support.example") as stack:
        # Behind a proxy that ends TLS the API sees http; the public URL is https, so it is Secure.
        async with browser_like(stack) as browser:
            page = await browser.get("/console/sign-in")
            assert set_cookies(page)[SIGN_IN_COOKIE][SIGN_IN_COOKIE]["secure"] is True
        async with browser_like(stack, base_url="https://api") as browser:
            response = await sign_in(browser, CUSTOMER)
            assert response.status_code == 303
            assert set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["secure"] is True


async def test_an_unknown_key_or_a_sign_in_form_from_elsewhere_signs_nobody_in(module_stack: Stack) -> None:
    async with browser_like(module_stack) as browser:
        unknown = await sign_in(browser, "esk_not-a-key")
        assert unknown.status_code == 401 and "unknown or revoked" in unknown.text
        assert SESSION_COOKIE not in set_cookies(unknown)
        assert "esk_not-a-key" not in unknown.text
    async with browser_like(module_stack) as browser:
        # Login CSRF: a post without the sign-in page's own token (its cookie) is refused.
        forged = await browser.post(
            "/console/sign-in", data={"api_key": SUPPORT, "csrf_token": "x" * 43, "next": "/console"}
        )
        assert forged.status_code == 403 and SESSION_COOKIE not in set_cookies(forged)
        assert (await browser.get("/console")).status_code == 303


async def test_sign_in_returns_only_to_console_pages(module_stack: Stack) -> None:
    async with browser_like(module_stack) as browser:
        page = await browser.get("/console/sign-in?next=https%3A%2F%2Fevil.example%2F")
        assert hidden("next", page.text) == "/console"
    for target, expected in [("//evil.example/", "/console"), ("/console/file", "/console/file")]:
        async with browser_like(module_stack) as browser:
            token = hidden("csrf_token", (await browser.get("/console/sign-in")).text)
            response = await browser.post(
                "/console/sign-in", data={"api_key": SUPPORT, "csrf_token": token, "next": target}
            )
            assert response.headers["location"] == expected


async def test_sign_out_needs_the_form_token_and_then_revokes_the_session_on_the_server(
    module_stack: Stack,
) -> None:
    async with browser_like(module_stack) as browser:
        await sign_in(browser, ADMIN)
        old_cookie = browser.cookies[SESSION_COOKIE]
        refused = await browser.post("/console/sign-out", data={})
        assert refused.status_code == 403
        assert (await browser.get("/console")).status_code == 200
        token = hidden("csrf_token", (await browser.get("/console")).text)
        signed_out = await browser.post("/console/sign-out", data={"csrf_token": token})
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/console/sign-in"
        assert set_cookies(signed_out)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
        assert (await browser.get("/console")).status_code == 303
    # A copy of the old cookie, kept by an attacker or a browser that ignored the deletion,
    # signs nobody in: the session is gone from the server.
    replayed = await module_stack.http.get("/console", headers={"Cookie": f"{SESSION_COOKIE}={old_cookie}"})
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/console/sign-in")
    fragment = await module_stack.http.get(
        "/console/queue", headers={"Cookie": f"{SESSION_COOKIE}={old_cookie}"}
    )
    assert fragment.status_code == 401


async def test_a_revoked_key_ends_the_console_session(module_stack: Stack) -> None:
    async with module_stack.sessionmaker() as session:
        key, secret = await create_key(
            session=session, name=f"anna-{uuid.uuid4().hex[:6]}", role=Role.SUPPORT, level=2
        )
    async with browser_like(module_stack) as browser:
        await sign_in(browser, secret)
        assert (await browser.get("/console")).status_code == 200
        revoked = await module_stack.http.delete(f"/api-keys/{key.id}", headers=module_stack.as_(ADMIN))
        assert revoked.status_code == 200
        assert (await browser.get("/console")).status_code == 303


# --- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [None, "", "not-the-token", csrf_token_for(console_session_id(ADMIN))],
    ids=["missing", "empty", "wrong", "another-sessions"],
)
async def test_an_action_form_without_the_sessions_token_changes_nothing(
    module_stack: Stack, token: str | None
) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "acme")
    before = await unchanged_proof(stack, ticket_id)
    form = {"note": "No longer needed"} | ({"csrf_token": token} if token is not None else {})
    for action in ("acknowledge", "close"):
        response = await stack.http.post(
            f"/console/tickets/{ticket_id}/{action}", data=form, headers=console_as(SUPPORT)
        )
        assert response.status_code == 403, response.text
        assert "Nothing was changed" in response.text
    filed = await stack.http.post(
        "/console/file",
        data={
            "customer_id": "acme",
            "title": "t",
            "description": "d",
            "severity": "3",
            "product": "audit",
            "channel": "email",
            "category": "bug",
        }
        | ({"csrf_token": token} if token is not None else {}),
        headers=console_as(SUPPORT),
    )
    assert filed.status_code == 403
    assert await unchanged_proof(stack, ticket_id) == before


# --- Pages ------------------------------------------------------------------------------------


async def test_everything_users_typed_is_escaped(module_stack: Stack) -> None:
    stack = module_stack
    title = "<script>alert('t')</script>"
    body = {
        "customer_id": "acme",
        "title": title,
        "description": '"><img src=x onerror=alert(1)>',
        "severity": 3,
        "product": "audit",
        "channel": "email",
        "category": "bug",
    }
    created = await stack.http.post("/tickets", json=body, headers=stack.as_(ADMIN))
    ticket_id = created.json()["ticket_id"]
    comment = await stack.http.post(
        f"/tickets/{ticket_id}/comment", json={"body": "<b>bold</b> & <i>it</i>"}, headers=stack.as_(CUSTOMER)
    )
    assert comment.status_code == 200
    await settled_state(stack, ticket_id)
    page = (await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(SUPPORT))).text
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;it&lt;/i&gt;" in page
    for raw in (title, "<img src=x", "<b>bold</b>"):
        assert raw not in page
    queue = (await stack.http.get("/console?customer=acme", headers=console_as(SUPPORT))).text
    assert "&lt;script&gt;" in queue and title not in queue


async def test_console_pages_forbid_inline_script_and_framing(module_stack: Stack) -> None:
    response = await module_stack.http.get("/console/sign-in")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text  # every script is a file of ours
    # The API's own answers are left as they were.
    assert "content-security-policy" not in (await module_stack.http.get("/policy")).headers


async def test_a_foreign_ticket_is_the_same_404_page_as_a_missing_one(module_stack: Stack) -> None:
    stack = module_stack
    foreign = await file_ticket(stack, "contoso")
    missing = f"nosuch{uuid.uuid4().hex[:6]}"
    seen = await stack.http.get(f"/console/tickets/{foreign}", headers=console_as(CUSTOMER))
    unseen = await stack.http.get(f"/console/tickets/{missing}", headers=console_as(CUSTOMER))
    assert seen.status_code == unseen.status_code == 404
    assert seen.text.replace(foreign, "X") == unseen.text.replace(missing, "X")
    assert "Not found" in seen.text


def offered(html: str, ticket_id: str) -> set[str]:
    return set(re.findall(rf'action="/console/tickets/{ticket_id}/([a-z-]+)"', html))


# Written out by hand from DESIGN.md §11, for an open Sev 3 ticket that nobody acknowledged.
OFFERED_ON_OPEN = {
    (ADMIN, "acme"): {
        "acknowledge",
        "comment",
        "escalate",
        "change-severity",
        "wait-on-customer",
        "resolve",
        "close",
    },
    (SUPPORT, "acme"): {
        "acknowledge",
        "comment",
        "escalate",
        "change-severity",
        "wait-on-customer",
        "resolve",
        "close",
    },
    # Support resolves no partner ticket; only the partner hands off.
    (SUPPORT, "contoso"): {"acknowledge", "comment", "change-severity", "wait-on-customer", "close"},
    (PARTNER, "contoso"): {
        "acknowledge",
        "comment",
        "handoff",
        "change-severity",
        "wait-on-customer",
        "resolve",
        "close",
    },
    (CUSTOMER, "acme"): {"comment", "close"},
}


@pytest.mark.parametrize(
    ("who", "customer"), list(OFFERED_ON_OPEN), ids=[f"{w}-{c}" for w, c in OFFERED_ON_OPEN]
)
async def test_a_ticket_page_offers_exactly_the_actions_the_principal_may_take(
    module_stack: Stack, who: str, customer: str
) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, customer)
    page = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(who))
    assert offered(page.text, ticket_id) == OFFERED_ON_OPEN[who, customer]
    assert ('value="internal"' in page.text) == (who != CUSTOMER)
    assert ("Temporal UI" in page.text) == (who in (ADMIN, SUPPORT))


async def test_the_offer_follows_the_tickets_state(module_stack: Stack) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "acme")
    await stack.http.post(f"/tickets/{ticket_id}/wait-on-customer", json={}, headers=stack.as_(SUPPORT))
    waiting = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(CUSTOMER))
    assert offered(waiting.text, ticket_id) == {"comment", "resume", "close"}
    await stack.http.post(
        f"/tickets/{ticket_id}/resolve", json={"resolution": "Fixed"}, headers=stack.as_(SUPPORT)
    )
    resolved = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(CUSTOMER))
    assert offered(resolved.text, ticket_id) == {"comment", "reopen", "close"}
    await stack.http.post(f"/tickets/{ticket_id}/close", json={}, headers=stack.as_(SUPPORT))
    closed = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(SUPPORT))
    assert offered(closed.text, ticket_id) == set()


async def test_a_refusal_shows_its_sentence_next_to_its_form_and_changes_nothing(module_stack: Stack) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "acme")
    before = await unchanged_proof(stack, ticket_id)
    form = {"csrf_token": csrf_token_for(console_session_id(SUPPORT))}
    closed = await stack.http.post(
        f"/console/tickets/{ticket_id}/close", data=form, headers=console_as(SUPPORT)
    )
    assert closed.status_code == 422
    assert re.search(
        r'id="close-refusal">.*Refused \(422\):.*first response clock is still open', closed.text
    )
    invalid = await stack.http.post(
        f"/console/tickets/{ticket_id}/escalate", data=form | {"level": "2"}, headers=console_as(SUPPORT)
    )
    assert invalid.status_code == 422 and "trigger: is required." in invalid.text
    assert await unchanged_proof(stack, ticket_id) == before


async def test_an_action_that_applies_shows_on_the_page_it_returns_to(module_stack: Stack) -> None:
    stack = module_stack
    ticket_id = await file_ticket(stack, "acme")
    form = {
        "csrf_token": csrf_token_for(console_session_id(SUPPORT)),
        "body": "Looking at the export job",
        "visibility": "internal",
    }
    done = await stack.http.post(
        f"/console/tickets/{ticket_id}/comment", data=form, headers=console_as(SUPPORT)
    )
    assert done.status_code == 303
    page = await stack.http.get(done.headers["location"], headers=console_as(SUPPORT))
    assert "Done: comment." in page.text and "an internal note: Looking at the export job" in page.text
    # The customer does not see ConnectSoft's internal note.
    customer_page = await stack.http.get(f"/console/tickets/{ticket_id}", headers=console_as(CUSTOMER))
    assert "Looking at the export job" not in customer_page.text


# --- Filing -----------------------------------------------------------------------------------


def channel_options(html: str) -> list[str]:
    select = re.search(r'<select id="file-channel".*?</select>', html, re.S)
    assert select
    return re.findall(r'<option value="([a-z_]+)"', select.group(0))


async def test_the_intake_form_offers_only_the_contracts_channels(module_stack: Stack) -> None:
    http = module_stack.http
    cases = {
        "acme": ["email", "portal", "chat", "on_call"],
        "globex": ["email", "portal", "chat"],
        "initech": ["email", "portal"],
    }
    for customer, channels in cases.items():
        page = await http.get(f"/console/file?customer_id={customer}", headers=console_as(SUPPORT))
        assert channel_options(page.text) == channels
    # A customer's form is its own contract's, whatever the URL asks for.
    mine = await http.get("/console/file?customer_id=initech", headers=console_as(CUSTOMER))
    assert channel_options(mine.text) == cases["acme"] and 'value="initech"' not in mine.text


async def test_the_intake_quote_is_the_sla_deadline_answer(module_stack: Stack) -> None:
    http = module_stack.http
    params = {"tier": "premium", "product": "platform", "timezone": "Europe/Berlin", "country": "DE"}
    for severity in (1, 2, 3, 4):
        first = datetime.now(UTC)
        quote = await http.get(
            f"/console/file/quote?customer_id=acme&severity={severity}", headers=console_as(CUSTOMER)
        )
        last = datetime.now(UTC)
        quoted = datetime.fromisoformat(hidden_time(quote.text))
        answers = []
        for at in (first, last):
            answer = await http.get(
                "/sla/deadline", params=params | {"severity": severity, "submitted_at": at.isoformat()}
            )
            answers.append(datetime.fromisoformat(answer.json()["response_due"]))
        assert answers[0] <= quoted <= answers[1], severity


async def test_a_refused_intake_says_why_and_starts_nothing(module_stack: Stack) -> None:
    form = {
        "csrf_token": csrf_token_for(console_session_id(SUPPORT)),
        "customer_id": "globex",
        "title": "Chat please",
        "description": "d",
        "severity": "3",
        "product": "audit",
        "channel": "on_call",
        "category": "bug",
    }
    refused = await module_stack.http.post("/console/file", data=form, headers=console_as(SUPPORT))
    assert refused.status_code == 422
    assert "not part of a Standard contract" in refused.text
    # What was typed is kept in the form.
    assert 'value="Chat please"' in refused.text


# --- The queue --------------------------------------------------------------------------------


def queue_rows(html: str) -> list[tuple[str, str]]:
    """(ticket id, due) per row, in order; due is '' for a row without a live clock."""
    rows = re.findall(r'<tr data-ticket="([0-9a-z]+)">\s*<td>(.*?)</td>', html, re.S)
    found = []
    for ticket_id, cell in rows:
        due = re.search(r'data-due="([^"]+)"', cell)
        found.append((ticket_id, due.group(1) if due else ""))
    return found


async def test_the_queue_is_ordered_by_the_nearest_live_due_time(db_stack: Stack) -> None:
    # On SQLite, and on PostgreSQL when CI sets it up: the queue's own SQL.
    stack = db_stack
    filed = {sev: await file_ticket_with(stack, "acme", sev) for sev in (3, 4, 1, 2)}
    done = await file_ticket_with(stack, "globex", 3)
    await stack.http.post(f"/tickets/{done}/resolve", json={"resolution": "Fixed"}, headers=stack.as_(ADMIN))
    for ticket_id in [*filed.values(), done]:
        await settled_state(stack, ticket_id)

    page = await stack.http.get("/console?status=all", headers=console_as(SUPPORT))

    rows = queue_rows(page.text)
    assert [ticket_id for ticket_id, _ in rows] == [filed[1], filed[2], filed[3], filed[4], done]
    dues = [datetime.fromisoformat(due) for _, due in rows[:4]]
    assert dues == sorted(dues) and rows[4][1] == ""
    # The default queue is the work not done with.
    active = queue_rows((await stack.http.get("/console", headers=console_as(SUPPORT))).text)
    assert done not in {ticket_id for ticket_id, _ in active}


async def file_ticket_with(stack: Stack, customer: str, severity: int) -> str:
    body = {
        "customer_id": customer,
        "title": f"Sev {severity}",
        "description": "d",
        "severity": severity,
        "product": "audit",
        "channel": "email",
        "category": "bug",
    }
    response = await stack.http.post("/tickets", json=body, headers=stack.as_(ADMIN))
    assert response.status_code == 201, response.text
    ticket_id: str = response.json()["ticket_id"]
    return ticket_id


async def test_queue_filters_stay_in_the_url_and_in_its_refresh(db_stack: Stack) -> None:
    stack = db_stack
    critical = await file_ticket_with(stack, "acme", 1)
    medium = await file_ticket_with(stack, "globex", 3)
    partner = await file_ticket(stack, "contoso")
    for ticket_id in (critical, medium, partner):
        await wait_for_event(stack.handle(ticket_id), record_written())
    headers = console_as(SUPPORT)

    def ids(html: str) -> set[str]:
        return {ticket_id for ticket_id, _ in queue_rows(html)}

    by_filter = {
        "severity=1": {critical},
        "tier=standard": {medium},
        "customer=globex": {medium},
        "level=3": {critical},  # Premium Sev 1 goes straight to L3
        "line=partner": {partner},
        "tier=premium&line=connectsoft": {critical},
    }
    for query, expected in by_filter.items():
        page = await stack.http.get(f"/console?{query}", headers=headers)
        assert ids(page.text) == expected, query
        fragment = await stack.http.get(f"/console/queue?{query}", headers=headers)
        assert ids(fragment.text) == expected, query
        # The rows refresh themselves with the same filters.
        assert f'hx-get="/console/queue?{query}"'.replace("&", "&amp;") in fragment.text
    page = await stack.http.get("/console?severity=1&tier=premium", headers=headers)
    assert re.search(r'<option value="1" selected>', page.text)
    assert re.search(r'<option value="premium" selected>', page.text)
    odd = await stack.http.get("/console?severity=9&line=moon", headers=headers)
    assert odd.status_code == 200 and ids(odd.text) == {critical, medium, partner}
    assert "Severity &#39;9&#39; is not one of the choices" in odd.text


# --- Logs -------------------------------------------------------------------------------------


async def test_the_key_never_appears_in_the_servers_logs(
    dev_env: WorkflowEnvironment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_console(dev_env.client, tmp_path / "logs.db", log_level="debug") as site:
        async with httpx.AsyncClient(base_url=site.url) as browser:
            page = await browser.get("/console/sign-in")
            token = hidden("csrf_token", page.text)
            async with _fresh_key(site) as secret:
                signed_in = await browser.post(
                    "/console/sign-in", data={"api_key": secret, "csrf_token": token, "next": "/console"}
                )
                assert signed_in.status_code == 303
                ticket_id = await site.file("acme")
                assert (await browser.get(f"/console/tickets/{ticket_id}")).status_code == 200
                assert (await browser.get("/console/queue")).status_code == 200
                refused = await browser.post(f"/console/tickets/{ticket_id}/close", data={"csrf_token": "x"})
                assert refused.status_code == 403
                # Everything the server side logged (httpx and httpcore are this test's own client).
                logged = "\n".join(
                    f"{record.name} {record.getMessage()}"
                    for record in caplog.records
                    if not record.name.startswith(("httpx", "httpcore"))
                )
                assert "GET /console/queue" in logged  # the access log did run
                session_id = browser.cookies[SESSION_COOKIE]
                assert secret not in logged and session_id not in logged
                assert csrf_token_for(session_id) not in logged


@asynccontextmanager
async def _fresh_key(site: Site) -> AsyncIterator[str]:
    """A new admin key's secret: a demo key's secret is also its name, which logs may show."""
    body = {"name": f"logs-{uuid.uuid4().hex[:6]}", "role": "admin"}
    response = await site.api.post("/api-keys", json=body, headers=site.as_(ADMIN))
    assert response.status_code == 201, response.text
    yield response.json()["secret"]
