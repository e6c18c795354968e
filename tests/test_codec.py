"""Encrypted history: the AES-GCM codec, a real ticket's raw history, and the /codec endpoints.

The raw-history test runs the whole stack (API, worker, SQLite read model, dev server) with a
key set, then reads the history as the server stores it (the raw protos, not decoded by the
client) and searches every byte for the ticket's title, description and comment.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from runtime.codec import (
    ENCRYPTED,
    KEY_ID,
    CodecConfigError,
    EncryptionCodec,
    PayloadDecryptionError,
    data_converter,
)
from runtime.settings import Settings
from runtime.temporal import connect_client
from store.db import make_engine, make_sessionmaker, migrate
from store.demo_catalog import seed_demo_catalog
from store.keys import seed_demo_keys
from tests.fixtures_api import Stack, wait_until_recorded
from worker.worker import build_worker
from workflows.models import workflow_id_for

ADMIN, SUPPORT, CUSTOMER = "dev-admin", "dev-support", "dev-customer-acme"
UI_ORIGIN = "http://localhost:8233"


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def codec_settings(keys: dict[str, str], current: str | None, **overrides: Any) -> Settings:
    return Settings(
        codec_keys={key_id: SecretStr(key) for key_id, key in keys.items()},
        codec_key_id=current,
        **overrides,
    )


def codec_for(keys: dict[str, str], current: str) -> EncryptionCodec:
    codec = EncryptionCodec.from_settings(codec_settings(keys, current))
    assert codec is not None
    return codec


def model_payload(text: str) -> Payload:
    """What the pydantic converter makes of a model: a JSON object."""
    return pydantic_data_converter.payload_converter.to_payload({"title": text})


# --- The codec ------------------------------------------------------------------------------


async def test_codec_round_trips_and_names_its_key_in_the_metadata() -> None:
    codec = codec_for({"k2026a": new_key()}, "k2026a")
    original = model_payload("Payroll export leaks salaries")

    [encrypted] = await codec.encode([original])

    assert encrypted.metadata["encoding"] == ENCRYPTED == b"binary/encrypted"
    assert encrypted.metadata[KEY_ID] == b"k2026a"
    assert b"Payroll" not in encrypted.SerializeToString()
    assert await codec.decode([encrypted]) == [original]
    # A fresh nonce each time: the same payload never encrypts to the same bytes.
    [again] = await codec.encode([original])
    assert again.data != encrypted.data


async def test_old_keys_still_decrypt_after_a_rotation() -> None:
    old, new = new_key(), new_key()
    before = codec_for({"k2026a": old}, "k2026a")
    [written_before] = await before.encode([model_payload("VPN drops every hour")])

    after = codec_for({"k2026a": old, "k2026b": new}, "k2026b")
    [written_after] = await after.encode([model_payload("VPN drops every hour")])

    assert written_after.metadata[KEY_ID] == b"k2026b"
    decoded = await after.decode([written_before, written_after])
    assert decoded == [model_payload("VPN drops every hour")] * 2


async def test_an_unknown_key_id_is_a_clear_error() -> None:
    [written] = await codec_for({"k2026a": new_key()}, "k2026a").encode([model_payload("x")])
    retired = codec_for({"k2026b": new_key()}, "k2026b")

    with pytest.raises(PayloadDecryptionError, match=r"key id 'k2026a'.*holds \['k2026b'\]"):
        await retired.decode([written])


async def test_tampered_or_relabelled_ciphertext_fails() -> None:
    key_a, key_b = new_key(), new_key()
    codec = codec_for({"a": key_a, "b": key_b}, "a")
    [written] = await codec.encode([model_payload("Invoice totals wrong")])

    flipped = bytearray(written.data)
    flipped[20] ^= 0x01
    tampered = Payload(metadata=dict(written.metadata), data=bytes(flipped))
    with pytest.raises(PayloadDecryptionError, match="does not authenticate"):
        await codec.decode([tampered])

    # The key id is bound to the ciphertext: claiming another configured key fails too.
    relabelled = Payload(metadata={**written.metadata, KEY_ID: b"b"}, data=written.data)
    with pytest.raises(PayloadDecryptionError, match="does not authenticate"):
        await codec.decode([relabelled])


async def test_summaries_stay_readable_and_unencrypted_payloads_pass_decoding() -> None:
    codec = codec_for({"a": new_key()}, "a")
    summary = pydantic_data_converter.payload_converter.to_payload("record opened; notify support_l1")

    assert await codec.encode([summary]) == [summary]
    # History written before encryption was turned on still reads.
    plain = model_payload("written in clear")
    assert await codec.decode([plain]) == [plain]


def test_no_key_means_no_codec() -> None:
    assert data_converter(codec_settings({}, None)) is pydantic_data_converter


def test_a_key_set_adds_the_codec_and_encodes_failure_messages() -> None:
    converter = data_converter(codec_settings({"a": new_key()}, "a"))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    # Everything else is the pydantic converter's.
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class


def test_keys_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("ESCALATOR_CODEC_KEYS", f'{{"k2026a": "{old}", "k2026b": "{new}"}}')
    monkeypatch.setenv("ESCALATOR_CODEC_KEY_ID", "k2026b")
    settings = Settings()

    assert settings.codec_keys["k2026a"].get_secret_value() == old
    # Secrets stay out of reprs (and so out of logs).
    assert old not in repr(settings) and new not in str(settings.codec_keys)
    codec = EncryptionCodec.from_settings(settings)
    assert codec is not None and codec.current_key_id == "k2026b" and codec.key_ids == ["k2026a", "k2026b"]


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ({"a": None}, "b", r"ESCALATOR_CODEC_KEY_ID is 'b', which ESCALATOR_CODEC_KEYS does not hold"),
        ({"a": None}, None, "ESCALATOR_CODEC_KEY_ID is not"),
        ({}, "a", r"ESCALATOR_CODEC_KEY_ID is 'a'"),
        ({"a": "not base64!"}, "a", r"ESCALATOR_CODEC_KEYS\['a'\] is not base64"),
        ({"a": base64.b64encode(b"sixteen byte key").decode()}, "a", r"is 16 bytes; AES-256-GCM needs 32"),
    ],
)
def test_codec_settings_that_cannot_work_are_refused_without_echoing_a_key(
    keys: dict[str, str | None], current: str | None, message: str
) -> None:
    filled = {key_id: key or new_key() for key_id, key in keys.items()}
    with pytest.raises(CodecConfigError, match=message) as refused:
        EncryptionCodec.from_settings(codec_settings(filled, current))
    for key in filled.values():
        assert key not in str(refused.value)


# --- A real ticket's raw history ------------------------------------------------------------


@dataclasses.dataclass
class CodecStack(Stack):
    settings: Settings
    app: Any


@asynccontextmanager
async def codec_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path, keys: dict[str, str]
) -> AsyncIterator[CodecStack]:
    """The API and a worker, both from settings with codec keys (as a deployment sets them)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'codec.db'}")
    settings = codec_settings(
        keys,
        next(iter(keys)),
        database_url=engine.url.render_as_string(hide_password=False),
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"tickets-{uuid.uuid4().hex[:8]}",
    )
    try:
        await migrate(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            await seed_demo_catalog(session=session)
            await seed_demo_keys(session=session)
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            client: Client = app.state.temporal_client
            assert isinstance(client.data_converter.payload_codec, EncryptionCodec)
            worker_client = await connect_client(settings)
            async with build_worker(worker_client, sessionmaker, settings):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                    yield CodecStack(http, client, sessionmaker, settings, app)
    finally:
        await engine.dispose()


def payloads_in(message: Message, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Payload]]:
    """Every Payload anywhere inside a proto message, with the field names leading to it."""
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                for key, item in value.items():
                    yield from payloads_in(item, (*path, field.name, str(key)))
        elif field.is_repeated:
            for item in value:
                yield from payloads_in(item, (*path, field.name))
        else:
            yield from payloads_in(value, (*path, field.name))


async def raw_history(client: Client, workflow_id: str) -> list[Message]:
    """The history as the server stores it: the service's own responses, page by page."""
    pages: list[Message] = []
    token = b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id),
                next_page_token=token,
            )
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


SECRET_TICKET: dict[str, Any] = {
    "customer_id": "acme",
    "title": "Quarterly ledger shows Zanzibar-7731 totals",
    "description": "Finance sees the Okapi-4402 account twice in every export",
    "severity": 2,
    "product": "identity",
    "channel": "email",
    "category": "bug",
}
SECRET_COMMENT = "Customer says the Narwhal-5518 batch also failed"
SECRET_NOTE = "Internal: Quokka-9964 suspects the export worker"
# One word of each text, found even if the text were cut or quoted in part.
MARKERS = ("Zanzibar-7731", "Okapi-4402", "Narwhal-5518", "Quokka-9964")


async def test_with_a_key_no_ticket_text_is_in_clear_in_the_raw_history(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with codec_stack(dev_env, tmp_path, {"k2026a": new_key()}) as stack:
        filed = await stack.http.post("/tickets", json=SECRET_TICKET, headers=stack.as_(SUPPORT))
        assert filed.status_code == 201, filed.text
        ticket_id = filed.json()["ticket_id"]
        for who, body in (
            (CUSTOMER, {"body": SECRET_COMMENT}),
            (SUPPORT, {"body": SECRET_NOTE, "public": False}),
        ):
            commented = await stack.http.post(
                f"/tickets/{ticket_id}/comment", json=body, headers=stack.as_(who)
            )
            assert commented.status_code == 200, commented.text
        # A refusal's message travels as an encrypted failure, and still reads in the answer.
        refused = await stack.http.post(f"/tickets/{ticket_id}/resume", json={}, headers=stack.as_(SUPPORT))
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"].startswith("The ticket is not waiting on the customer")
        await wait_until_recorded(stack, ticket_id)

        workflow_id = workflow_id_for(ticket_id)
        client = stack.client
        history = await raw_history(client, workflow_id)
        described = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )
        listed = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=client.namespace, query=f"WorkflowId = '{workflow_id}'")
        )
        raw = [*history, described, listed]
        everything = b"".join(message.SerializeToString() for message in raw)
        as_json = "".join(json_format.MessageToJson(message) for message in raw)

        events = [event for page in history for event in page.history.events]  # type: ignore[attr-defined]
        kinds = {EventType.Name(event.event_type) for event in events}
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED" in kinds
        assert "EVENT_TYPE_ACTIVITY_TASK_COMPLETED" in kinds
        # The search works on these bytes: what is meant to be readable is found.
        assert b"acme" in everything and b"TicketSeverity" in everything
        texts = [SECRET_TICKET["title"], SECRET_TICKET["description"], SECRET_COMMENT, SECRET_NOTE]
        in_clear = [text for text in [*texts, *MARKERS] if text.encode() in everything or text in as_json]
        assert not in_clear, f"in clear in the raw history: {in_clear}"

        # Every payload is encrypted, but the UI's summaries (which carry no customer text) and
        # the search attributes the server indexes.
        clear = []
        for message in raw:
            for path, payload in payloads_in(message):
                if payload.metadata.get("encoding") == ENCRYPTED:
                    assert payload.metadata[KEY_ID] == b"k2026a"
                elif "user_metadata" in path and path[-1] in ("summary", "details"):
                    clear.append(pydantic_data_converter.payload_converter.from_payload(payload, str))
                elif "patch-data" in path:
                    # The SDK's own version markers (workflow.patched): a patch id, written by
                    # the SDK's core without the codec.
                    assert "marker_recorded_event_attributes" in path, path
                else:
                    assert "search_attributes" in path or "indexed_fields" in path, (path, payload)
        assert "[Sev 2][Premium] acme / identity" in clear
        assert any(summary.startswith("Sev 2 first response due") for summary in clear)
        assert any(summary.startswith("record opened") for summary in clear)

        # And decoded through the codec, the same history holds every text: the control.
        decoded_history = await stack.handle(ticket_id).fetch_history()
        started = decoded_history.events[0].workflow_execution_started_event_attributes
        [opened] = await client.data_converter.decode(started.input.payloads, [dict])
        assert (opened["title"], opened["description"]) == (
            SECRET_TICKET["title"],
            SECRET_TICKET["description"],
        )


# --- /codec/decode and /codec/encode ----------------------------------------------------------


def payloads_body(payloads: list[Payload]) -> dict[str, Any]:
    body: dict[str, Any] = json_format.MessageToDict(Payloads(payloads=payloads))
    return body


def body_payloads(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


async def test_codec_endpoints_decode_history_and_round_trip_for_admins(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with codec_stack(dev_env, tmp_path, {"k2026a": new_key()}) as stack:
        filed = await stack.http.post("/tickets", json=SECRET_TICKET, headers=stack.as_(SUPPORT))
        ticket_id = filed.json()["ticket_id"]
        [page, *_] = await raw_history(stack.client, workflow_id_for(ticket_id))
        started = page.history.events[0].workflow_execution_started_event_attributes  # type: ignore[attr-defined]
        encrypted_input = list(started.input.payloads)
        assert encrypted_input[0].metadata["encoding"] == ENCRYPTED

        # What `temporal workflow show --codec-endpoint` and the UI send: the raw payloads.
        decoded = await stack.http.post(
            "/codec/decode", json=payloads_body(encrypted_input), headers=stack.as_(ADMIN)
        )
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["content-type"] == "application/json"
        assert decoded.headers["cache-control"] == "no-store"
        [opened] = body_payloads(decoded.json())
        assert opened.metadata["encoding"] == b"json/plain"
        assert SECRET_TICKET["title"].encode() in opened.data

        # Encode, then decode: the same payload back, encrypted on the way with the current key.
        plain = [model_payload("Round trip through the API"), model_payload("second")]
        encoded = await stack.http.post("/codec/encode", json=payloads_body(plain), headers=stack.as_(ADMIN))
        assert encoded.status_code == 200, encoded.text
        sealed = body_payloads(encoded.json())
        assert [p.metadata[KEY_ID] for p in sealed] == [b"k2026a", b"k2026a"]
        assert b"Round trip" not in b"".join(p.data for p in sealed)
        back = await stack.http.post("/codec/decode", json=encoded.json(), headers=stack.as_(ADMIN))
        assert body_payloads(back.json()) == plain

        # Refusals: support and customers may not decode; no key is a 401; bad bodies and
        # unknown keys are problems that say what is wrong.
        for who, status in ((SUPPORT, 403), (CUSTOMER, 403)):
            refused = await stack.http.post(
                "/codec/decode", json=payloads_body(encrypted_input), headers=stack.as_(who)
            )
            assert refused.status_code == status and refused.json()["rule"] == "forbidden"
        anonymous = await stack.http.post("/codec/decode", json=payloads_body(encrypted_input))
        assert anonymous.status_code == 401
        for body in (b'{"payloads": 7}', b'{"payloads": [[], []]}'):
            garbled = await stack.http.post("/codec/decode", content=body, headers=stack.as_(ADMIN))
            assert garbled.status_code == 422 and garbled.json()["rule"] == "codec_body"
        foreign = await codec_for({"other": new_key()}, "other").encode([model_payload("x")])
        unknown = await stack.http.post(
            "/codec/decode", json=payloads_body(foreign), headers=stack.as_(ADMIN)
        )
        assert unknown.status_code == 422 and unknown.json()["rule"] == "codec_key"
        assert "key id 'other'" in unknown.json()["detail"]


async def test_codec_endpoints_answer_the_ui_origin_preflight_and_no_other(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with codec_stack(dev_env, tmp_path, {"k2026a": new_key()}) as stack:
        assert set(stack.settings.codec_cors_origins) == {"http://127.0.0.1:8233", UI_ORIGIN}
        preflight_headers = {
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        }
        for path in ("/codec/decode", "/codec/encode"):
            preflight = await stack.http.options(path, headers=preflight_headers)
            assert preflight.status_code == 200, preflight.text
            assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
            assert "POST" in preflight.headers["access-control-allow-methods"]
            allowed = {
                h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
            }
            assert {"authorization", "content-type", "x-namespace"} <= allowed

        # The actual call from the UI carries the origin and gets it back.
        called = await stack.http.post(
            "/codec/decode",
            json={"payloads": []},
            headers={**stack.as_(ADMIN), "Origin": UI_ORIGIN, "X-Namespace": "default"},
        )
        assert called.status_code == 200 and called.json() == {"payloads": []}
        assert called.headers["access-control-allow-origin"] == UI_ORIGIN

        # Another origin is refused, and no other path answers CORS at all.
        elsewhere = await stack.http.options(
            "/codec/decode", headers={**preflight_headers, "Origin": "http://evil.example"}
        )
        assert elsewhere.status_code == 400
        assert "access-control-allow-origin" not in elsewhere.headers
        tickets = await stack.http.options("/tickets", headers=preflight_headers)
        assert "access-control-allow-origin" not in tickets.headers


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app on a real port (its lifespan already ran), for clients outside this process.

    The socket listens before the server starts, so a client that connects early waits in the
    backlog instead of being refused: nothing to poll for.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


def payload_bytes(shown: Any) -> bytes:
    """The base64 `data` and `metadata` of every payload in `temporal ... --output json`, decoded."""
    found = []
    if isinstance(shown, dict):
        for key, value in shown.items():
            if key == "data" and isinstance(value, str):
                found.append(base64.b64decode(value))
            elif key == "metadata" and isinstance(value, dict):
                found.extend(base64.b64decode(v) for v in value.values() if isinstance(v, str))
            else:
                found.append(payload_bytes(value))
    elif isinstance(shown, list):
        found.extend(payload_bytes(item) for item in shown)
    return b"\n".join(found)


async def temporal_cli(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "temporal"),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_temporal_cli_shows_a_decoded_history_through_the_codec_endpoint(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The README's command, for real: `temporal workflow show --codec-endpoint ... --codec-auth`."""
    async with codec_stack(dev_env, tmp_path, {"k2026a": new_key()}) as stack:
        filed = await stack.http.post("/tickets", json=SECRET_TICKET, headers=stack.as_(SUPPORT))
        workflow_id = filed.json()["workflow_id"]
        await wait_until_recorded(stack, filed.json()["ticket_id"])
        address = stack.settings.temporal_address
        show = ("workflow", "show", "--workflow-id", workflow_id, "--address", address, "--output", "json")

        async with served(stack.app) as base_url:
            decoded = await temporal_cli(
                *show, "--codec-endpoint", f"{base_url}/codec", "--codec-auth", f"Bearer {ADMIN}"
            )
        encrypted = await temporal_cli(*show)

        # JSON output keeps each payload's bytes as base64: read them all.
        decoded_bytes, encrypted_bytes = (
            payload_bytes(json.loads(decoded)),
            payload_bytes(json.loads(encrypted)),
        )
        for text in (SECRET_TICKET["title"], SECRET_TICKET["description"]):
            assert text.encode() in decoded_bytes
            assert text.encode() not in encrypted_bytes
        assert b"binary/encrypted" in encrypted_bytes and b"binary/encrypted" not in decoded_bytes
