"""Limits applied before a request reaches routing, so an oversized body is never parsed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response

MIB = 1024 * 1024
MAX_BODY_BYTES = MIB


class BodyLimitMiddleware:
    """Answers 413 to a request body over `max_body_bytes`.

    A declared Content-Length over the limit is refused before a byte of the body is read.
    Otherwise the body is read here, counting as it arrives, and refused as soon as the count
    passes the limit, so a chunked upload without a length is never read whole either. The app
    only ever sees a body within the limit, replayed from what was read.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, receive, send, f"is {declared} bytes,")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody is left to answer
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send, "is")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, measured: str) -> None:
        limit = self.max_body_bytes
        limit_text = f"{limit // MIB} MiB ({limit} bytes)" if limit % MIB == 0 else f"{limit} bytes"
        response = problem_response(
            413,
            f"The request body {measured} over the limit of {limit_text}; send a smaller body.",
            rule="body_too_large",
        )
        # No `Connection: close`: the server discards the unread rest of the body, so a client that
        # writes the whole body before it reads (httpx, requests) still gets this answer instead
        # of a connection reset.
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the server's own messages (such as a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
