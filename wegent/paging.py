"""Continue tokens for lists (API.md §7).

A token carries the last (name, uid) of a page so the next page starts after it (keyset paging:
cost stays proportional to the page). It is signed, not encrypted: a client can read it but not
forge it, and the signature also covers the list's *scope* (kind, namespaces, selector, filters)
so a token cannot be replayed on another list. Tokens do not expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

import msgspec

from wegent.errors import BadRequest

MAX_TOKEN_LENGTH = 1024
VERSION = 1

_CONTEXT = b"wegent continue v1"
_MAC_SIZE = hashlib.sha256().digest_size
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    n: str
    u: str


class Pager:
    """Encodes and checks continue tokens with a key derived from the server's secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the paging secret must not be empty")
        self._key = hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()

    def encode(self, scope: str, name: str, uid: str) -> str:
        """A token for the page that follows the object (name, uid) in the list ``scope``."""
        payload = msgspec.json.encode(_Payload(VERSION, name, uid))
        token = _b64(payload + self._mac(scope, payload))
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("continue token would exceed the length limit")
        return token

    def decode(self, token: str, scope: str) -> tuple[str, str]:
        """The (name, uid) a token was made for; BadRequest unless intact and made for ``scope``."""
        payload = self._verified(token, scope)
        try:
            decoded = msgspec.json.decode(payload, type=_Payload)
        except msgspec.DecodeError:
            raise _refused("malformed") from None
        if decoded.v != VERSION:
            raise _refused("unsupported version")
        return decoded.n, decoded.u

    def _verified(self, token: str, scope: str) -> bytes:
        """The signed payload; the signature is checked before anything parses the payload."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise _refused("too long")
        data = _unb64(token)
        if data is None or len(data) <= _MAC_SIZE:
            raise _refused("malformed")
        payload, mac = data[:-_MAC_SIZE], data[-_MAC_SIZE:]
        if not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise _refused("not valid for this list")
        return payload

    def _mac(self, scope: str, payload: bytes) -> bytes:
        """Length-prefixed scope, then payload: no two (scope, payload) pairs share an input."""
        scope_bytes = scope.encode("utf-8", "surrogatepass")
        message = len(scope_bytes).to_bytes(8, "big") + scope_bytes + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()


def _refused(reason: str) -> BadRequest:
    return BadRequest(f"invalid continue token: {reason}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(token: str) -> bytes | None:
    """Strict decoding: only the canonical spelling of some bytes is accepted, so that no
    altered token (not even in the unused low bits of the last character) decodes."""
    if not _TOKEN_CHARS.fullmatch(token):
        return None
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == token else None
