"""The one data converter: pydantic v2 JSON, an AES-GCM payload codec with key IDs, and
failures whose messages and stack traces are encoded too. Workers, clients, the `ccs`
command, the codec server, tests and replay all use ``data_converter``."""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# A payload this large (a status, a batch of steps) is deflated before it is encrypted: JSON
# shrinks 3-5x, and so does what Temporal stores, sends and replays. Marked beside the key ID
# and authenticated with it (relabelling fails like a wrong key); smaller payloads are left as
# they were, and payloads written before this decode as before.
COMPRESSION = "encryption-compression"
COMPRESS_FROM = 512  # bytes


class UnknownKeyError(ValueError):
    pass


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM. The first key encrypts; every key decrypts, so a rotated-out key still reads."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError("the active encryption key must be among the keys")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"encryption key {kid!r} must be 32 bytes (AES-256)")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active = active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self._encode(payloads, COMPRESS_FROM)

    async def encode_uncompressed(self, payloads: Sequence[Payload]) -> list[Payload]:
        """For a ciphertext kept without its metadata but the key ID (a case record's snapshot)."""
        return self._encode(payloads, None)

    def _encode(self, payloads: Sequence[Payload], compress_from: int | None) -> list[Payload]:
        cipher = self._ciphers[self.active]
        out = []
        for p in payloads:
            plain = p.SerializeToString()
            metadata = {"encoding": ENCODING, KEY_ID: self.active.encode()}
            if compress_from is not None and len(plain) >= compress_from:
                plain, metadata[COMPRESSION] = zlib.compress(plain, 1), b"zlib"
            nonce = os.urandom(12)
            data = nonce + cipher.encrypt(nonce, plain, _aad(metadata))
            out.append(Payload(metadata=metadata, data=data))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)
                continue
            kid = p.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise UnknownKeyError(f"payload encrypted with unknown key id {kid!r}")
            plain = cipher.decrypt(p.data[:12], p.data[12:], _aad(p.metadata))
            if COMPRESSION in p.metadata:  # (authenticated: only "zlib" was ever written)
                plain = zlib.decompress(plain)
            out.append(Payload.FromString(plain))
        return out


def _aad(metadata) -> bytes:
    """What the tag authenticates beside the data: the key ID, and the compression if any."""
    compression = metadata.get(COMPRESSION)
    return metadata[KEY_ID] + (b"/" + compression if compression else b"")


@dataclasses.dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    active: str
    case_id_secret: bytes


def parse_keys(spec: str) -> tuple[dict[str, bytes], str]:
    """``"k2:BASE64,k1:BASE64"`` -> keys and the active (first) key ID."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, b64 = part.partition(":")
        kid = kid.strip()
        if not sep or not kid:
            raise ValueError("CCS_ENCRYPTION_KEYS must look like 'keyid:base64key,oldkeyid:base64key'")
        if kid in keys:  # a second entry would silently replace the first, the active key
            raise ValueError(f"CCS_ENCRYPTION_KEYS: key id {kid!r} is listed twice")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except ValueError:
            raise ValueError(f"CCS_ENCRYPTION_KEYS: key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"CCS_ENCRYPTION_KEYS: key {kid!r} is {len(key)} bytes; AES-256 needs 32 "
                             "(make one with: openssl rand -base64 32)")
        keys[kid] = key
    if not keys:
        raise ValueError("CCS_ENCRYPTION_KEYS holds no key")
    return keys, next(iter(keys))


def load_keyring(settings) -> Keyring:
    """Keys from the environment, or (one machine) from CCS_HOME/keys.json, made on first use."""
    path = Path(settings.home_dir) / "keys.json"
    stored: dict = {}
    if not (settings.encryption_keys and settings.case_id_secret):
        if path.exists():
            stored = json.loads(path.read_text())
        else:
            stored = {
                "encryption_keys": "k1:" + base64.b64encode(os.urandom(32)).decode(),
                "case_id_secret": base64.b64encode(os.urandom(32)).decode(),
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            # Owner-only from the first byte, and never replace keys another process just made.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(stored, indent=2))
            try:
                os.link(tmp, path)
            except FileExistsError:
                stored = json.loads(path.read_text())
            finally:
                tmp.unlink()
    keys, active = parse_keys(settings.encryption_keys or stored["encryption_keys"])
    secret = base64.b64decode(settings.case_id_secret or stored["case_id_secret"])
    return Keyring(keys=keys, active=active, case_id_secret=secret)


# The models' TypeAdapters, built once per process (the payload types are the models', passed
# through the workflow sandbox). The SDK makes a payload converter, and with it an empty cache,
# for every workflow it loads, and building an adapter costs far more than validating with it.
_adapter = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _PydanticJSON(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            adapter = _adapter(Any if type_hint is None else type_hint)
        except TypeError:  # an unhashable hint: as the SDK does it
            return super().from_payload(payload, type_hint)
        return adapter.validate_json(payload.data)


class PayloadConverter(CompositePayloadConverter):
    """The SDK's pydantic payload converter, with the process-wide TypeAdapters."""

    def __init__(self) -> None:
        super().__init__(*(_PydanticJSON() if isinstance(c, JSONPlainPayloadConverter) else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters))


def data_converter(keyring: Keyring) -> DataConverter:
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=PayloadConverter,
        payload_codec=EncryptionCodec(keyring.keys, keyring.active),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
