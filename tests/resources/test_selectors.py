"""Label selectors: grammar, canonical form, Python semantics, SQL text, errors. No database."""

from __future__ import annotations

import json
import random
import re

import pytest

from wegent.errors import BadRequest
from wegent.resources.selectors import (
    MAX_REQUIREMENTS,
    MAX_VALUES,
    Requirement,
    Selector,
    parse_selector,
)


def error(text: str) -> str:
    with pytest.raises(BadRequest) as info:
        parse_selector(text)
    return info.value.message


# Parsing and canonical form


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("a=b", [Requirement("a", "=", ("b",))]),
        ("a==b", [Requirement("a", "=", ("b",))]),
        ("a!=b", [Requirement("a", "!=", ("b",))]),
        ("a=", [Requirement("a", "=", ("",))]),
        ("a!=", [Requirement("a", "!=", ("",))]),
        ("a", [Requirement("a", "exists")]),
        ("!a", [Requirement("a", "!")]),
        ("a in (c,b)", [Requirement("a", "in", ("b", "c"))]),
        ("a notin (b)", [Requirement("a", "notin", ("b",))]),
        ("a in (b,b)", [Requirement("a", "in", ("b",))]),
        ("a in (b,)", [Requirement("a", "in", ("", "b"))]),
        ("a in (,b)", [Requirement("a", "in", ("", "b"))]),
        ("a in (,)", [Requirement("a", "in", ("",))]),
        ("a in(b)", [Requirement("a", "in", ("b",))]),
        ("in=x", [Requirement("in", "=", ("x",))]),
        ("a in (in,notin)", [Requirement("a", "in", ("in", "notin"))]),
        ("example.com/tier=front-end", [Requirement("example.com/tier", "=", ("front-end",))]),
        ("A_b.c-D=X.y_z-9", [Requirement("A_b.c-D", "=", ("X.y_z-9",))]),
        (
            " b = 1 ,\ta\n, ! c ,d notin ( x , y ) ",
            [
                Requirement("a", "exists"),
                Requirement("b", "=", ("1",)),
                Requirement("c", "!"),
                Requirement("d", "notin", ("x", "y")),
            ],
        ),
        ("a=1,a=1,a==1", [Requirement("a", "=", ("1",))]),
    ],
)
def test_parse(text: str, requirements: list[Requirement]) -> None:
    assert parse_selector(text) == Selector(tuple(requirements))


@pytest.mark.parametrize("text", ["", " ", " \t\r\n "])
def test_empty_selector_matches_everything(text: str) -> None:
    selector = parse_selector(text)
    assert selector == Selector()
    assert selector.canonical == ""
    assert selector.sql("labels", 1) == ("TRUE", [])
    assert selector.matches({}) is True
    assert selector.matches({"a": "b"}) is True


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a==b", "a=b"),
        ("a = b", "a=b"),
        ("b=1,a=2", "a=2,b=1"),
        ("a in ( z , y , x )", "a in (x,y,z)"),
        ("a notin (b,a)", "a notin (a,b)"),
        ("!b, a", "a,!b"),
        ("a=,a!=", "a!=,a="),
        ("a in (b,)", "a in (,b)"),
        ("a in (,)", "a in (,)"),
        ("a notin (,,)", "a notin (,)"),
        ("x/y=1,x=1", "x=1,x/y=1"),
        ("a,!a,a=1,a!=1,a in (1),a notin (1)", "!a,a!=1,a=1,a,a in (1),a notin (1)"),
        ("a=1,b=2,a==1", "a=1,b=2"),
    ],
)
def test_canonical(text: str, canonical: str) -> None:
    assert parse_selector(text).canonical == canonical
    assert parse_selector(canonical).canonical == canonical


def test_equivalent_spellings_share_a_canonical_form() -> None:
    spellings = ["b in (2,1), a==x", "a=x,b in (1,2)", " b in (1,2,1) ,a = x"]
    assert {parse_selector(s).canonical for s in spellings} == {"a=x,b in (1,2)"}


def test_limits_are_inclusive() -> None:
    text = ",".join(f"k{i}" for i in range(MAX_REQUIREMENTS))
    assert len(parse_selector(text).requirements) == MAX_REQUIREMENTS
    values = ",".join(f"v{i}" for i in range(MAX_VALUES))
    assert len(parse_selector(f"k in ({values})").requirements[0].values) == MAX_VALUES


def test_longest_key_and_value() -> None:
    key = f"{'p' * 253}/{'n' * 63}"
    value = "v" * 63
    assert parse_selector(f"{key}={value}").requirements == (Requirement(key, "=", (value,)),)


# Python semantics, a table that the SQL forms below implement the same way


MATCHES = [
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a=b", {"A": "b"}, False),
    ("a=b", {"a": "B"}, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("a=", {"a": "x"}, False),
    ("a!=b", {"a": "b"}, False),
    ("a!=b", {"a": "c"}, True),
    ("a!=b", {}, True),
    ("a!=", {"a": ""}, False),
    ("a!=", {}, True),
    ("a in (b,c)", {"a": "c"}, True),
    ("a in (b,c)", {"a": "d"}, False),
    ("a in (b,c)", {}, False),
    ("a in (b,)", {"a": ""}, True),
    ("a notin (b,c)", {"a": "b"}, False),
    ("a notin (b,c)", {"a": "d"}, True),
    ("a notin (b,c)", {}, True),
    ("a", {"a": ""}, True),
    ("a", {"b": "a"}, False),
    ("!a", {"a": ""}, False),
    ("!a", {"b": "a"}, True),
    ("a=1,b", {"a": "1", "b": "2"}, True),
    ("a=1,b", {"a": "1"}, False),
    ("a=1,!b", {"a": "1"}, True),
    ("a=1,a=2", {"a": "1"}, False),
    ("a,!a", {"a": "1"}, False),
    ("a,!a", {}, False),
    ("x.io/t in (p,q),x.io/t notin (q)", {"x.io/t": "p"}, True),
    ("x.io/t in (p,q),x.io/t notin (q)", {"x.io/t": "q"}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_sql_means_what_matches_means(text: str, labels: dict[str, str], expected: bool) -> None:
    assert sql_verdict(parse_selector(text), labels) is expected


def sql_verdict(selector: Selector, labels: dict[str, str]) -> bool:
    """Evaluates the generated SQL with PostgreSQL's meaning of ``@>`` and ``?`` on an object."""
    sql, params = selector.sql("labels", 1)

    def contains(n: int) -> bool:
        return bool(json.loads(params[n - 1]).items() <= labels.items())

    def has(n: int) -> bool:
        return params[n - 1] in labels

    expr = re.sub(r"labels @> \$(\d+)::jsonb", r"contains(\1)", sql)
    expr = re.sub(r"labels \? \$(\d+)", r"has(\1)", expr)
    for sql_word, python_word in (("NOT ", "not "), (" AND ", " and "), (" OR ", " or ")):
        expr = expr.replace(sql_word, python_word)
    assert re.fullmatch(r"[a-z()0-9 ]+|TRUE", expr), expr
    return bool(eval(expr.replace("TRUE", "True"), {"contains": contains, "has": has}))  # noqa: S307


# SQL


@pytest.mark.parametrize(
    ("text", "first", "sql", "params"),
    [
        ("a=b", 1, "labels @> $1::jsonb", ['{"a":"b"}']),
        ("a==b", 3, "labels @> $3::jsonb", ['{"a":"b"}']),
        ("a=", 1, "labels @> $1::jsonb", ['{"a":""}']),
        ("a!=b", 2, "NOT (labels @> $2::jsonb)", ['{"a":"b"}']),
        ("a", 1, "labels ? $1", ["a"]),
        ("!a", 5, "NOT (labels ? $5)", ["a"]),
        ("a in (b)", 1, "(labels @> $1::jsonb)", ['{"a":"b"}']),
        (
            "a in (c,b)",
            1,
            "(labels @> $1::jsonb OR labels @> $2::jsonb)",
            ['{"a":"b"}', '{"a":"c"}'],
        ),
        (
            "a notin (b,c)",
            4,
            "NOT (labels @> $4::jsonb OR labels @> $5::jsonb)",
            ['{"a":"b"}', '{"a":"c"}'],
        ),
        (
            "x.io/t=v",
            1,
            "labels @> $1::jsonb",
            ['{"x.io/t":"v"}'],
        ),
        (
            "!c, b in (1,2), a=x",
            2,
            "(labels @> $2::jsonb AND (labels @> $3::jsonb OR labels @> $4::jsonb)"
            " AND NOT (labels ? $5))",
            ['{"a":"x"}', '{"b":"1"}', '{"b":"2"}', "c"],
        ),
    ],
)
def test_sql(text: str, first: int, sql: str, params: list[str]) -> None:
    assert parse_selector(text).sql("labels", first) == (sql, params)


def test_sql_uses_the_column_given() -> None:
    assert parse_selector("a,b=c").sql("k.labels", 1) == (
        "(k.labels ? $1 AND k.labels @> $2::jsonb)",
        ["a", '{"b":"c"}'],
    )


def test_sql_parameters_start_at_one() -> None:
    with pytest.raises(ValueError):
        parse_selector("a").sql("labels", 0)


def test_sql_never_carries_user_text() -> None:
    text = "evil.example/x in (a-1,b.2),y!=z_3,!w"
    sql, params = parse_selector(text).sql("labels", 1)
    assert sql == (
        "((labels @> $1::jsonb OR labels @> $2::jsonb) AND NOT (labels ? $3)"
        " AND NOT (labels @> $4::jsonb))"
    )
    for word in ("evil", "a-1", "b.2", "y", "z_3", "w"):
        assert word not in sql
    assert params == ['{"evil.example/x":"a-1"}', '{"evil.example/x":"b.2"}', "w", '{"y":"z_3"}']


# Errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a in (b", 'invalid labelSelector "a in (b": expected ")" at position 7'),
        ("a in (b c)", 'invalid labelSelector "a in (b c)": expected "," or ")" at position 8'),
        ("a in ()", 'invalid labelSelector "a in ()": expected a label value at position 6'),
        ("a in (", 'invalid labelSelector "a in (": expected a label value at position 6'),
        ("a in b", 'invalid labelSelector "a in b": expected "(" at position 5'),
        ("a in", 'invalid labelSelector "a in": expected "(" at position 4'),
        ("a in (=)", 'invalid labelSelector "a in (=)": expected a label value at position 6'),
        ("a=b=c", 'invalid labelSelector "a=b=c": expected "," or end of input at position 3'),
        ("a=b c", 'invalid labelSelector "a=b c": expected "," or end of input at position 4'),
        ("a=(b)", 'invalid labelSelector "a=(b)": expected a label value at position 2'),
        ("a===b", 'invalid labelSelector "a===b": expected a label value at position 3'),
        (
            "a b",
            'invalid labelSelector "a b": expected "=", "==", "!=", "in", "notin", ","'
            " or end of input at position 2",
        ),
        (
            "a>1",
            'invalid labelSelector "a>1": expected "=", "==", "!=", "in", "notin", ","'
            " or end of input at position 1",
        ),
        (
            "a!b",
            'invalid labelSelector "a!b": expected "=", "==", "!=", "in", "notin", ","'
            " or end of input at position 1",
        ),
        ("!a=b", 'invalid labelSelector "!a=b": expected "," or end of input at position 2'),
        ("!", 'invalid labelSelector "!": expected a label key at position 1'),
        ("!!a", 'invalid labelSelector "!!a": expected a label key at position 1'),
        ("=b", 'invalid labelSelector "=b": expected a label key at position 0'),
        (",", 'invalid labelSelector ",": expected a label key at position 0'),
        ("a,", 'invalid labelSelector "a,": expected a label key at position 2'),
        ("a,,b", 'invalid labelSelector "a,,b": expected a label key at position 2'),
        ("a=b,  ", 'invalid labelSelector "a=b,  ": expected a label key at position 6'),
        ("(a)", 'invalid labelSelector "(a)": expected a label key at position 0'),
        (
            "a=b,-c=d",
            'invalid labelSelector "a=b,-c=d": invalid label key "-c": name part must consist'
            " of alphanumeric characters, '-', '_' or '.', and must start and end with an"
            " alphanumeric character at position 4",
        ),
        (
            "Ex.com/a",
            'invalid labelSelector "Ex.com/a": invalid label key "Ex.com/a": prefix part must'
            " be a lowercase DNS subdomain: lower case alphanumeric characters, '-' or '.',"
            " starting and ending with an alphanumeric character at position 0",
        ),
        (
            "/a",
            'invalid labelSelector "/a": invalid label key "/a": prefix part must be non-empty'
            " at position 0",
        ),
        (
            "a/=b",
            'invalid labelSelector "a/=b": invalid label key "a/": name part must be non-empty'
            " at position 0",
        ),
        (
            f"{'k' * 64}",
            f'invalid labelSelector "{"k" * 64}": invalid label key "{"k" * 64}": name part'
            " must be no more than 63 characters at position 0",
        ),
        (
            f"a={'v' * 64}",
            f'invalid labelSelector "a={"v" * 64}": invalid label value "{"v" * 64}": value'
            " must be no more than 63 characters at position 2",
        ),
        (
            "a in (b,c_)",
            'invalid labelSelector "a in (b,c_)": invalid label value "c_": value must be'
            " empty or consist of alphanumeric characters, '-', '_' or '.', and must start"
            " and end with an alphanumeric character at position 8",
        ),
        (
            "a=\u00e9",
            'invalid labelSelector "a=\\u00e9": invalid label value "\\u00e9": value must be'
            " empty or consist of alphanumeric characters, '-', '_' or '.', and must start"
            " and end with an alphanumeric character at position 2",
        ),
        (
            'a="b"',
            'invalid labelSelector "a=\\"b\\"": invalid label value "\\"b\\"": value must be'
            " empty or consist of alphanumeric characters, '-', '_' or '.', and must start"
            " and end with an alphanumeric character at position 2",
        ),
    ],
)
def test_errors(text: str, message: str) -> None:
    assert error(text) == message


def test_too_many_requirements() -> None:
    text = ",".join(f"k{i}" for i in range(MAX_REQUIREMENTS + 1))
    position = text.rindex(",") + 1
    assert error(text).endswith(f": too many requirements (at most 64) at position {position}")


def test_too_many_values() -> None:
    text = "k in (" + ",".join(f"v{i}" for i in range(MAX_VALUES + 1)) + ")"
    position = text.rindex(",") + 1
    assert error(text).endswith(f": too many values (at most 64) at position {position}")


def test_long_input_is_cut_short_in_the_message() -> None:
    text = "a" * 300 + " b"
    quoted = '"' + "a" * 200 + '..."'
    assert error(text).startswith(f"invalid labelSelector {quoted}: invalid label key ")


def test_random_selectors_round_trip_and_sql_agrees_with_matches() -> None:
    rng = random.Random(7)
    for _ in range(300):
        parts = [_random_requirement(rng) for _ in range(rng.randint(1, 5))]
        selector = parse_selector(", ".join(parts))
        again = parse_selector(selector.canonical)
        assert again == selector
        labels = {k: rng.choice(["", "a", "b"]) for k in ("x", "y", "z") if rng.random() < 0.6}
        assert sql_verdict(selector, labels) is selector.matches(labels)


def _random_requirement(rng: random.Random) -> str:
    key = rng.choice(["x", "y", "z"])
    values = ",".join(rng.choice(["", "a", "b", "c"]) for _ in range(rng.randint(1, 3))) or ","
    return rng.choice(
        [
            f"{key}={rng.choice(['a', ''])}",
            f"{key}=={rng.choice(['a', 'b'])}",
            f"{key}!={rng.choice(['a', ''])}",
            f"{key} in ({values})",
            f"{key} notin ({values})",
            key,
            f"!{key}",
        ]
    )


ALPHABET = "ab/.-_=!(), \t\n<>é\x00\ud800" + "in notin "


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_only_bad_request_is_raised(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(1500):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        try:
            selector = parse_selector(text)
        except BadRequest as exc:
            assert exc.message.startswith("invalid labelSelector ")
            assert " at position " in exc.message
            position = int(exc.message.rsplit(" at position ", 1)[1])
            assert 0 <= position <= len(text)
            exc.message.encode("utf-8")  # surrogates are escaped, never echoed raw
        else:
            assert parse_selector(selector.canonical) == selector
            sql, params = selector.sql("labels", 1)
            assert sql.count("$") == len(params)
