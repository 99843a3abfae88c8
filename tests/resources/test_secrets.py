"""Model secrets: detection, sealing, masking and the "***" round trip. No database."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wegent.errors import Cause, Invalid
from wegent.resources.secrets import (
    MASK,
    SecretBox,
    SecretError,
    SecretFields,
    is_secret_key,
    open_spec,
    seal_spec,
)

KEY = "k" * 48
BOX = SecretBox(KEY)


def model(env: object, **config: object) -> dict[str, Any]:
    return {"modelConfig": {"env": env, **config}, "modelType": "llm"}


def env_of(spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = spec["modelConfig"]["env"]
    return result


# Which keys are secrets


@pytest.mark.parametrize(
    "key",
    [
        "API_KEY",
        "ANTHROPIC_API_KEY",
        "api_key",
        "apiKey",
        "KEY",
        "monkey",
        "ACCESS_TOKEN",
        "token",
        "CLIENT_SECRET",
        "Secret",
        "DB_PASSWORD",
        "password",
        "PassWord",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key) is True


@pytest.mark.parametrize(
    "key", ["", "MODEL_ID", "BASE_URL", "PASS", "PASSWD", "TOKE", "SECRE", "KE_Y", "model"]
)
def test_plain_keys(key: str) -> None:
    assert is_secret_key(key) is False


# SecretBox


def test_seal_and_open() -> None:
    sealed = BOX.seal("sk-ant-123")
    assert sealed.startswith("enc:v1:")
    assert "sk-ant-123" not in sealed
    assert BOX.open(sealed) == "sk-ant-123"
    assert SecretBox(KEY).open(sealed) == "sk-ant-123"


@pytest.mark.parametrize("plain", ["", "x", "é ü 漢字 🔑", "a" * 10_000, "\ud800"])
def test_round_trips_any_text(plain: str) -> None:
    assert BOX.open(BOX.seal(plain)) == plain


def test_each_seal_uses_a_fresh_nonce() -> None:
    assert BOX.seal("same") != BOX.seal("same")


def test_sealed_layout_is_nonce_then_ciphertext_with_tag() -> None:
    """The documented format, decrypted independently of SecretBox."""
    sealed = BOX.seal("hello")
    raw = base64.urlsafe_b64decode(sealed.removeprefix("enc:v1:"))
    assert len(raw) == 12 + len("hello") + 16
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"wegent secret box v1",
        info=b"wegent model secrets aes-256-gcm",
    ).derive(KEY.encode())
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None) == b"hello"


def test_wrong_key() -> None:
    with pytest.raises(SecretError, match=r"^the sealed secret does not open with this key$"):
        SecretBox("other" * 10).open(BOX.seal("x"))


def test_tampered() -> None:
    sealed = BOX.seal("secret value")
    raw = bytearray(base64.urlsafe_b64decode(sealed.removeprefix("enc:v1:")))
    raw[20] ^= 1
    tampered = "enc:v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SecretError, match="does not open"):
        BOX.open(tampered)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("plain text", "not a sealed secret"),
        ("enc:v2:AAAA", "not a sealed secret"),
        ("ENC:V1:AAAA", "not a sealed secret"),
        ("enc:v1:", "malformed sealed secret"),
        ("enc:v1:not base64!", "malformed sealed secret"),
        ("enc:v1:AAA", "malformed sealed secret"),
        ("enc:v1:" + base64.urlsafe_b64encode(b"x" * 27).decode(), "malformed sealed secret"),
        ("enc:v1:" + base64.urlsafe_b64encode(b"x" * 28).decode(), "does not open"),
    ],
)
def test_unopenable(value: str, message: str) -> None:
    with pytest.raises(SecretError, match=message):
        BOX.open(value)


def test_secret_error_is_a_value_error() -> None:
    assert issubclass(SecretError, ValueError)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        SecretBox("")


MODEL = SecretFields(maps=("modelConfig.env",))  # as Model's registry entry declares it


def seal_model_spec(
    spec: dict[str, Any], stored: dict[str, Any] | None, box: SecretBox, name: str | None = None
) -> dict[str, Any]:
    return seal_spec(spec, stored, box, MODEL, kind="Model", name=name)


def open_model_spec(spec: dict[str, Any], box: SecretBox, *, reveal: bool) -> dict[str, Any]:
    return open_spec(spec, box, MODEL, reveal=reveal)


# sealing


def test_seals_secrets_only() -> None:
    spec = model({"API_KEY": "sk-1", "BASE_URL": "https://x", "TOKEN_LIMIT": 5, "MODEL": "m"})
    before = copy.deepcopy(spec)
    sealed = seal_model_spec(spec, None, BOX)
    assert spec == before
    env = env_of(sealed)
    assert BOX.open(env["API_KEY"]) == "sk-1"
    assert {k: v for k, v in env.items() if k != "API_KEY"} == {
        "BASE_URL": "https://x",
        "TOKEN_LIMIT": 5,
        "MODEL": "m",
    }
    assert sealed["modelType"] == "llm"
    assert list(env) == ["API_KEY", "BASE_URL", "TOKEN_LIMIT", "MODEL"]


def test_other_config_and_spec_fields_pass_through() -> None:
    spec = model({"KEY": "v"}, model="claude", extra={"a": [1]})
    sealed = seal_model_spec(spec, None, BOX)
    assert sealed["modelConfig"]["model"] == "claude"
    assert sealed["modelConfig"]["extra"] == {"a": [1]}
    assert sealed is not spec
    assert sealed["modelConfig"] is not spec["modelConfig"]


def test_text_that_looks_sealed_is_sealed_again() -> None:
    """Clients cannot plant a ciphertext: whatever they send is plain text."""
    planted = BOX.seal("stolen")
    env = env_of(seal_model_spec(model({"API_KEY": planted}), None, BOX))
    assert BOX.open(env["API_KEY"]) == planted


def test_mask_keeps_the_stored_sealed_value() -> None:
    stored = seal_model_spec(model({"API_KEY": "sk-1", "SECRET": "s"}), None, BOX)
    sent = model({"API_KEY": MASK, "SECRET": "new"})
    sealed = seal_model_spec(sent, stored, BOX, name="m1")
    assert env_of(sealed)["API_KEY"] == env_of(stored)["API_KEY"]
    assert BOX.open(env_of(sealed)["SECRET"]) == "new"


def test_mask_seals_a_legacy_plain_stored_value() -> None:
    sealed = seal_model_spec(model({"API_KEY": MASK}), model({"API_KEY": "legacy"}), BOX)
    assert BOX.open(env_of(sealed)["API_KEY"]) == "legacy"


def test_mask_on_a_plain_key_is_just_a_value() -> None:
    sealed = seal_model_spec(model({"MODEL": MASK}), None, BOX)
    assert env_of(sealed) == {"MODEL": MASK}


@pytest.mark.parametrize(
    "stored",
    [
        None,
        {},
        {"modelConfig": None},
        model({}),
        model({"OTHER_KEY": "enc:v1:x"}),
        model({"API_KEY": 5}),
        model(["API_KEY"]),
    ],
)
def test_mask_without_a_stored_value_is_invalid(stored: dict[str, Any] | None) -> None:
    with pytest.raises(Invalid) as info:
        seal_model_spec(model({"API_KEY": MASK}), stored, BOX, name="m1")
    error = info.value
    assert error.message == (
        'Model "m1" is invalid: spec.modelConfig.env.API_KEY: '
        '"***" keeps the stored secret, but there is none'
    )
    assert (error.kind, error.name) == ("Model", "m1")
    assert error.causes == [
        Cause(
            reason="FieldValueInvalid",
            message='"***" keeps the stored secret, but there is none',
            field="spec.modelConfig.env.API_KEY",
        )
    ]


def test_every_unkept_mask_is_listed() -> None:
    with pytest.raises(Invalid) as info:
        seal_model_spec(model({"A_KEY": MASK, "B_TOKEN": MASK, "C": MASK}), None, BOX)
    assert [c.field for c in info.value.causes] == [
        "spec.modelConfig.env.A_KEY",
        "spec.modelConfig.env.B_TOKEN",
    ]
    assert info.value.message.startswith("the object is invalid: [spec.modelConfig.env.A_KEY: ")


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"modelType": "llm"},
        {"modelConfig": None},
        {"modelConfig": "x"},
        {"modelConfig": {}},
        {"modelConfig": {"model": "m"}},
        {"modelConfig": {"env": None}},
        {"modelConfig": {"env": ["API_KEY", "x"]}},
        {"modelConfig": {"env": "API_KEY=x"}},
    ],
)
def test_nothing_to_seal(spec: dict[str, Any]) -> None:
    before = copy.deepcopy(spec)
    result = seal_model_spec(spec, None, BOX)
    assert result == before
    assert result is not spec
    assert open_model_spec(spec, BOX, reveal=False) == before
    assert open_model_spec(spec, BOX, reveal=True) == before
    assert spec == before


@pytest.mark.parametrize("value", [None, 5, 1.5, True, ["a"], {"a": "b"}])
def test_non_string_secret_values_pass_through(value: object) -> None:
    spec = model({"API_KEY": value})
    assert env_of(seal_model_spec(spec, None, BOX)) == {"API_KEY": value}
    assert env_of(open_model_spec(spec, BOX, reveal=False)) == {"API_KEY": value}


def test_stored_input_is_not_mutated() -> None:
    stored = seal_model_spec(model({"API_KEY": "x"}), None, BOX)
    before = copy.deepcopy(stored)
    seal_model_spec(model({"API_KEY": MASK, "TOKEN": "t"}), stored, BOX)
    assert stored == before


# open_model_spec


def test_masks_secrets() -> None:
    stored = seal_model_spec(model({"API_KEY": "sk-1", "BASE_URL": "u", "N": 1}), None, BOX)
    before = copy.deepcopy(stored)
    shown = open_model_spec(stored, BOX, reveal=False)
    assert env_of(shown) == {"API_KEY": "***", "BASE_URL": "u", "N": 1}
    assert stored == before
    assert shown["modelType"] == "llm"


def test_reveals_secrets() -> None:
    stored = seal_model_spec(model({"API_KEY": "sk-1", "BASE_URL": "u"}), None, BOX)
    assert env_of(open_model_spec(stored, BOX, reveal=True)) == {"API_KEY": "sk-1", "BASE_URL": "u"}


def test_legacy_plain_secret() -> None:
    legacy = model({"API_KEY": "plain"})
    assert env_of(open_model_spec(legacy, BOX, reveal=False)) == {"API_KEY": "***"}
    assert env_of(open_model_spec(legacy, BOX, reveal=True)) == {"API_KEY": "plain"}


@pytest.mark.parametrize(
    "value",
    ["enc:v1:garbage!", "enc:v1:", SecretBox("x" * 48).seal("s")],
    ids=["garbage", "empty", "sealed-under-another-key"],  # the same ids in every process
)
def test_unopenable_secret_is_masked_even_when_revealing(value: str) -> None:
    spec = model({"API_KEY": value})
    assert env_of(open_model_spec(spec, BOX, reveal=True)) == {"API_KEY": "***"}
    assert env_of(open_model_spec(spec, BOX, reveal=False)) == {"API_KEY": "***"}


def test_get_edit_put_round_trip() -> None:
    """GET masks, the client edits another field and PUTs back the mask: the secret survives."""
    stored = seal_model_spec(model({"API_KEY": "sk-1", "MODEL": "a"}), None, BOX, name="m1")
    answered = open_model_spec(stored, BOX, reveal=False)
    answered["modelConfig"]["env"]["MODEL"] = "b"
    again = seal_model_spec(answered, stored, BOX, name="m1")
    assert env_of(again)["API_KEY"] == env_of(stored)["API_KEY"]
    assert env_of(open_model_spec(again, BOX, reveal=True)) == {"API_KEY": "sk-1", "MODEL": "b"}
    assert env_of(stored)["MODEL"] == "a"
