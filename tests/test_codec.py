"""The AES-GCM payload codec, key rotation, the keyring on one machine, and the codec
server that the Temporal Web UI and `temporal workflow show --codec-endpoint` call."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload

from models.converter import (
    COMPRESS_FROM,
    COMPRESSION,
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    Keyring,
    UnknownKeyError,
    data_converter,
    load_keyring,
    parse_keys,
)
from models.settings import Settings
from workers.codec_server import codec_app

SECRET = {"first_name": "Marisol", "last_name": "Quintanilla-Test", "date_of_birth": "2017-02-28",
          "cin": "98765432Q"}
UI_ORIGIN = "http://localhost:8233"


def key() -> bytes:
    return os.urandom(32)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def plain_payloads(*values) -> list[Payload]:
    conv = data_converter(Keyring({"x": key()}, "x", b""))
    return conv.payload_converter.to_payloads(list(values))


def assert_no_plaintext(raw: bytes) -> None:
    for value in SECRET.values():
        assert value.encode() not in raw, f"{value!r} readable in an encoded payload"


async def test_round_trip_hides_the_payload_and_names_the_key():
    codec = EncryptionCodec({"k2": key(), "k1": key()}, "k2")
    plain = await plain_payloads(SECRET, "Marisol")
    encoded = await codec.encode(plain)
    assert len(encoded) == 2
    for p in encoded:
        assert p.metadata["encoding"] == ENCODING
        assert p.metadata[KEY_ID] == b"k2"
        assert_no_plaintext(p.SerializeToString())
    assert await codec.decode(encoded) == plain
    # The same value encrypts differently each time (random nonce).
    again = await codec.encode(plain)
    assert again[0].data != encoded[0].data


async def test_data_converter_round_trips_models():
    from models.case import Actor

    conv = data_converter(Keyring({"k1": key()}, "k1", b""))
    actor = Actor(id="cm.quintanilla", role="case_manager")
    payloads = await conv.encode([actor, SECRET])
    assert_no_plaintext(b"".join(p.SerializeToString() for p in payloads))
    assert b"cm.quintanilla" not in b"".join(p.data for p in payloads)
    assert await conv.decode(payloads, [Actor, dict]) == [actor, SECRET]


async def test_unencrypted_payloads_pass_through_decode():
    codec = EncryptionCodec({"k1": key()}, "k1")
    plain = await plain_payloads({"a": 1})
    assert await codec.decode(plain) == plain


async def test_rotated_out_key_still_decrypts():
    old, new = key(), key()
    before = EncryptionCodec({"k1": old}, "k1")
    encoded = await before.encode(await plain_payloads(SECRET))
    after = EncryptionCodec({"k2": new, "k1": old}, "k2")
    assert await after.decode(encoded) == await plain_payloads(SECRET)
    # New data goes under the new key.
    assert (await after.encode(await plain_payloads(1)))[0].metadata[KEY_ID] == b"k2"


async def test_keyring_without_the_old_key_cannot_decrypt():
    encoded = await EncryptionCodec({"k1": key()}, "k1").encode(await plain_payloads(SECRET))
    with pytest.raises(UnknownKeyError, match="'k1'"):
        await EncryptionCodec({"k2": key()}, "k2").decode(encoded)


async def test_same_key_id_with_another_key_fails():
    encoded = await EncryptionCodec({"k1": key()}, "k1").encode(await plain_payloads(SECRET))
    with pytest.raises(InvalidTag):
        await EncryptionCodec({"k1": key()}, "k1").decode(encoded)


async def test_tampered_ciphertext_fails():
    codec = EncryptionCodec({"k1": key()}, "k1")
    [p] = await codec.encode(await plain_payloads(SECRET))
    data = bytearray(p.data)
    data[20] ^= 0x01
    with pytest.raises(InvalidTag):
        await codec.decode([Payload(metadata=dict(p.metadata), data=bytes(data))])
    # The key ID is authenticated too: relabelling a payload does not get it decrypted.
    k = key()
    codec2 = EncryptionCodec({"a": k, "b": k}, "a")
    [q] = await codec2.encode(await plain_payloads(SECRET))
    with pytest.raises(InvalidTag):
        await codec2.decode([Payload(metadata={**q.metadata, KEY_ID: b"b"}, data=q.data)])


async def test_a_large_payload_is_stored_compressed_and_reads_back():
    codec = EncryptionCodec({"k1": key()}, "k1")
    status = {**SECRET, "notes": [{"text": f"Called the family about the records, visit {i}"} for i in range(60)]}
    small, large = await plain_payloads(SECRET, status)
    assert small.ByteSize() < COMPRESS_FROM <= large.ByteSize()
    enc_small, enc_large = await codec.encode([small, large])
    assert COMPRESSION not in enc_small.metadata  # too small to gain: as before
    assert enc_large.metadata[COMPRESSION] == b"zlib"
    assert len(enc_large.data) < large.ByteSize() / 3  # what Temporal stores per history event
    assert_no_plaintext(enc_large.SerializeToString())
    assert await codec.decode([enc_small, enc_large]) == [small, large]
    # The mark is authenticated: dropping it (or adding it) fails like a tampered payload.
    stripped = Payload(metadata={k: v for k, v in enc_large.metadata.items() if k != COMPRESSION},
                       data=enc_large.data)
    added = Payload(metadata={**enc_small.metadata, COMPRESSION: b"zlib"}, data=enc_small.data)
    for bad in (stripped, added):
        with pytest.raises(InvalidTag):
            await codec.decode([bad])
    # A snapshot's ciphertext is stored beside its key ID only: sealed uncompressed.
    [sealed] = await codec.encode_uncompressed([large])
    assert COMPRESSION not in sealed.metadata and await codec.decode([sealed]) == [large]


def test_codec_rejects_bad_keys():
    with pytest.raises(ValueError, match="active encryption key"):
        EncryptionCodec({"k1": key()}, "k2")
    with pytest.raises(ValueError, match="32 bytes"):
        EncryptionCodec({"k1": b"short"}, "k1")


def test_parse_keys_first_is_active():
    k2, k1 = key(), key()
    keys, active = parse_keys(f"k2:{b64(k2)}, k1:{b64(k1)}")
    assert active == "k2"
    assert keys == {"k2": k2, "k1": k1}
    assert list(keys) == ["k2", "k1"]


@pytest.mark.parametrize("spec, message", [
    ("", "holds no key"),
    (" , ", "holds no key"),
    ("just-base64-no-id", "must look like 'keyid:base64key"),
    (":" + b64(os.urandom(32)), "must look like 'keyid:base64key"),
    ("k1:not base64!!", "key 'k1' is not valid base64"),
    ("k1:" + b64(os.urandom(16)), "key 'k1' is 16 bytes; AES-256 needs 32"),
    ("k1:", "key 'k1' is 0 bytes"),
    (f"k1:{b64(os.urandom(32))},k1:{b64(os.urandom(32))}", "key id 'k1' is listed twice"),
])
def test_parse_keys_rejects_malformed_specs(spec, message):
    with pytest.raises(ValueError, match="CCS_ENCRYPTION_KEYS") as err:
        parse_keys(spec)
    assert message in str(err.value)
    for part in spec.split(","):  # the message never echoes key material
        material = part.partition(":")[2].strip()
        assert len(material) < 4 or material not in str(err.value)


@pytest.fixture
def home_settings(monkeypatch, tmp_path) -> Settings:
    for name in ("CCS_ENCRYPTION_KEYS", "CCS_CASE_ID_SECRET", "CCS_ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CCS_HOME", str(tmp_path / "home"))
    return Settings()


async def test_load_keyring_creates_keys_file_once(home_settings):
    path = Path(home_settings.home_dir) / "keys.json"
    assert not path.exists()
    first = load_keyring(home_settings)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.keys[first.active]) == 32 and len(first.case_id_secret) == 32
    content = path.read_bytes()
    second = load_keyring(Settings())
    assert second == first
    assert path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]  # no temporary file left
    # What one process encrypts, the next one reads.
    encoded = await data_converter(first).encode([SECRET])
    assert await data_converter(second).decode(encoded, [dict]) == [SECRET]


def test_load_keyring_from_environment_writes_no_file(home_settings, monkeypatch):
    k = key()
    monkeypatch.setenv("CCS_ENCRYPTION_KEYS", f"prod-2:{b64(k)},prod-1:{b64(key())}")
    monkeypatch.setenv("CCS_CASE_ID_SECRET", b64(b"s" * 32))
    ring = load_keyring(Settings())
    assert ring.active == "prod-2" and ring.keys["prod-2"] == k
    assert ring.case_id_secret == b"s" * 32
    assert not (Path(home_settings.home_dir) / "keys.json").exists()


# ---- the codec server ------------------------------------------------------------


def ui_body(payloads: list[Payload]) -> dict:
    """What the Web UI posts: proto JSON, metadata values and data in base64."""
    return {"payloads": [
        {"metadata": {k: b64(v) for k, v in p.metadata.items()}, "data": b64(p.data)} for p in payloads
    ]}


def from_body(body: dict) -> list[Payload]:
    return [Payload(metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
                    data=base64.b64decode(p.get("data", ""))) for p in body["payloads"]]


@pytest.fixture
async def codec_client():
    codec = EncryptionCodec({"k2": key(), "k1": key()}, "k2")
    async with TestClient(TestServer(codec_app(codec, cors_origin=UI_ORIGIN))) as client:
        yield codec, client


async def test_decode_returns_plaintext_json_payloads(codec_client):
    codec, client = codec_client
    plain = await plain_payloads(SECRET, "Marisol")
    encoded = await codec.encode(plain)
    resp = await client.post("/decode", json=ui_body(encoded),
                             headers={"Origin": UI_ORIGIN, "X-Namespace": "default"})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    decoded = from_body(body)
    assert decoded == plain
    assert base64.b64decode(body["payloads"][0]["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(body["payloads"][0]["data"])) == SECRET


async def test_encode_then_decode_through_the_server(codec_client):
    codec, client = codec_client
    plain = await plain_payloads(SECRET)
    resp = await client.post("/encode", json=ui_body(plain))
    assert resp.status == 200
    encoded = from_body(await resp.json())
    assert encoded[0].metadata["encoding"] == ENCODING
    assert encoded[0].metadata[KEY_ID] == b"k2"
    assert_no_plaintext(encoded[0].data)
    assert await codec.decode(encoded) == plain


async def test_bad_bodies_get_400(codec_client):
    codec, client = codec_client
    for body in (b"", b"not json", b"[1, 2]", b'null', b'{"payloads": "x"}',
                 b'{"payloads": [{"metadata": {"encoding": 5}}]}', b"\xff\xfe not utf-8"):
        resp = await client.post("/decode", data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 400, body
        assert "payloads" in (await resp.json())["error"]
    # Undecryptable payloads are a 400 that names the reason, not a 500.
    foreign = await EncryptionCodec({"other": key()}, "other").encode(await plain_payloads(SECRET))
    resp = await client.post("/decode", json=ui_body(foreign))
    assert resp.status == 400
    assert (await resp.json())["error"] == "UnknownKeyError"
    [p] = await codec.encode(await plain_payloads(SECRET))
    tampered = Payload(metadata=dict(p.metadata), data=p.data[:-1] + bytes([p.data[-1] ^ 1]))
    resp = await client.post("/decode", json=ui_body([tampered]))
    assert resp.status == 400
    assert (await resp.json())["error"] == "InvalidTag"


async def test_cors_only_for_the_configured_origin(codec_client):
    codec, client = codec_client
    encoded = await codec.encode(await plain_payloads(1))
    ok = await client.post("/decode", json=ui_body(encoded), headers={"Origin": UI_ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    other = await client.post("/decode", json=ui_body(encoded), headers={"Origin": "https://evil.example"})
    assert other.status == 200  # a non-browser caller is not stopped by CORS; a browser page is
    assert "Access-Control-Allow-Origin" not in other.headers
    none = await client.post("/decode", json=ui_body(encoded))
    assert "Access-Control-Allow-Origin" not in none.headers


async def test_options_preflight(codec_client):
    _, client = codec_client
    resp = await client.options("/decode", headers={
        "Origin": UI_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    })
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = resp.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "x-namespace" in allowed
    denied = await client.options("/decode", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in denied.headers


async def test_no_cors_origin_configured_sends_no_cors_headers():
    codec = EncryptionCodec({"k1": key()}, "k1")
    async with TestClient(TestServer(codec_app(codec))) as client:
        resp = await client.options("/decode", headers={"Origin": UI_ORIGIN})
        assert resp.status == 200
        assert "Access-Control-Allow-Origin" not in resp.headers
