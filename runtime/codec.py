"""Encrypted Temporal history: an AES-256-GCM payload codec with keys by id.

Every payload a client or worker sends to Temporal (workflow input, update and signal
arguments, results, activity inputs, failure messages) is encrypted with the current key, and
names that key in its metadata (`encoding: binary/encrypted`, `encryption-key-id: <id>`), so
keys rotate: a new current key encrypts from then on, and payloads encrypted with an older key
decrypt as long as its id stays configured. The key id is also the cipher's associated data,
so a payload cannot be relabelled with another id.

Summaries stay readable. The SDK passes the UI's summaries (the workflow's static summary,
timer and activity summaries) through the codec too, as single JSON strings, while every
payload of this project is a pydantic model (a JSON object). A JSON string is left in clear so
that engineers read a ticket's story in the Temporal UI without the codec; the summaries are
written to carry no customer text (`api.tickets_service.ui_summary`), and the raw-history test
(tests/test_codec.py) checks both: nothing else is in clear, and no ticket text appears.

With no keys configured (the local default) there is no codec at all.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from runtime.settings import Settings

ENCODING = "encoding"
ENCRYPTED = b"binary/encrypted"
KEY_ID = "encryption-key-id"
JSON_PLAIN = b"json/plain"
KEY_BYTES = 32
NONCE_BYTES = 12


class CodecConfigError(ValueError):
    """The codec settings cannot work; the message names the setting, never a key."""


class PayloadDecryptionError(ValueError):
    """An encrypted payload that cannot be decrypted with the configured keys."""


def parse_key(key_id: str, encoded: str) -> bytes:
    """The 32 raw bytes of a key given as base64; a clear error that names only its id."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CodecConfigError(
            f"ESCALATOR_CODEC_KEYS[{key_id!r}] is not base64; make a key with "
            '`python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"`'
        ) from None
    if len(key) != KEY_BYTES:
        raise CodecConfigError(
            f"ESCALATOR_CODEC_KEYS[{key_id!r}] is {len(key)} bytes; AES-256-GCM needs {KEY_BYTES}"
        )
    return key


def stays_clear(payload: Payload) -> bool:
    """A UI summary (one JSON string): left readable, see the module's docstring."""
    return payload.metadata.get(ENCODING) == JSON_PLAIN and payload.data.startswith(b'"')


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM with a random 96-bit nonce per payload: nonce + ciphertext + tag."""

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise CodecConfigError(
                f"ESCALATOR_CODEC_KEY_ID is {current_key_id!r}, which ESCALATOR_CODEC_KEYS does not hold "
                f"(it holds {sorted(keys)})"
            )
        self.current_key_id = current_key_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec | None:
        """The codec the settings ask for, or None when no key is configured."""
        if not settings.codec_keys and settings.codec_key_id is None:
            return None
        if settings.codec_key_id is None:
            raise CodecConfigError(
                "ESCALATOR_CODEC_KEYS is set but ESCALATOR_CODEC_KEY_ID is not: name the key that encrypts"
            )
        keys = {
            key_id: parse_key(key_id, secret.get_secret_value())
            for key_id, secret in settings.codec_keys.items()
        }
        return cls(keys, settings.codec_key_id)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={ENCODING: ENCRYPTED, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r}, which ESCALATOR_CODEC_KEYS does not hold "
                f"(it holds {self.key_ids}); keep retired keys configured while history needs them"
            )
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r} does not authenticate: "
                "it was altered, or that id names a different key now"
            ) from None
        return Payload.FromString(plain)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [payload if stays_clear(payload) else self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # Anything not encrypted (summaries, history written before encryption) passes as is.
        return [
            self.decrypt(payload) if payload.metadata.get(ENCODING) == ENCRYPTED else payload
            for payload in payloads
        ]


def data_converter(settings: Settings) -> DataConverter:
    """The one data converter of every client and worker: pydantic, plus the codec when keys
    are set. Failure messages and stack traces then travel as encrypted payloads too (a
    refusal may quote what a person typed); the client restores them on decoding."""
    codec = EncryptionCodec.from_settings(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
