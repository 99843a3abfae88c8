"""HS256 access tokens. ``decode`` is the one place tokens are read: every failure is the same."""

from __future__ import annotations

import re
import time

import jwt
import msgspec

ALGORITHM = "HS256"
LEEWAY_S = 30
REQUIRED_CLAIMS = ["sub", "username", "role", "iat", "exp"]
MAX_USER_ID = 2**31 - 1  # users.id is a PostgreSQL integer
_USER_ID = re.compile(r"[1-9][0-9]{0,9}")  # ASCII digits only: "١٢" is a digit string too


class InvalidToken(Exception):
    """Any problem with a token; callers answer one opaque 401."""


class Claims(msgspec.Struct, frozen=True):
    """What a valid token says; authorization still reads the user's current record."""

    user_id: int
    username: str


class TokenIssuer:
    """Issues and decodes tokens with one key and one pinned algorithm.

    A token whose signature was verified is remembered until it expires, so a client sending the
    same token on every request pays the HMAC and claim checks once (what the server authorizes
    on, the user's record, is still read through its own short cache).
    """

    def __init__(self, secret: str, lifetime_minutes: int, cache_size: int = 10_000) -> None:
        self._secret = secret
        self.lifetime_s = lifetime_minutes * 60
        self._verified: dict[str, tuple[float, Claims]] = {}
        self._cache_size = cache_size

    def issue(self, user_id: int, username: str, role: str) -> str:
        now = int(time.time())
        payload = {
            "sub": str(user_id),
            "username": username,
            "role": role,
            "iat": now,
            "exp": now + self.lifetime_s,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> Claims:
        """Validate signature, algorithm, required claims, expiry and issue time."""
        known = self._verified.get(token)
        if known is not None:
            if known[0] + LEEWAY_S >= time.time():
                return known[1]
            del self._verified[token]
        claims, expires = self._verify(token)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = (expires, claims)
        return claims

    def _verify(self, token: str) -> tuple[Claims, float]:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS, "verify_iat": True},
            )
            iat, sub, username = payload["iat"], payload["sub"], payload["username"]
            if not isinstance(iat, int | float) or iat > time.time() + LEEWAY_S:
                raise InvalidToken
            if not isinstance(sub, str) or not _USER_ID.fullmatch(sub):
                raise InvalidToken  # a user id is what this server puts there, nothing else
            if not isinstance(username, str) or int(sub) > MAX_USER_ID:
                raise InvalidToken
            return Claims(user_id=int(sub), username=username), float(payload["exp"])
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken from exc
