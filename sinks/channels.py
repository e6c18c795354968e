"""Notification channels: render and send one notice by email, chat webhook or pager.

Pure async I/O with keyword-only arguments and no settings: the delivery activity decides the
recipients and passes URLs, keys and timeouts in. Every failure is a `SendFailed` that says
whether a retry can help and whose message is safe to log and store: it names the host, never
the URL's path (a webhook's token), a routing key or an SMTP password.
"""

# ruff: noqa: ASYNC109  (`timeout` bounds one send, as the caller's settings say; see _post_json)

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx


class SendFailed(Exception):
    """A send that did not deliver. `retryable`: a later attempt may succeed (timeouts,
    connection errors, 5xx, 408, 429, SMTP 4xx); otherwise the notice or the configuration
    is wrong and retrying cannot help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


# Email


def format_due(
    *, clock_name: str | None, due_at: datetime | None, timezone: str, indicative: bool = False
) -> str | None:
    """'First response due Fri 27 Nov 2026 15:05 CET (Europe/Berlin)', in the reader's zone;
    'First response (indicative) due ...' for a clock without an SLA (DESIGN.md §4)."""
    if due_at is None:
        return None
    if indicative:
        clock_name = f"{clock_name or 'Response'} (indicative)"
    if due_at.tzinfo is None:  # the machine's times are UTC
        due_at = due_at.replace(tzinfo=UTC)
    local = due_at.astimezone(ZoneInfo(timezone))
    when = f"{local:%a} {local.day} {local:%b %Y %H:%M %Z} ({timezone})"
    return f"{clock_name} due {when}" if clock_name else f"Due {when}"


def render_email(
    *,
    subject: str,
    headline: str,
    summary: str,
    link: str,
    clock_name: str | None,
    due_at: datetime | None,
    timezone: str,
    indicative: bool = False,
) -> tuple[str, str]:
    """The notice as (plain text, HTML). Every caller-given text is escaped in the HTML."""
    due = format_due(clock_name=clock_name, due_at=due_at, timezone=timezone, indicative=indicative)
    text = "\n\n".join(part for part in (headline, summary, due, f"Open the ticket: {link}") if part)
    e = html.escape
    paragraphs = "".join(f"<p>{e(line)}</p>" for line in summary.splitlines() if line.strip())
    body = (
        f"<h2>{e(headline)}</h2>{paragraphs}"
        + (f"<p><strong>{e(due)}</strong></p>" if due else "")
        + f'<p><a href="{e(link)}">Open the ticket</a></p>'
    )
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{e(subject)}</title></head><body>{body}</body></html>"
    )
    return text + "\n", page


def message_id(idempotency_key: str) -> str:
    """The same key always gives the same Message-ID, so a resent notice is one message."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@escalator.connectsoft>"


def build_email(
    *, sender: str, to: Sequence[str], subject: str, text: str, html: str, idempotency_key: str
) -> EmailMessage:
    """multipart/alternative (plain text, then HTML) with a Message-ID derived from the key."""
    if not to:
        raise ValueError("an email needs at least one recipient")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = _one_line(subject)  # a line break in a header would inject headers
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = message_id(idempotency_key)
    message["X-Escalator-Key"] = _one_line(idempotency_key)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


async def send_email(*, smtp_url: str, message: EmailMessage, timeout: float) -> None:
    """Send through `smtp://[user:password@]host[:25]` or `smtps://…[:465]` (implicit TLS).

    On smtp:// the connection is upgraded with STARTTLS when the server offers it, and logs in
    only when the URL has a user. Envelope recipients are the To/Cc/Bcc headers. `timeout`
    bounds the whole exchange. SMTP 4xx replies and connection failures are retryable, 5xx
    are not; some refused recipients fail the send (a retry resends to all, with the same
    Message-ID).
    """
    url = urlsplit(smtp_url)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise SendFailed("the SMTP URL must be smtp://host:port or smtps://host:port", retryable=False)
    tls = url.scheme == "smtps"
    port = url.port or (465 if tls else 25)
    where = f"SMTP {url.hostname}:{port}"
    try:
        async with asyncio.timeout(timeout):
            refused, _ = await aiosmtplib.send(
                message,
                hostname=url.hostname,
                port=port,
                username=unquote(url.username) if url.username else None,
                password=unquote(url.password) if url.password else None,
                use_tls=tls,
                start_tls=False if tls else None,
                timeout=timeout,
            )
    except aiosmtplib.SMTPRecipientsRefused as error:
        raise _refused(where, ((r.recipient, r.code, r.message) for r in error.recipients)) from None
    except aiosmtplib.SMTPResponseException as error:
        raise SendFailed(
            f"{where} answered {error.code} {_clip(error.message, 200)}", retryable=400 <= error.code < 500
        ) from None
    except OSError as error:  # refused, reset, timed out; aiosmtplib's disconnects and timeouts too
        raise SendFailed(f"{where} failed: {type(error).__name__}", retryable=True) from None
    except aiosmtplib.SMTPException as error:  # e.g. login asked but AUTH not offered
        raise SendFailed(f"{where}: {_clip(str(error), 200)}", retryable=False) from None
    if refused:
        raise _refused(where, ((rcpt, r.code, r.message) for rcpt, r in refused.items()))


def _refused(where: str, refusals: Iterable[tuple[str, int, str]]) -> SendFailed:
    refusals = list(refusals)
    listed = "; ".join(f"{rcpt}: {code} {_clip(text, 100)}" for rcpt, code, text in refusals)
    return SendFailed(
        f"{where} refused {len(refusals)} recipient(s): {listed}",
        retryable=all(400 <= code < 500 for _, code, _ in refusals),
    )


# Chat


def chat_payload(
    *,
    subject: str,
    headline: str,
    severity: int,
    level: int,
    due_text: str | None,
    link: str,
    channel: str | None,
) -> dict[str, Any]:
    """A Slack incoming-webhook message that Teams' incoming webhook also takes.

    `text` is the whole notice on its own (Slack's notification and fallback; Teams' Office 365
    connector renders `text` and ignores `blocks`). `blocks`: a header (the subject), a section
    (the headline), a context line (severity, level, due time) and an "Open ticket" link
    button. Caller text sits in plain_text objects and is escaped in `text`, so a title such as
    "<!channel>" neither pings anyone nor forms a link. `channel` is sent only when given
    (legacy Slack webhooks honour it; newer ones post to their own channel).
    """
    context = " · ".join(part for part in (f"Sev {severity}", f"Level {level}", due_text) if part)
    payload: dict[str, Any] = {
        "text": _slack_escape(f"{subject}: {headline} ({context}) {link}"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(subject, 150)}},
            {"type": "section", "text": {"type": "plain_text", "text": _clip(headline, 3000)}},
            {"type": "context", "elements": [{"type": "plain_text", "text": _clip(context, 2000)}]},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open ticket"}, "url": link}
                ],
            },
        ],
    }
    if channel:
        payload["channel"] = channel
    return payload


def digest_payload(*, text: str, channel: str | None) -> dict[str, Any]:
    """A major incident's digest (DESIGN.md §13) as one Slack/Teams message: `text` is the
    whole digest, also as the one section; escaped as `chat_payload` escapes."""
    payload: dict[str, Any] = {
        "text": _slack_escape(text),
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": _clip(text, 3000)}}],
    }
    if channel:
        payload["channel"] = channel
    return payload


async def post_chat(
    *, client: httpx.AsyncClient, url: str, payload: dict[str, Any], idempotency_key: str, timeout: float
) -> None:
    """POST the payload to the incoming webhook; any 2xx is delivered."""
    await _post_json(
        client=client, url=url, body=payload, idempotency_key=idempotency_key, timeout=timeout, secrets=()
    )


# Pager (PagerDuty Events API v2)

_PAGER_SEVERITIES = {1: "critical", 2: "error", 3: "warning", 4: "info"}
PAGER_ACTIONS = ("trigger", "acknowledge", "resolve")


def pager_severity(ticket_severity: int) -> str:
    try:
        return _PAGER_SEVERITIES[ticket_severity]
    except KeyError:
        raise ValueError(f"no pager severity for ticket severity {ticket_severity}") from None


def pager_event(
    *,
    routing_key: str,
    action: str,
    dedup_key: str,
    summary: str,
    severity: str,
    source: str,
    link: str | None,
    custom_details: dict[str, Any] | None,
) -> dict[str, Any]:
    """An Events API v2 event. A trigger carries the payload and the link; acknowledge and
    resolve carry only routing_key, event_action and dedup_key (the API ignores the rest)."""
    if action not in PAGER_ACTIONS:
        raise ValueError(f"pager action must be one of {', '.join(PAGER_ACTIONS)}, not {action!r}")
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
    if action != "trigger":
        return event
    if severity not in _PAGER_SEVERITIES.values():
        raise ValueError(f"pager severity must be critical, error, warning or info, not {severity!r}")
    payload: dict[str, Any] = {"summary": _clip(summary, 1024), "severity": severity, "source": source}
    if custom_details:
        payload["custom_details"] = custom_details
    event["payload"] = payload
    if link:
        event["links"] = [{"href": link, "text": "Open ticket"}]
    return event


async def post_pager_event(
    *, client: httpx.AsyncClient, url: str, event: dict[str, Any], idempotency_key: str, timeout: float
) -> None:
    """POST the event; the Events API answers 202, and any 2xx is delivered."""
    await _post_json(
        client=client,
        url=url,
        body=event,
        idempotency_key=idempotency_key,
        timeout=timeout,
        secrets=(str(event.get("routing_key", "")),),
    )


# Shared


async def _post_json(
    *,
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    idempotency_key: str,
    timeout: float,
    secrets: Sequence[str],
) -> None:
    parts = urlsplit(url)  # name the host, never the path or query: webhook URLs carry tokens
    where = f"POST {parts.hostname}" + (f":{parts.port}" if parts.port else "")
    try:
        async with asyncio.timeout(timeout):
            response = await client.post(
                url, json=body, headers={"Idempotency-Key": idempotency_key}, timeout=timeout
            )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
        raise SendFailed(f"{where}: bad URL ({type(error).__name__})", retryable=False) from None
    except (TimeoutError, httpx.TimeoutException):
        raise SendFailed(f"{where}: no answer within {timeout} s", retryable=True) from None
    except httpx.TransportError as error:  # its text could quote the URL: the type says enough
        raise SendFailed(f"{where}: {type(error).__name__}", retryable=True) from None
    if response.is_success:
        return
    status = response.status_code
    # The answer's text helps with a 400 (which field is wrong); it may echo what was sent.
    answer = _clip(response.text, 300)
    for secret in (*secrets, url, parts.path):
        if len(secret) > 1:
            answer = answer.replace(secret, "[redacted]")
    raise SendFailed(f"{where} answered {status}: {answer}", retryable=status >= 500 or status in (408, 429))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
