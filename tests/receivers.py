"""Real receivers on 127.0.0.1 for the notification channels: an SMTP server (aiosmtpd) and an
HTTP server (uvicorn) that record what arrives and can be told to fail.

Each runs in a thread with its own event loop, so it answers the test's loop, a worker in that
same loop, and a worker in another process alike. `wait_for` blocks on a condition from any
event loop without polling: the server thread wakes the waiting loop after each record.
"""

# ruff: noqa: ASYNC109  (`timeout` bounds a wait that must not hang a test; it is no cancel scope)

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self, cast

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class _Recorder:
    """Records written by a server thread, awaited from any event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def _changed(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def _until(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    waiter[1].clear()  # before the check: a record after it sets it again
                    if check():
                        return
                    await waiter[1].wait()
        except TimeoutError:
            raise AssertionError(f"{what}: not within {timeout} s") from None
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _condition(condition: int | Callable[[list[Any]], bool]) -> Callable[[list[Any]], bool]:
    if isinstance(condition, int):
        return lambda items: len(items) >= condition
    return condition


# SMTP


@dataclass(frozen=True)
class ReceivedEmail:
    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    login: str | None  # the AUTH user, if the client logged in

    @property
    def text(self) -> str:
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    def _part(self, subtype: str) -> str:
        part = self.message.get_body((subtype,))
        assert part is not None, f"no text/{subtype} part"
        return cast(str, part.get_content())


class _Controller(Controller):
    def _trigger_server(self) -> None:
        # Bound to port 0: learn the port the OS chose before connecting to it.
        self.port = cast(asyncio.Server, self.server).sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpReceiver(_Recorder):
    """An SMTP server that keeps every message it accepts. With `accounts` ({user: password})
    it offers AUTH without TLS; each message records the login it came with."""

    def __init__(self, *, accounts: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._messages: list[ReceivedEmail] = []
        self._failures: deque[int] = deque()
        self._refused: dict[str, int] = {}
        self._accounts = dict(accounts or {})
        auth: dict[str, Any] = (
            {"authenticator": self._authenticate, "auth_require_tls": False} if accounts else {}
        )
        self._controller = _Controller(self, hostname="127.0.0.1", port=0, **auth)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self._controller.port}"

    @property
    def messages(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._messages)

    def fail_next(self, times: int = 1, *, code: int = 451) -> None:
        """Answer the next `times` messages' DATA with `code` (451: try again later)."""
        with self._lock:
            self._failures.extend([code] * times)

    def refuse(self, address: str, *, code: int = 550) -> None:
        """Refuse this recipient at RCPT TO from now on."""
        with self._lock:
            self._refused[address.lower()] = code

    async def wait_for(
        self, condition: int | Callable[[list[ReceivedEmail]], bool] = 1, *, timeout: float = 10.0
    ) -> list[ReceivedEmail]:
        """The messages, once at least `condition` of them arrived (or the predicate holds)."""
        check = _condition(condition)
        await self._until(lambda: check(self.messages), timeout=timeout, what=f"email {condition}")
        return self.messages

    # aiosmtpd handler hooks, run in the server's thread

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            code = self._refused.get(address.lower())
        if code:
            return f"{code} 5.1.1 <{address}>: recipient refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            code = self._failures.popleft() if self._failures else None
        if code:
            return f"{code} 4.3.0 programmed failure, try again later"
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message = cast(EmailMessage, email.message_from_bytes(content, policy=email.policy.default))
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        received = ReceivedEmail(message, envelope.mail_from or "", list(envelope.rcpt_tos), login)
        with self._lock:
            self._messages.append(received)
        self._changed()
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            self._accounts.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


# HTTP


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON body, or None
    status: int | None  # None: held open by hang_next, never answered

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


_HANG = 0


class HttpReceiver(_Recorder):
    """An HTTP server that answers any path. A request is accepted (202) unless the path was
    programmed to fail or hang; a repeated Idempotency-Key on a path is answered 200 and not
    delivered twice, like a sink that deduplicates."""

    def __init__(self) -> None:
        super().__init__()
        self._requests: list[ReceivedRequest] = []
        self._deliveries: list[ReceivedRequest] = []
        self._seen: set[tuple[str, str]] = set()
        self._programs: dict[str, deque[tuple[int, Any]]] = {}
        self._release = asyncio.Event()  # lets held requests go when the server stops
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()  # connections queue from now on, before the server thread runs
        self.port: int = self._socket.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET", "POST", "PUT"])])
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, loop="asyncio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="http-receiver", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._release.set)
        self._server.should_exit = True
        self._thread.join()

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def deliveries(self, path: str | None = None) -> list[ReceivedRequest]:
        """Accepted requests, once per Idempotency-Key, optionally on one path."""
        with self._lock:
            return [d for d in self._deliveries if path is None or d.path == _path(path)]

    def fail_next(self, path: str, status: int, times: int = 1, *, body: Any = None) -> None:
        """Answer the next `times` requests on `path` with `status` (and a JSON `body`)."""
        with self._lock:
            answer = {"status": "programmed failure"} if body is None else body
            self._programs.setdefault(_path(path), deque()).extend([(status, answer)] * times)

    def hang_next(self, path: str, times: int = 1) -> None:
        """Hold the next `times` requests on `path` open without answering, until stopped."""
        with self._lock:
            self._programs.setdefault(_path(path), deque()).extend([(_HANG, None)] * times)

    async def wait_for(
        self,
        condition: int | Callable[[list[ReceivedRequest]], bool] = 1,
        *,
        path: str | None = None,
        timeout: float = 10.0,
    ) -> list[ReceivedRequest]:
        """The deliveries (on `path`), once at least `condition` (or the predicate holds)."""
        check = _condition(condition)
        what = f"deliveries {condition} on {path or 'any path'}"
        await self._until(lambda: check(self.deliveries(path)), timeout=timeout, what=what)
        return self.deliveries(path)

    async def wait_for_requests(
        self,
        condition: int | Callable[[list[ReceivedRequest]], bool] = 1,
        *,
        path: str | None = None,
        timeout: float = 10.0,
    ) -> list[ReceivedRequest]:
        """Every request (on `path`), answered or not, once `condition` holds."""
        check = _condition(condition)

        def on_path() -> list[ReceivedRequest]:
            return [r for r in self.requests if path is None or r.path == _path(path)]

        await self._until(lambda: check(on_path()), timeout=timeout, what=f"requests {condition}")
        return on_path()

    async def _answer(self, request: Request) -> Response:
        self._loop = asyncio.get_running_loop()
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = dict(request.headers)
        path = request.url.path
        key = headers.get("idempotency-key")
        with self._lock:
            program = self._programs.get(path)
            if program:
                status, answer = program.popleft()
                accepted = False
            else:
                accepted = key is None or (path, key) not in self._seen
                status, answer = (202, {"status": "accepted"}) if accepted else (200, {"status": "duplicate"})
            received = ReceivedRequest(request.method, path, headers, body, status or None)
            self._requests.append(received)
            if accepted:
                self._deliveries.append(received)
                if key is not None:
                    self._seen.add((path, key))
        self._changed()
        if status == _HANG:
            await self._release.wait()
            return Response(status_code=503)
        return JSONResponse(answer, status_code=status)


def _path(path: str) -> str:
    return "/" + path.lstrip("/")


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver
