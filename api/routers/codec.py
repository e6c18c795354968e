"""/codec: the remote codec the Temporal UI and CLI decode history with (admin keys only).

The Temporal remote codec protocol: `POST /codec/decode` and `POST /codec/encode` take
`{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}` (protobuf JSON
of `temporal.api.common.v1.Payloads`) and answer the same shape. The codec is the one the
API's own Temporal client uses (runtime/codec.py); with history encryption off both
answer the payloads unchanged, as the workers and the API treat them.

    temporal workflow show --workflow-id ticket-<id> \\
        --codec-endpoint http://127.0.0.1:8000/codec --codec-auth "Bearer <admin key>"

The Temporal UI calls these from the browser, so /codec/* answers CORS preflights for the
configured UI origins (ESCALATOR_CODEC_CORS_ORIGINS), with the headers it sends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.auth import AdminDep
from api.deps import ClientDep
from api.errors import ApiError, problem_responses
from runtime.codec import PayloadDecryptionError

log = logging.getLogger("escalator.codec")

PREFIX = "/codec"
router = APIRouter(prefix=PREFIX, tags=["codec"])

REFUSALS = problem_responses(401, 403, 422)
# The Temporal UI sends its namespace, and the user's token when told to pass it.
CORS_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]

# What the OpenAPI document shows for both bodies.
# Protobuf JSON: an empty list may be left out, so `{}` is no payloads (as the CLI sends it).
PAYLOADS_SCHEMA = {
    "type": "object",
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"},
                    },
                    "data": {"type": "string", "format": "byte"},
                },
            },
        }
    },
}
OPENAPI = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": PAYLOADS_SCHEMA}}},
    "responses": {"200": {"content": {"application/json": {"schema": PAYLOADS_SCHEMA}}}},
}


async def read_payloads(request: Request) -> list[Payload]:
    body = await request.body()
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise json_format.ParseError("the body is not a JSON object")
        # Protobuf's JSON parser takes a list where a message is due (as an empty one).
        items = document.get("payloads")
        if isinstance(items, list) and not all(isinstance(item, dict) for item in items):
            raise json_format.ParseError("each of `payloads` is a JSON object")
        parsed = json_format.Parse(body, Payloads())
    except (json_format.ParseError, UnicodeDecodeError, ValueError) as err:
        raise ApiError(
            422,
            'Send {"payloads": [{"metadata": {...}, "data": "<base64>"}]}, the Temporal remote codec '
            f"body (protobuf JSON of Payloads): {str(err)[:200]}.",
            rule="codec_body",
        ) from None
    return list(parsed.payloads)


def payloads_response(payloads: Sequence[Payload]) -> Response:
    # Built here rather than as protobuf JSON of Payloads, which leaves out an empty list.
    body = json.dumps({"payloads": [json_format.MessageToDict(payload) for payload in payloads]})
    # What a decode answers is ticket text: no cache on the way may keep it.
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.post("/decode", response_class=Response, responses=REFUSALS, openapi_extra=OPENAPI)
async def decode_payloads(request: Request, admin: AdminDep, client: ClientDep) -> Response:
    """Decrypt payloads (any that are not encrypted pass unchanged)."""
    payloads = await read_payloads(request)
    codec = client.data_converter.payload_codec
    if codec is None:
        return payloads_response(payloads)
    try:
        decoded = await codec.decode(payloads)
    except PayloadDecryptionError as err:
        raise ApiError(422, f"Cannot decode: {err}.", rule="codec_key") from None
    log.info("%s decoded %d payloads", admin, len(decoded))
    return payloads_response(decoded)


@router.post("/encode", response_class=Response, responses=REFUSALS, openapi_extra=OPENAPI)
async def encode_payloads(request: Request, admin: AdminDep, client: ClientDep) -> Response:
    """Encrypt payloads with the current key, as the workers and the API do."""
    payloads = await read_payloads(request)
    codec = client.data_converter.payload_codec
    encoded = payloads if codec is None else await codec.encode(payloads)
    return payloads_response(encoded)


class CodecCorsMiddleware:
    """CORS for /codec/* only (the browser's Temporal UI calls it), from the given origins.

    Every other path answers as before: no other route is meant for a browser on another origin.
    """

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=CORS_HEADERS,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(f"{PREFIX}/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
