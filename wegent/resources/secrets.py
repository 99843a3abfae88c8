"""Model secrets (API.md §2, §8): sealed at rest, masked on the way out.

A secret is a string in ``spec.modelConfig.env`` whose key says it is one. It is stored sealed
with AES-256-GCM (``enc:v1:`` + urlsafe base64 of nonce and ciphertext) under a key derived
from the server's secret key, answered as ``"***"`` unless revealed, and a write that sends
``"***"`` back keeps the stored value, so GET → edit → PUT round-trips without the plain text.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wegent.errors import Cause, invalid

MASK = "***"
SEALED_PREFIX = "enc:v1:"

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
_SALT = b"wegent secret box v1"
_INFO = b"wegent model secrets aes-256-gcm"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_UNKEPT = '"***" keeps the stored secret, but there is none'


class SecretError(ValueError):
    """A value that is not sealed, or does not open with this key (wrong key or tampered)."""


def is_secret_key(key: str) -> bool:
    """Whether an env key names a secret (§2): it contains KEY, TOKEN, SECRET or PASSWORD."""
    upper = key.upper()
    return any(word in upper for word in _SECRET_WORDS)


class SecretBox:
    """Authenticated encryption of single strings; each seal uses a fresh random nonce."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("the secret key must not be empty")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO)
        self._aead = AESGCM(hkdf.derive(secret_key.encode("utf-8", "surrogatepass")))

    def seal(self, plain: str) -> str:
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8", "surrogatepass"), None)
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SecretError("not a sealed secret")
        try:
            raw = base64.b64decode(sealed[len(SEALED_PREFIX) :], altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise SecretError("malformed sealed secret") from None
        if len(raw) < _NONCE_SIZE + _TAG_SIZE:
            raise SecretError("malformed sealed secret")
        try:
            plain = self._aead.decrypt(raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], None)
        except InvalidTag:
            raise SecretError("the sealed secret does not open with this key") from None
        return plain.decode("utf-8", "surrogatepass")


def seal_model_spec(
    spec: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
    box: SecretBox,
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """The spec to store: every secret sealed, ``"***"`` replaced by the stored sealed value.

    Everything the client sends is taken as plain text (even text that looks sealed), so a
    client can never plant a ciphertext. A stored value that is still plain (legacy) is sealed.
    Sending ``"***"`` where nothing is stored is a 422 naming every such key.
    """
    env = _env(spec)
    if env is None:
        return dict(spec)
    kept = _env(stored) or {}
    sealed: dict[str, Any] = {}
    causes: list[Cause] = []
    for key, value in env.items():
        sealed[key] = value
        if not (isinstance(key, str) and is_secret_key(key) and isinstance(value, str)):
            continue
        if value != MASK:
            sealed[key] = box.seal(value)
        elif isinstance(previous := kept.get(key), str):
            sealed[key] = previous if previous.startswith(SEALED_PREFIX) else box.seal(previous)
        else:
            field = f"spec.modelConfig.env.{key}"
            causes.append(Cause(reason="FieldValueInvalid", message=_UNKEPT, field=field))
    if causes:
        raise invalid("Model", name, causes)
    return _with_env(spec, sealed)


def open_model_spec(spec: Mapping[str, Any], box: SecretBox, *, reveal: bool) -> dict[str, Any]:
    """The spec to answer: secrets masked, or in plain text when revealed. Never raises: a
    value that does not open (key changed) is masked even when revealing."""
    env = _env(spec)
    if env is None:
        return dict(spec)
    shown = {
        key: _shown(value, box, reveal)
        if isinstance(key, str) and is_secret_key(key) and isinstance(value, str)
        else value
        for key, value in env.items()
    }
    return _with_env(spec, shown)


def _shown(value: str, box: SecretBox, reveal: bool) -> str:
    if not reveal:
        return MASK
    if not value.startswith(SEALED_PREFIX):
        return value  # legacy plain text
    try:
        return box.open(value)
    except SecretError:
        return MASK


def _env(spec: Mapping[str, Any] | None) -> dict[Any, Any] | None:
    """``spec.modelConfig.env`` when both levels are objects, else None (nothing to do)."""
    config = spec.get("modelConfig") if isinstance(spec, Mapping) else None
    env = config.get("env") if isinstance(config, Mapping) else None
    return dict(env) if isinstance(env, Mapping) else None


def _with_env(spec: Mapping[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` with a new env; untouched subtrees are shared, not copied."""
    return {**spec, "modelConfig": {**spec["modelConfig"], "env": env}}
