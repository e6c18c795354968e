"""The notification channels against real receivers on 127.0.0.1 (tests/receivers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from email.message import EmailMessage

import httpx
import pytest
import pytest_asyncio

from bench.stack_bench import free_port
from sinks.channels import (
    SendFailed,
    build_email,
    chat_payload,
    pager_event,
    pager_severity,
    post_chat,
    post_pager_event,
    render_email,
    send_email,
)
from tests.receivers import HttpReceiver, SmtpReceiver

DUE = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
SENDER = "ConnectSoft Support <support@connectsoft.example>"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def notice_email(
    *, to: list[str], key: str = "T-1:n1", timezone: str = "Europe/Berlin", title: str = "VPN down"
) -> EmailMessage:
    text, html = render_email(
        subject=f"[Sev 1] {title}",
        headline=f"New Sev 1 ticket: {title}",
        summary=f"Customer acme reports: {title}\nAll sites affected.",
        link="http://127.0.0.1:8000/tickets/T-1",
        clock_name="First response",
        due_at=DUE,
        timezone=timezone,
    )
    return build_email(
        sender=SENDER, to=to, subject=f"[Sev 1] {title}", text=text, html=html, idempotency_key=key
    )


async def send_failure(send: Awaitable[None]) -> SendFailed:
    with pytest.raises(SendFailed) as failed:
        await send
    return failed.value


# Email


@pytest.mark.parametrize(
    ("timezone", "due"),
    [
        ("Europe/Berlin", "First response due Fri 27 Nov 2026 15:05 CET (Europe/Berlin)"),
        ("America/New_York", "First response due Fri 27 Nov 2026 09:05 EST (America/New_York)"),
    ],
)
async def test_email_arrives_with_both_parts_and_the_due_time_in_the_recipients_zone(
    smtp_receiver: SmtpReceiver, timezone: str, due: str
) -> None:
    message = notice_email(to=["oncall@acme.example", "l2@connectsoft.example"], timezone=timezone)
    await send_email(smtp_url=smtp_receiver.url, message=message, timeout=10)

    [received] = await smtp_receiver.wait_for(1)
    assert received.rcpt_tos == ["oncall@acme.example", "l2@connectsoft.example"]
    assert received.message.get_content_type() == "multipart/alternative"
    assert received.message["Subject"] == "[Sev 1] VPN down"
    assert received.message["X-Escalator-Key"] == "T-1:n1"
    assert due in received.text
    assert due in received.html
    assert "http://127.0.0.1:8000/tickets/T-1" in received.text
    assert 'href="http://127.0.0.1:8000/tickets/T-1"' in received.html


async def test_email_html_shows_a_script_title_as_text(smtp_receiver: SmtpReceiver) -> None:
    title = '<script>alert("x")</script> & co'
    await send_email(
        smtp_url=smtp_receiver.url, message=notice_email(to=["a@acme.example"], title=title), timeout=10
    )

    [received] = await smtp_receiver.wait_for(1)
    assert "<script>" not in received.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in received.html
    assert title in received.text


def test_email_subject_with_a_line_break_stays_one_header() -> None:
    message = build_email(
        sender=SENDER,
        to=["a@acme.example"],
        subject="VPN down\r\nBcc: everyone@acme.example",
        text="t",
        html="<p>t</p>",
        idempotency_key="k",
    )
    assert message["Subject"] == "VPN down Bcc: everyone@acme.example"
    assert message["Bcc"] is None


async def test_the_same_key_gives_the_same_message_id(smtp_receiver: SmtpReceiver) -> None:
    first = notice_email(to=["a@acme.example"], key="T-1:n1")
    again = notice_email(to=["a@acme.example"], key="T-1:n1")
    other = notice_email(to=["a@acme.example"], key="T-1:n2")
    for message in (first, again, other):
        await send_email(smtp_url=smtp_receiver.url, message=message, timeout=10)

    received = await smtp_receiver.wait_for(3)
    ids = [r.message["Message-ID"] for r in received]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].endswith("@escalator.connectsoft>")


async def test_an_smtp_temporary_failure_is_retryable_and_the_retry_delivers(
    smtp_receiver: SmtpReceiver,
) -> None:
    smtp_receiver.fail_next(1, code=451)
    message = notice_email(to=["a@acme.example"])

    with pytest.raises(SendFailed) as failed:
        await send_email(smtp_url=smtp_receiver.url, message=message, timeout=10)
    assert failed.value.retryable
    assert "451" in str(failed.value)
    assert smtp_receiver.messages == []

    await send_email(smtp_url=smtp_receiver.url, message=message, timeout=10)
    assert len(await smtp_receiver.wait_for(1)) == 1


async def test_a_refused_recipient_is_permanent(smtp_receiver: SmtpReceiver) -> None:
    smtp_receiver.refuse("gone@acme.example", code=550)

    with pytest.raises(SendFailed) as failed:
        await send_email(
            smtp_url=smtp_receiver.url, message=notice_email(to=["gone@acme.example"]), timeout=10
        )
    assert not failed.value.retryable
    assert "gone@acme.example: 550" in str(failed.value)


async def test_a_partly_refused_email_fails_and_says_whom() -> None:
    with SmtpReceiver() as smtp:
        smtp.refuse("gone@acme.example", code=550)
        message = notice_email(to=["here@acme.example", "gone@acme.example"])
        with pytest.raises(SendFailed) as failed:
            await send_email(smtp_url=smtp.url, message=message, timeout=10)
        assert not failed.value.retryable
        assert "refused 1 recipient(s): gone@acme.example: 550" in str(failed.value)
        [received] = await smtp.wait_for(1)
        assert received.rcpt_tos == ["here@acme.example"]


async def test_an_unreachable_smtp_server_is_retryable() -> None:
    with pytest.raises(SendFailed) as failed:
        await send_email(
            smtp_url=f"smtp://127.0.0.1:{free_port()}", message=notice_email(to=["a@x.example"]), timeout=5
        )
    assert failed.value.retryable


async def test_smtp_logs_in_with_the_urls_percent_encoded_credentials() -> None:
    with SmtpReceiver(accounts={"escalator": "p@ss:w/rd"}) as smtp:
        url = f"smtp://escalator:p%40ss%3Aw%2Frd@127.0.0.1:{smtp.url.rsplit(':', 1)[1]}"
        await send_email(smtp_url=url, message=notice_email(to=["a@acme.example"]), timeout=10)
        [received] = await smtp.wait_for(1)
        assert received.login == "escalator"


async def test_a_wrong_smtp_password_is_permanent_and_never_in_the_message() -> None:
    with SmtpReceiver(accounts={"escalator": "right"}) as smtp:
        url = f"smtp://escalator:wr0ng-s3cret@127.0.0.1:{smtp.url.rsplit(':', 1)[1]}"
        with pytest.raises(SendFailed) as failed:
            await send_email(smtp_url=url, message=notice_email(to=["a@acme.example"]), timeout=10)
        assert not failed.value.retryable
        assert "535" in str(failed.value)
        assert "wr0ng-s3cret" not in str(failed.value)
        assert failed.value.__cause__ is None and failed.value.__suppress_context__
        assert smtp.messages == []


# Chat


async def test_chat_posts_a_slack_shaped_payload_with_the_idempotency_key(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    payload = chat_payload(
        subject="[Sev 1] <!channel> VPN down",
        headline="Escalated to Level 2",
        severity=1,
        level=2,
        due_text="First response due Fri 27 Nov 2026 15:05 CET (Europe/Berlin)",
        link="http://127.0.0.1:8000/tickets/T-1",
        channel="#support-l2",
    )
    await post_chat(
        client=client,
        url=http_receiver.url_for("/chat"),
        payload=payload,
        idempotency_key="T-1:n3",
        timeout=5,
    )

    [delivery] = await http_receiver.wait_for(1, path="/chat")
    assert delivery.idempotency_key == "T-1:n3"
    assert delivery.headers["content-type"] == "application/json"
    body = delivery.body
    assert body["channel"] == "#support-l2"
    assert body["text"].startswith("[Sev 1] &lt;!channel&gt; VPN down: Escalated to Level 2")
    assert "Sev 1 · Level 2 · First response due Fri 27 Nov 2026 15:05 CET" in body["text"]
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "context", "actions"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "[Sev 1] <!channel> VPN down"}
    [button] = body["blocks"][3]["elements"]
    assert button["type"] == "button" and button["url"] == "http://127.0.0.1:8000/tickets/T-1"


# Pager


def test_pager_severity_follows_the_ticket_severity() -> None:
    assert [pager_severity(s) for s in (1, 2, 3, 4)] == ["critical", "error", "warning", "info"]
    with pytest.raises(ValueError):
        pager_severity(5)
    with pytest.raises(ValueError):
        pager_event(
            routing_key=ROUTING_KEY, action="escalate", dedup_key="T-1", summary="s",
            severity="critical", source="s", link=None, custom_details=None,
        )  # fmt: skip


async def test_pager_trigger_acknowledge_and_resolve_have_the_events_v2_shape(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    url = http_receiver.url_for("/v2/enqueue")
    for action in ("trigger", "acknowledge", "resolve"):
        event = pager_event(
            routing_key=ROUTING_KEY,
            action=action,
            dedup_key="T-1",
            summary="[Sev 1] acme: VPN down",
            severity=pager_severity(1),
            source="escalator",
            link="http://127.0.0.1:8000/tickets/T-1",
            custom_details={"customer": "acme", "level": 2},
        )
        await post_pager_event(
            client=client, url=url, event=event, idempotency_key=f"T-1:{action}", timeout=5
        )

    trigger, acknowledge, resolve = await http_receiver.wait_for(3, path="/v2/enqueue")
    assert trigger.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "T-1",
        "payload": {
            "summary": "[Sev 1] acme: VPN down",
            "severity": "critical",
            "source": "escalator",
            "custom_details": {"customer": "acme", "level": 2},
        },
        "links": [{"href": "http://127.0.0.1:8000/tickets/T-1", "text": "Open ticket"}],
    }
    assert acknowledge.body == {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "T-1"}
    assert resolve.body == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "T-1"}
    assert [d.idempotency_key for d in (trigger, acknowledge, resolve)] == [
        "T-1:trigger",
        "T-1:acknowledge",
        "T-1:resolve",
    ]


def trigger() -> dict[str, object]:
    return pager_event(
        routing_key=ROUTING_KEY, action="trigger", dedup_key="T-1", summary="s",
        severity="critical", source="escalator", link=None, custom_details=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False)]
)
async def test_an_answer_status_decides_whether_a_retry_can_help(
    http_receiver: HttpReceiver, client: httpx.AsyncClient, status: int, retryable: bool
) -> None:
    http_receiver.fail_next("/v2/enqueue", status)
    with pytest.raises(SendFailed) as failed:
        await post_pager_event(
            client=client,
            url=http_receiver.url_for("/v2/enqueue"),
            event=trigger(),
            idempotency_key="k",
            timeout=5,
        )
    assert failed.value.retryable is retryable
    assert f"answered {status}" in str(failed.value)
    assert http_receiver.deliveries() == []


async def test_retries_after_server_errors_deliver_once(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    http_receiver.fail_next("/chat", 500, times=2)
    url = http_receiver.url_for("/chat")
    payload = {"text": "hello"}
    for _ in range(2):
        with pytest.raises(SendFailed):
            await post_chat(client=client, url=url, payload=payload, idempotency_key="T-1:n1", timeout=5)
    await post_chat(client=client, url=url, payload=payload, idempotency_key="T-1:n1", timeout=5)

    assert [r.status for r in http_receiver.requests] == [500, 500, 202]
    assert len(await http_receiver.wait_for(1, path="/chat")) == 1


async def test_a_receiver_that_hangs_past_the_timeout_is_retryable(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    http_receiver.hang_next("/chat")
    with pytest.raises(SendFailed) as failed:
        await post_chat(
            client=client,
            url=http_receiver.url_for("/chat"),
            payload={"text": "x"},
            idempotency_key="k",
            timeout=0.2,
        )
    assert failed.value.retryable
    [held] = await http_receiver.wait_for_requests(1, path="/chat")
    assert held.status is None


async def test_an_unreachable_webhook_is_retryable(client: httpx.AsyncClient) -> None:
    with pytest.raises(SendFailed) as failed:
        await post_chat(
            client=client,
            url=f"http://127.0.0.1:{free_port()}/hook",
            payload={},
            idempotency_key="k",
            timeout=5,
        )
    assert failed.value.retryable


async def test_failures_never_carry_the_routing_key_or_the_webhook_token(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    token_path = "/services/T0000/B0000/w3bh00k-t0ken"
    webhook = http_receiver.url_for(token_path)
    # Receivers that echo what they were sent, as some error answers do.
    http_receiver.fail_next(token_path, 400, body={"error": f"no such hook {webhook} ({token_path})"})
    http_receiver.fail_next("/v2/enqueue", 400, body={"errors": [f"routing_key {ROUTING_KEY} is invalid"]})
    failures = [
        await send_failure(
            post_chat(client=client, url=webhook, payload={"text": "x"}, idempotency_key="k", timeout=5)
        ),
        await send_failure(
            post_pager_event(
                client=client,
                url=http_receiver.url_for("/v2/enqueue"),
                event=trigger(),
                idempotency_key="k",
                timeout=5,
            )
        ),
        await send_failure(
            post_chat(
                client=client,
                url=f"http://127.0.0.1:{free_port()}{token_path}",
                payload={},
                idempotency_key="k",
                timeout=5,
            )
        ),
    ]

    assert [f.retryable for f in failures] == [False, False, True]
    assert "[redacted]" in str(failures[0]) and "[redacted]" in str(failures[1])
    for failure in failures:
        assert "w3bh00k-t0ken" not in str(failure)
        assert ROUTING_KEY not in str(failure)
        assert "127.0.0.1" in str(failure)  # it still says where


# The receivers themselves


async def test_the_receiver_counts_a_repeated_idempotency_key_once(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    url = http_receiver.url_for("/v2/enqueue")
    for key in ("T-1:n1", "T-1:n1", "T-1:n2"):
        await post_pager_event(client=client, url=url, event=trigger(), idempotency_key=key, timeout=5)

    assert [r.status for r in http_receiver.requests] == [202, 200, 202]
    deliveries = await http_receiver.wait_for(2, path="/v2/enqueue")
    assert [d.idempotency_key for d in deliveries] == ["T-1:n1", "T-1:n2"]


async def test_wait_for_wakes_when_a_delivery_arrives_later(
    http_receiver: HttpReceiver, client: httpx.AsyncClient
) -> None:
    waiting = asyncio.create_task(http_receiver.wait_for(lambda ds: any(d.body == {"n": 2} for d in ds)))
    url = http_receiver.url_for("/chat")
    for n in (1, 2):
        assert not waiting.done()
        await post_chat(client=client, url=url, payload={"n": n}, idempotency_key=f"k{n}", timeout=5)
    assert [d.body for d in await waiting] == [{"n": 1}, {"n": 2}]
