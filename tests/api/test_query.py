"""The query string as every route reads it (``wegent.api.params.parse_query``)."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest

from wegent.api.params import parse_query
from wegent.errors import BadRequest


def test_a_query_without_escapes_reads_as_parse_qsl_reads_it() -> None:
    """The fast path (no ``%`` or ``+``) answers exactly what ``parse_qsl`` does, on 50,000
    generated queries: blank values, fields without ``=``, ``=`` in values, empty fields."""
    rng = random.Random(14)
    checked = 0
    for _ in range(50_000):
        query = "".join(rng.choice("ab=&;x1") for _ in range(rng.randint(0, 12)))
        pairs = parse_qsl(query, keep_blank_values=True)
        if len(dict(pairs)) != len(pairs):
            with pytest.raises(BadRequest):
                parse_query(query.encode())
            continue
        assert parse_query(query.encode()) == dict(pairs), query
        checked += 1
    assert checked > 10_000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"limit=100", {"limit": "100"}),
        (b"a=1&&b=&c", {"a": "1", "b": "", "c": ""}),
        (b"x=a%3Db+c", {"x": "a=b c"}),  # escapes: parse_qsl's own path
        (b"labelSelector=app%20in%20(a,b)", {"labelSelector": "app in (a,b)"}),
    ],
)
def test_queries(raw: bytes, expected: dict[str, str]) -> None:
    assert parse_query(raw) == expected


def test_a_repeated_parameter_or_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(BadRequest, match="query parameter a is given more than once"):
        parse_query(b"a=1&b=2&a=3")
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        parse_query(b"a=\xff")
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        parse_query(b"a=%ff")
