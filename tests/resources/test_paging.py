"""Continue tokens: round trip, binding to the list, and refusal of anything altered. No database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random

import pytest

from wegent.errors import BadRequest
from wegent.paging import MAX_TOKEN_LENGTH, Pager

SECRET = "s" * 48
SCOPE = "Ghost|alice|team=core|deleted=false"
UID = "7f3c2a9e-0c1d-4f55-9e0b-3a1c2d4e5f60"


def refused(token: str, scope: str = SCOPE, pager: Pager | None = None) -> str:
    with pytest.raises(BadRequest) as info:
        (pager or Pager(SECRET)).decode(token, scope)
    return info.value.message


def unpadded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: bytes, scope: str = SCOPE, secret: str = SECRET) -> str:
    """A token built by hand the documented way, to reach the checks behind the signature."""
    key = hmac.new(secret.encode(), b"wegent continue v1", hashlib.sha256).digest()
    message = len(scope.encode()).to_bytes(8, "big") + scope.encode() + payload
    return unpadded(payload + hmac.new(key, message, hashlib.sha256).digest())


def test_round_trip() -> None:
    pager = Pager(SECRET)
    token = pager.encode(SCOPE, "developer-bot", UID)
    assert pager.decode(token, SCOPE) == ("developer-bot", UID)


def test_another_instance_with_the_same_secret_accepts_it() -> None:
    token = Pager(SECRET).encode(SCOPE, "b1", UID)
    assert Pager(SECRET).decode(token, SCOPE) == ("b1", UID)


def test_token_is_url_safe_base64_of_a_versioned_payload_and_a_mac() -> None:
    token = Pager(SECRET).encode(SCOPE, "a.b_c-d", UID)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert json.loads(raw[:-32]) == {"v": 1, "n": "a.b_c-d", "u": UID}
    assert token == signed(raw[:-32])


def test_encoding_is_deterministic() -> None:
    assert Pager(SECRET).encode(SCOPE, "n", UID) == Pager(SECRET).encode(SCOPE, "n", UID)


def test_longest_name_fits_easily() -> None:
    token = Pager(SECRET).encode(SCOPE * 20, "n" * 63, UID)
    assert len(token) < 256
    assert Pager(SECRET).decode(token, SCOPE * 20) == ("n" * 63, UID)


def test_unicode_scope_round_trips() -> None:
    pager = Pager(SECRET)
    token = pager.encode("Ghost|é|\ud800", "n", UID)
    assert pager.decode(token, "Ghost|é|\ud800") == ("n", UID)
    assert refused(token, "Ghost|é|") == "invalid continue token: not valid for this list"


@pytest.mark.parametrize(
    "scope",
    ["Ghost|bob|team=core|deleted=false", "Bot|alice|team=core|deleted=false", "", SCOPE + " "],
)
def test_token_from_another_list_is_refused(scope: str) -> None:
    token = Pager(SECRET).encode(SCOPE, "b1", UID)
    assert refused(token, scope) == "invalid continue token: not valid for this list"


def test_scope_and_payload_cannot_trade_bytes() -> None:
    """The scope is length-prefixed: moving bytes between scope and payload breaks the MAC."""
    pager = Pager(SECRET)
    token = pager.encode("ab", "n", UID)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    moved = unpadded(b"b" + raw)
    assert refused(moved, "a") == "invalid continue token: not valid for this list"


def test_token_signed_with_another_secret_is_refused() -> None:
    token = Pager("x" * 48).encode(SCOPE, "b1", UID)
    assert refused(token) == "invalid continue token: not valid for this list"


def test_every_single_character_change_is_refused() -> None:
    token = Pager(SECRET).encode(SCOPE, "b1", UID)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, char in enumerate(token):
        for other in alphabet:
            if other != char:
                altered = token[:index] + other + token[index + 1 :]
                assert refused(altered).startswith("invalid continue token: ")


def test_forged_payload_with_the_old_mac_is_refused() -> None:
    token = Pager(SECRET).encode(SCOPE, "b1", UID)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    forged = json.dumps({"v": 1, "n": "zzz", "u": UID}, separators=(",", ":")).encode()
    assert (
        refused(unpadded(forged + raw[-32:])) == "invalid continue token: not valid for this list"
    )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "=",
        "abc=",
        "a",
        "!!!!",
        "a b",
        "é",
        "AAAA+/AA",
        unpadded(b"x" * 32),
    ],
)
def test_malformed(token: str) -> None:
    assert refused(token) == "invalid continue token: malformed"


def test_padded_spelling_is_refused() -> None:
    token = Pager(SECRET).encode(SCOPE, "b1", UID)
    assert len(token) % 4, "pick a name whose token needs padding"
    assert refused(token + "=" * (-len(token) % 4)) == "invalid continue token: malformed"


def test_truncated() -> None:
    token = Pager(SECRET).encode(SCOPE, "b1", UID)
    for end in range(len(token)):
        assert refused(token[:end]).startswith("invalid continue token: ")


def test_too_long_is_refused_before_decoding() -> None:
    assert refused("A" * (MAX_TOKEN_LENGTH + 1)) == "invalid continue token: too long"
    assert refused("!" * 10_000) == "invalid continue token: too long"
    assert refused("A" * MAX_TOKEN_LENGTH) == "invalid continue token: not valid for this list"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"v":1,"n":"a"}',
        b'{"v":1,"n":"a","u":2}',
        b'{"v":1,"n":"a","u":"b","x":0}',
    ],
)
def test_signed_but_malformed_payload(payload: bytes) -> None:
    assert refused(signed(payload)) == "invalid continue token: malformed"


def test_other_version() -> None:
    token = signed(b'{"v":2,"n":"a","u":"b"}')
    assert refused(token) == "invalid continue token: unsupported version"


def test_signed_hand_made_token_is_accepted() -> None:
    assert Pager(SECRET).decode(signed(b'{"v":1,"n":"a","u":"b"}'), SCOPE) == ("a", "b")


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        Pager("")


def test_encode_refuses_a_token_over_the_limit() -> None:
    with pytest.raises(ValueError):
        Pager(SECRET).encode(SCOPE, "n" * 1000, UID)


def test_fuzz_only_bad_request() -> None:
    rng = random.Random(3)
    pager = Pager(SECRET)
    chars = "ABCabc012-_=+/ é\x00"
    for _ in range(2000):
        token = "".join(rng.choice(chars) for _ in range(rng.randint(0, 120)))
        with pytest.raises(BadRequest):
            pager.decode(token, SCOPE)
