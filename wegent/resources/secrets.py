"""Secrets in specs (API.md §2, §8): sealed at rest, masked on the way out.

A kind declares where its spec holds secrets (:class:`SecretFields` on its registry entry):
Model's are the strings in ``spec.modelConfig.env`` whose key says so. A secret is stored sealed
with AES-256-GCM (``enc:v1:`` + urlsafe base64 of nonce and ciphertext) under a key derived
from the server's secret key, answered as ``"***"`` unless revealed, and a write that sends
``"***"`` back keeps the stored value, so GET → edit → PUT round-trips without the plain text.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SecretFields:
    """Where a kind's spec holds secrets (API.md §2, §8), declared on its registry entry.

    ``maps``: dotted paths of objects whose string values are secrets when their key says so
    (:func:`is_secret_key`), as ``modelConfig.env``; ``fields``: dotted paths of string fields
    that are always secrets, as ``storageConfig.password``. Paths are relative to the spec.
    """

    maps: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def slots(self, spec: Mapping[str, Any] | None) -> list[tuple[tuple[str, ...], str]]:
        """(path of the holding object, key) of every string secret in ``spec``, in order."""
        found: list[tuple[tuple[str, ...], str]] = []
        for dotted in self.maps:
            path = tuple(dotted.split("."))
            holder = _at(spec, path)
            if holder is not None:
                found += [
                    (path, key)
                    for key, value in holder.items()
                    if isinstance(key, str) and is_secret_key(key) and isinstance(value, str)
                ]
        for dotted in self.fields:
            *parent, key = dotted.split(".")
            holder = _at(spec, tuple(parent))
            if holder is not None and isinstance(holder.get(key), str):
                found.append((tuple(parent), key))
        return found


def seal_spec(
    spec: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
    box: SecretBox,
    secrets: SecretFields,
    *,
    kind: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The spec to store: every secret sealed (API.md §8).

    Everything the client sends is taken as plain text (even text that looks sealed), so a
    client can never plant a ciphertext. ``"***"`` keeps the stored value (sealing it if it was
    stored plain, as legacy data may be); so does the stored secret sent back in plain text, so
    that re-applying the same manifest is a no-op rather than a new ciphertext. ``"***"`` where
    nothing is stored is a 422 naming every such field.
    """
    result: dict[str, Any] = dict(spec)
    causes: list[Cause] = []
    for path, key in secrets.slots(spec):
        value: str = _at(spec, path)[key]  # type: ignore[index]
        kept = _at(stored, path)
        previous = kept.get(key) if kept is not None else None
        if not isinstance(previous, str):
            previous = None
        if value == MASK and previous is None:
            field = ".".join(("spec", *path, key))
            causes.append(Cause(reason="FieldValueInvalid", message=_UNKEPT, field=field))
            continue
        if value == MASK or (previous is not None and _shown(previous, box, True) == value):
            assert previous is not None
            sealed = previous if previous.startswith(SEALED_PREFIX) else box.seal(previous)
        else:
            sealed = box.seal(value)
        result = _with(result, path, key, sealed)
    if causes:
        raise invalid(kind, name, causes)
    return result


def open_spec(
    spec: Mapping[str, Any], box: SecretBox, secrets: SecretFields, *, reveal: bool
) -> dict[str, Any]:
    """The spec to answer: secrets masked, or in plain text when revealed. Never raises: a
    value that does not open (key changed) is masked even when revealing."""
    result: dict[str, Any] = dict(spec)
    for path, key in secrets.slots(spec):
        result = _with(result, path, key, _shown(_at(spec, path)[key], box, reveal))  # type: ignore[index]
    return result


def _shown(value: str, box: SecretBox, reveal: bool) -> str:
    if not reveal:
        return MASK
    if not value.startswith(SEALED_PREFIX):
        return value  # legacy plain text
    try:
        return box.open(value)
    except SecretError:
        return MASK


def _at(spec: Mapping[str, Any] | None, path: tuple[str, ...]) -> Mapping[str, Any] | None:
    """The object at ``path`` in ``spec`` when every step is an object, else None."""
    node: object = spec
    for step in path:
        node = node.get(step) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def _with(spec: Mapping[str, Any], path: tuple[str, ...], key: str, value: str) -> dict[str, Any]:
    """A copy of ``spec`` with ``path.key`` set; untouched subtrees are shared, not copied."""
    if not path:
        return {**spec, key: value}
    head, *rest = path
    return {**spec, head: _with(spec[head], tuple(rest), key, value)}
