"""Batch bodies (JSON and YAML streams) and RFC 7386 merge patch. No database."""

from __future__ import annotations

import copy
import json

import pytest

from wegent.errors import BadRequest, Invalid
from wegent.resources import manifests
from wegent.resources.manifests import MAX_MANIFESTS, parse_manifests
from wegent.resources.merge_patch import merge_patch

YAML = "application/yaml"
JSON = "application/json"


def parse(text: str | bytes, media_type: str = YAML) -> list[object]:
    return parse_manifests(text.encode() if isinstance(text, str) else text, media_type)


def bad(text: str | bytes, media_type: str = YAML) -> str:
    with pytest.raises(BadRequest) as info:
        parse(text, media_type)
    return info.value.message


def assert_json_compatible(value: object) -> None:
    """Only what JSON holds: dicts with string keys, lists, str, int, finite float, bool, None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            assert all(isinstance(key, str) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            assert item is None or type(item) in (str, int, float, bool), repr(item)


# JSON bodies


@pytest.mark.parametrize(
    ("body", "items"),
    [
        ("[]", []),
        ('[{"kind":"Ghost"},{"kind":"Bot"}]', [{"kind": "Ghost"}, {"kind": "Bot"}]),
        ('{"kind":"Ghost"}', [{"kind": "Ghost"}]),
        ('[1, "x", null, [], {}]', [1, "x", None, [], {}]),
        ('  [ {"a": 1.5e3, "b": true} ]\n', [{"a": 1500.0, "b": True}]),
    ],
)
def test_json(body: str, items: list[object]) -> None:
    assert parse(body, JSON) == items


@pytest.mark.parametrize(
    "media_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ",
    ],
)
def test_json_media_type_spellings(media_type: str) -> None:
    assert parse("[1]", media_type) == [1]


def test_json_byte_order_mark_is_ignored() -> None:
    assert parse(b'\xef\xbb\xbf[{"a":1}]', JSON) == [{"a": 1}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('"x"', "the body must be a JSON array of manifests, or one manifest object"),
        ("1", "the body must be a JSON array of manifests, or one manifest object"),
        ("null", "the body must be a JSON array of manifests, or one manifest object"),
        ("true", "the body must be a JSON array of manifests, or one manifest object"),
        ("", "request body is not valid JSON: Input data was truncated"),
        (
            "[1,]",
            "request body is not valid JSON: JSON is malformed: trailing comma in array (byte 3)",
        ),
        (
            "[1] [2]",
            "request body is not valid JSON: JSON is malformed: trailing characters (byte 5)",
        ),
        ("[" * 5000, "request body is nested too deeply"),
    ],
)
def test_bad_json(body: str, message: str) -> None:
    assert bad(body, JSON) == message


# Shared checks


@pytest.mark.parametrize("media_type", [JSON, YAML])
def test_not_utf8(media_type: str) -> None:
    assert bad(b'[{"a": "\xff"}]', media_type) == "request body is not valid UTF-8 (byte 8)"


@pytest.mark.parametrize("media_type", [JSON, YAML])
def test_utf16_is_not_utf8(media_type: str) -> None:
    body = "[1]".encode("utf-16")
    assert bad(body, media_type) == "request body is not valid UTF-8 (byte 0)"


@pytest.mark.parametrize(
    "media_type", ["text/plain", "application/xml", "", "application/merge-patch+json", "yaml"]
)
def test_other_media_types_are_a_value_error(media_type: str) -> None:
    with pytest.raises(ValueError, match="unsupported media type") as info:
        parse("[]", media_type)
    assert not isinstance(info.value, BadRequest)


def test_limit_json() -> None:
    assert len(parse(json.dumps([{}] * MAX_MANIFESTS), JSON)) == 500
    with pytest.raises(Invalid) as info:
        parse(json.dumps([{}] * 501), JSON)
    assert info.value.message == "at most 500 manifests per request, got 501"
    assert info.value.causes == []


def test_limit_yaml_counts_items_across_documents() -> None:
    stream = "\n---\n".join(["a: 1"] * 300 + ["- b: 1\n- b: 2"] * 100)
    assert len(parse(stream)) == 500
    with pytest.raises(Invalid) as info:
        parse(stream + "\n---\nc: 1\n---\nd: 1")
    assert info.value.message == "at most 500 manifests per request, got 502"
    assert info.value.causes == []


# YAML streams


@pytest.mark.parametrize(
    "media_type",
    ["application/yaml", "application/x-yaml", "text/yaml", "text/yaml; charset=utf-8"],
)
def test_yaml_media_types(media_type: str) -> None:
    assert parse("a: 1", media_type) == [{"a": 1}]


def test_yaml_stream() -> None:
    stream = """\
apiVersion: agent.wecode.io/v1
kind: Ghost
metadata:
  name: g1
spec:
  systemPrompt: |
    You are helpful.
---
kind: Bot
metadata: {name: b1, labels: {team: core}}
spec:
  ghostRef: {name: g1}
"""
    assert parse(stream) == [
        {
            "apiVersion": "agent.wecode.io/v1",
            "kind": "Ghost",
            "metadata": {"name": "g1"},
            "spec": {"systemPrompt": "You are helpful.\n"},
        },
        {
            "kind": "Bot",
            "metadata": {"name": "b1", "labels": {"team": "core"}},
            "spec": {"ghostRef": {"name": "g1"}},
        },
    ]


@pytest.mark.parametrize(
    ("stream", "items"),
    [
        ("", []),
        ("# only a comment\n", []),
        ("---\n---\n", []),
        ("---\na: 1\n---\n\n---\n# nothing\n---\nb: 2\n...\n", [{"a": 1}, {"b": 2}]),
        ("- a: 1\n- b: 2\n---\nc: 3\n", [{"a": 1}, {"b": 2}, {"c": 3}]),
        ("- [1, 2]\n- []\n", [[1, 2], []]),
        ("[]\n---\n- x\n", ["x"]),
        ("hello\n---\n42\n", ["hello", 42]),
        ("--- null\n--- ~\n---\na: null\n", [{"a": None}]),
        ("%YAML 1.1\n---\na: 1\n", [{"a": 1}]),
        ("\ufeffa: 1\n", [{"a": 1}]),
        ("a: 1\r\nb: 2\r\n", [{"a": 1, "b": 2}]),
    ],
)
def test_yaml_documents(stream: str, items: list[object]) -> None:
    assert parse(stream) == items


def test_yaml_scalars_are_json_values() -> None:
    stream = """\
date: 2026-11-26
time: 2026-11-26T10:00:00Z
spaced: 2001-12-14 21:59:43.10 -5
tagged: !!timestamp 2001-12-14
int: 42
hex: 0x1F
float: 1.5
exp: 1.0e+3
bool: true
yes: yes
null: ~
empty:
string: "2026-11-26"
equals: =
version: 1.10
"""
    items = parse(stream)
    assert items == [
        {
            "date": "2026-11-26",
            "time": "2026-11-26T10:00:00Z",
            "spaced": "2001-12-14 21:59:43.10 -5",
            "tagged": "2001-12-14",
            "int": 42,
            "hex": 31,
            "float": 1.5,
            "exp": 1000.0,
            "bool": True,
            "yes": True,
            "null": None,
            "empty": None,
            "string": "2026-11-26",
            "equals": "=",
            "version": 1.1,
        }
    ]
    assert_json_compatible(items)


def test_yaml_keys_are_the_text_written() -> None:
    stream = (
        "1: a\non: b\nnull: c\n2026-01-01: d\n1.5: e\n~: f\n'quoted': g\n\"x\\ty\": h\n.inf: i\n"
    )
    items = parse(stream)
    assert items == [
        {
            "1": "a",
            "on": "b",
            "null": "c",
            "2026-01-01": "d",
            "1.5": "e",
            "~": "f",
            "quoted": "g",
            "x\ty": "h",
            ".inf": "i",
        }
    ]
    assert_json_compatible(items)


def test_yaml_duplicate_keys_last_wins() -> None:
    assert parse("a: 1\na: 2\n") == [{"a": 2}]


def test_yaml_inline_merge_key() -> None:
    assert parse("d:\n  <<: {a: 1, b: 1}\n  b: 2\n") == [{"d": {"a": 1, "b": 2}}]


def test_yaml_anchor_without_alias_is_harmless() -> None:
    assert parse("a: &x [1]\nb: &y {c: 2}\n") == [{"a": [1], "b": {"c": 2}}]


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (
            "a: 1\n---\nb: : c\n",
            "invalid YAML in document 2 at line 3: mapping values are not allowed in this context",
        ),
        (
            "a: 1\n---\n---\nkind: Ghost\nspec:\n  x: [1, 2\n  y: 3\n",
            "invalid YAML in document 3 at line 7: did not find expected ',' or ']'",
        ),
        ("a: 'x\n", "invalid YAML in document 1 at line 2: found unexpected end of stream"),
        (
            "- a\nb: 1\n",
            "invalid YAML in document 1 at line 2: did not find expected '-' indicator",
        ),
        ("a: *nope\n", "invalid YAML in document 1 at line 1: found undefined alias"),
        (
            "\ta: 1\n",
            "invalid YAML in document 1 at line 1: found character that cannot start any token",
        ),
        (
            "a: 1\n---\nb: !foo x\n",
            "invalid YAML in document 2 at line 3: could not determine a constructor for the tag '!foo'",
        ),
        (
            "a: !!python/object:os.system x\n",
            "invalid YAML in document 1 at line 1: could not determine a constructor for the"
            " tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
        ("[" * 1200, "invalid YAML in document 1 at line 1: exceeded maximum nesting depth"),
        ("- " * 1200 + "x", "invalid YAML in document 1 at line 1: exceeded maximum nesting depth"),
    ],
)
def test_yaml_syntax_errors(stream: str, message: str) -> None:
    assert bad(stream) == message


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (
            "a: .inf\n",
            "invalid YAML in document 1 at line 1: infinite and NaN numbers are not allowed",
        ),
        (
            "a: 1\nb: -.Inf\n",
            "invalid YAML in document 1 at line 2: infinite and NaN numbers are not allowed",
        ),
        (
            "a: .nan\n",
            "invalid YAML in document 1 at line 1: infinite and NaN numbers are not allowed",
        ),
        (
            "a: !!binary aGVsbG8=\n",
            "invalid YAML in document 1 at line 1: the tag !!binary is not allowed",
        ),
        ("a: !!set {x, y}\n", "invalid YAML in document 1 at line 1: the tag !!set is not allowed"),
        (
            "a: !!omap [x: 1]\n",
            "invalid YAML in document 1 at line 1: the tag !!omap is not allowed",
        ),
        (
            "a: !!pairs [x: 1]\n",
            "invalid YAML in document 1 at line 1: the tag !!pairs is not allowed",
        ),
        ("? [a, b]\n: 1\n", "invalid YAML in document 1 at line 1: mapping keys must be strings"),
        (
            "x: 1\n---\n{a: 1}: 2\n",
            "invalid YAML in document 2 at line 3: mapping keys must be strings",
        ),
    ],
)
def test_yaml_values_json_cannot_hold(stream: str, message: str) -> None:
    assert bad(stream) == message


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("a: &x [1]\n\nb: *x\n", "invalid YAML in document 1 at line 3: aliases are not allowed"),
        ("a: &x 1\nb: *x\n", "invalid YAML in document 1 at line 2: aliases are not allowed"),
        (
            "x: 1\n---\na: &x {}\nb:\n  - *x\n",
            "invalid YAML in document 2 at line 5: aliases are not allowed",
        ),
        ("&k a: 1\n*k : 2\n", "invalid YAML in document 1 at line 2: aliases are not allowed"),
        ("a: &a [*a]\n", "invalid YAML in document 1 at line 1: aliases are not allowed"),
        (
            "b: &b {x: 1}\nc:\n  <<: *b\n",
            "invalid YAML in document 1 at line 3: aliases are not allowed",
        ),
    ],
)
def test_yaml_aliases_are_refused(stream: str, message: str) -> None:
    assert bad(stream) == message


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        previous = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{','.join('*' + previous for _ in range(9))}]")
    assert bad("\n".join(lines)) == "invalid YAML in document 1 at line 2: aliases are not allowed"


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("a: \x00\n", "invalid YAML in document 1 at line 1: unacceptable character #x0000"),
        (
            'a: 1\n---\nb: 2\n---\nc: "\x07"\n',
            "invalid YAML in document 3 at line 5: unacceptable character #x0007",
        ),
        ("\x1b", "invalid YAML in document 1 at line 1: unacceptable character #x001B"),
        ("a: 1\n---\n\x7f", "invalid YAML in document 2 at line 3: unacceptable character #x007F"),
        ("a: \x9f", "invalid YAML in document 1 at line 1: unacceptable character #x009F"),
        ("a: \ufffe", "invalid YAML in document 1 at line 1: unacceptable character #xFFFE"),
    ],
)
def test_yaml_unacceptable_characters(stream: str, message: str) -> None:
    assert bad(stream) == message


def test_yaml_accepts_the_allowed_unusual_characters() -> None:
    """NBSP, private use and astral characters are text; NEL (#x85) is a line break."""
    stream = 'a: "\xa0 \ue000 \U0001f511 \t"\x85b: 1\n'
    assert parse(stream) == [{"a": "\xa0 \ue000 \U0001f511 \t", "b": 1}]


def test_errors_without_a_mark_still_name_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reader errors carry no line; with the character check bypassed libyaml reports them."""
    monkeypatch.setattr(manifests, "_check_characters", lambda text: None)
    assert bad("a: 1\n---\nb: \x00\n").startswith(
        "invalid YAML in document 1: unacceptable character #x0000: control characters are not"
    )


def test_recursion_is_a_bad_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_deep(*args: object, **kwargs: object) -> object:
        raise RecursionError

    monkeypatch.setattr(manifests.yaml, "load_all", too_deep)
    assert bad("a: 1") == "invalid YAML in document 1: nested too deeply"


# RFC 7386 merge patch


RFC_7386_APPENDIX_A = [
    ('{"a":"b"}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'),
    ('{"a":"b"}', '{"a":null}', "{}"),
    ('{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'),
    ('{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'),
    ('{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'),
    ('{"a": {"b": "c"}}', '{"a": {"b": "d", "c": null}}', '{"a": {"b": "d"}}'),
    ('{"a": [{"b":"c"}]}', '{"a": [1]}', '{"a": [1]}'),
    ('["a","b"]', '["c","d"]', '["c","d"]'),
    ('{"a":"b"}', '["c"]', '["c"]'),
    ('{"a":"foo"}', "null", "null"),
    ('{"a":"foo"}', '"bar"', '"bar"'),
    ('{"e":null}', '{"a":1}', '{"e":null,"a":1}'),
    ("[1,2]", '{"a":"b","c":null}', '{"a":"b"}'),
    ("{}", '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC_7386_APPENDIX_A)
def test_rfc_7386_appendix_a(original: str, patch: str, result: str) -> None:
    target, patch_value = json.loads(original), json.loads(patch)
    before = copy.deepcopy((target, patch_value))
    assert merge_patch(target, patch_value) == json.loads(result)
    assert (target, patch_value) == before


def test_merge_keeps_the_target_key_order() -> None:
    merged = merge_patch({"a": 1, "b": 2, "c": 3}, {"d": 4, "b": 5, "a": None})
    assert isinstance(merged, dict)
    assert list(merged.items()) == [("b", 5), ("c", 3), ("d", 4)]


def test_merge_into_a_resource() -> None:
    target = {
        "metadata": {"name": "b1", "labels": {"team": "core", "tier": "x"}},
        "spec": {"ghostRef": {"name": "g1"}, "modelRef": {"name": "m1"}},
    }
    patch = {"metadata": {"labels": {"tier": None, "new": "1"}}, "spec": {"modelRef": None}}
    assert merge_patch(target, patch) == {
        "metadata": {"name": "b1", "labels": {"team": "core", "new": "1"}},
        "spec": {"ghostRef": {"name": "g1"}},
    }


@pytest.mark.parametrize("target", [None, 1, "x", [1], True])
def test_object_patch_on_a_non_object_starts_empty(target: object) -> None:
    assert merge_patch(target, {"a": {"b": None, "c": 1}, "d": None}) == {"a": {"c": 1}}


def test_result_shares_nothing_with_the_inputs() -> None:
    target = {"keep": {"x": [1, {"y": 2}]}, "patched": {"a": [1]}}
    patch = {"patched": {"b": [2, {"z": 3}]}, "new": {"c": [4]}, "list": [{"d": 5}]}
    before = copy.deepcopy((target, patch))
    merged = merge_patch(target, patch)
    assert isinstance(merged, dict)
    merged["keep"]["x"][1]["y"] = 0
    merged["patched"]["a"].append(9)
    merged["patched"]["b"][1]["z"] = 0
    merged["new"]["c"].append(9)
    merged["list"][0]["d"] = 0
    assert (target, patch) == before


def test_non_object_patch_is_copied() -> None:
    patch = [{"a": 1}]
    merged = merge_patch({"x": 1}, patch)
    assert merged == patch
    assert merged is not patch
    assert isinstance(merged, list) and merged[0] is not patch[0]


def test_patch_nested_too_deeply() -> None:
    patch: dict[str, object] = {}
    node = patch
    for _ in range(5000):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    with pytest.raises(BadRequest) as info:
        merge_patch({}, patch)
    assert info.value.message == "the merge patch is nested too deeply"
