"""Strict decoding: fast and slow paths, unknown fields, input aliases, error shape. No database."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from wegent.auth.models import RegisterRequest as Register
from wegent.auth.models import TokenCreate
from wegent.errors import BadRequest, Cause, Invalid
from wegent.resources.decode import Decoded, decode
from wegent.resources.envelope import input_type
from wegent.resources.meta import FieldErrors, Metadata
from wegent.resources.specs import ShellSpec, TeamSpec
from wegent.resources.tasks import StatusUpdate

TEAM = {"members": [{"botRef": {"name": "b1"}}], "collaborationModel": "solo"}


def manifest(spec: object, **extra: object) -> dict[str, Any]:
    return {"metadata": {"name": "x1"}, "spec": spec, **extra}


def encode(value: object) -> bytes:
    return msgspec.json.encode(value)


def spec_json(kind: str, spec: object) -> dict[str, Any]:
    decoded = decode(encode(manifest(spec)), input_type(kind))
    assert decoded.warnings == []
    result: dict[str, Any] = msgspec.json.decode(encode(decoded.value.spec))
    return result


def invalid_causes(kind: str, body: object, **kwargs: str) -> list[Cause]:
    with pytest.raises(Invalid) as info:
        decode(body, input_type(kind), **kwargs)
    return info.value.causes


# Input aliases


def test_runtime_becomes_shell_type() -> None:
    assert spec_json("Shell", {"runtime": "ClaudeCode"}) == {"shellType": "ClaudeCode"}


def test_runtime_equal_to_shell_type_is_accepted_and_dropped() -> None:
    spec = {"runtime": "Agno", "shellType": "Agno", "requiresWorkspace": True}
    assert spec_json("Shell", spec) == {"shellType": "Agno", "requiresWorkspace": True}


def test_runtime_that_contradicts_shell_type_is_an_error_on_runtime() -> None:
    body = encode(manifest({"runtime": "Dify", "shellType": "Chat"}))
    assert invalid_causes("Shell", body) == [
        Cause(
            reason="FieldValueInvalid",
            message='Invalid value: "Dify": must equal shellType ("Chat")',
            field="spec.runtime",
        )
    ]


def test_runtime_values_are_checked_like_shell_type() -> None:
    assert invalid_causes("Shell", encode(manifest({"runtime": "bash"}))) == [
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: "bash": supported values: "Chat", "ClaudeCode", '
            '"Agno", "Dify"',
            field="spec.runtime",
        )
    ]


def test_shell_type_or_runtime_is_required() -> None:
    assert invalid_causes("Shell", encode(manifest({"baseImage": "img"}))) == [
        Cause(reason="FieldValueRequired", message="Required value", field="spec.shellType")
    ]


def test_shell_output_never_carries_runtime() -> None:
    shell = decode(manifest({"runtime": "Chat"}), input_type("Shell")).value.spec
    assert encode(shell) == b'{"shellType":"Chat"}'
    assert msgspec.json.decode(encode(shell), type=ShellSpec) == shell


def test_bind_mode_alias_becomes_bind_mode() -> None:
    assert spec_json("Team", {**TEAM, "bind_mode": ["chat", "code"]})["bindMode"] == [
        "chat",
        "code",
    ]
    assert "bind_mode" not in spec_json("Team", {**TEAM, "bind_mode": ["chat"]})


def test_bind_mode_alias_equal_to_bind_mode_is_accepted() -> None:
    spec = spec_json("Team", {**TEAM, "bindMode": ["chat"], "bind_mode": ["chat"]})
    assert (spec["bindMode"], "bind_mode" in spec) == (["chat"], False)


def test_bind_mode_alias_that_contradicts_bind_mode_is_an_error_on_the_alias() -> None:
    body = encode(manifest({**TEAM, "bindMode": ["chat"], "bind_mode": ["code"]}))
    assert invalid_causes("Team", body) == [
        Cause(
            reason="FieldValueInvalid",
            message='Invalid value: ["code"]: must equal bindMode (["chat"])',
            field="spec.bind_mode",
        )
    ]


def test_a_null_alias_is_as_if_it_were_absent() -> None:
    assert "bindMode" not in spec_json("Team", {**TEAM, "bind_mode": None})
    spec = spec_json("Team", {**TEAM, "bindMode": ["chat"], "bind_mode": None})
    assert (spec["bindMode"], "bind_mode" in spec) == (["chat"], False)


def test_aliases_work_on_already_parsed_documents() -> None:
    decoded = decode(manifest({"runtime": "Chat"}), input_type("Shell"))
    assert decoded.value.spec == ShellSpec(shellType="Chat")
    team = decode(manifest({**TEAM, "bind_mode": ["x"]}), input_type("Team")).value.spec
    assert isinstance(team, TeamSpec)
    assert team.bindMode == ["x"]


# Unknown fields and fieldValidation


UNKNOWN = {
    "metadata": {"name": "t1", "owner": "me"},
    "spec": {
        "members": [{"botRef": {"name": "b1"}}, {"botRef": {"name": "b2", "kind": "Bot"}, "x": 1}],
        "collaborationModel": "solo",
        "foo": True,
    },
    "extra": [],
}


def test_warn_drops_unknown_fields_at_every_depth_and_warns_once_each() -> None:
    decoded = decode(encode(UNKNOWN), input_type("Team"))
    assert decoded.warnings == [
        'unknown field "metadata.owner"',
        'unknown field "spec.members[1].botRef.kind"',
        'unknown field "spec.members[1].x"',
        'unknown field "spec.foo"',
        'unknown field "extra"',
    ]
    assert encode(decoded.value) == (
        b'{"metadata":{"name":"t1"},"spec":{"members":[{"botRef":{"name":"b1"},'
        b'"requireConfirmation":false,"contextPassing":"none"},{"botRef":{"name":"b2"},'
        b'"requireConfirmation":false,"contextPassing":"none"}],"collaborationModel":"solo"}}'
    )


def test_an_unknown_top_level_field_is_named_as_written() -> None:
    decoded = decode(encode(manifest(TEAM, **{"[0]": 1})), input_type("Team"))
    assert decoded.warnings == ['unknown field "[0]"']


def test_ignore_drops_unknown_fields_silently() -> None:
    decoded = decode(encode(UNKNOWN), input_type("Team"), field_validation="Ignore")
    assert decoded == Decoded(decode(encode(UNKNOWN), input_type("Team")).value, [])


def test_strict_refuses_every_unknown_field() -> None:
    with pytest.raises(Invalid) as info:
        decode(encode(UNKNOWN), input_type("Team"), field_validation="Strict")
    assert info.value.message.startswith('Team "t1" is invalid: [')
    assert (info.value.kind, info.value.name) == ("Team", "t1")
    assert info.value.causes == [
        Cause(reason="FieldValueInvalid", message=f'unknown field "{path}"', field=path)
        for path in (
            "metadata.owner",
            "spec.members[1].botRef.kind",
            "spec.members[1].x",
            "spec.foo",
            "extra",
        )
    ]


def test_unknown_fields_inside_a_workspace_repository_are_found() -> None:
    repo = {"gitUrl": "u", "gitRepo": "r", "branchName": "b", "gitDomain": "d", "token": "t"}
    decoded = decode(encode(manifest({"repository": repo})), input_type("Workspace"))
    assert decoded.warnings == ['unknown field "spec.repository.token"']


def test_warn_does_not_turn_unknown_fields_into_causes() -> None:
    body = encode(manifest({"systemPrompt": "", "foo": 1}))
    assert invalid_causes("Ghost", body) == [
        Cause(
            reason="FieldValueInvalid",
            message="Expected `str` of length >= 1",
            field="spec.systemPrompt",
        )
    ]


@pytest.mark.parametrize("mode", ["strict", "", "All"])
def test_unknown_field_validation_mode_is_a_bad_request(mode: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode(b"{}", input_type("Ghost"), field_validation=mode)
    assert info.value.message == (
        f'fieldValidation must be one of Strict, Warn, Ignore, not "{mode}"'
    )


# Body shape and errors


def test_malformed_json_is_a_bad_request_with_msgspec_reason() -> None:
    with pytest.raises(BadRequest) as info:
        decode(b'{"metadata": ', input_type("Ghost"))
    assert info.value.message == "request body is not valid JSON: Input data was truncated"


def test_a_body_that_is_not_an_object_is_invalid() -> None:
    for body in (b"[]", b'"x"', b"null", ["a"]):
        with pytest.raises(Invalid) as info:
            decode(body, input_type("Ghost"))
        assert info.value.message == "the body must be a JSON object"
        assert info.value.causes == [
            Cause(reason="FieldValueInvalid", message="the body must be a JSON object", field="")
        ]


def test_absurd_nesting_is_a_bad_request() -> None:
    body = b'{"metadata":{"name":"g"},"spec":{"systemPrompt":"p"},"status":' + b"[" * 100_000
    body += b"]" * 100_000 + b"}"
    with pytest.raises(BadRequest) as info:
        decode(body, input_type("Ghost"))
    assert info.value.message == "request body is nested too deeply"


def test_message_names_the_kind_of_the_type_when_the_body_has_none() -> None:
    with pytest.raises(Invalid) as info:
        decode(encode(manifest({})), input_type("Ghost"))
    assert (info.value.message[:25], info.value.kind, info.value.name) == (
        'Ghost "x1" is invalid: sp',
        "Ghost",
        "x1",
    )


def test_message_without_a_name_is_generic() -> None:
    with pytest.raises(Invalid) as info:
        decode(encode({"metadata": {}, "spec": {}}), input_type("Ghost"))
    assert (info.value.message, info.value.kind, info.value.name) == (
        "the object is invalid: spec.systemPrompt: Required value",
        "Ghost",
        None,
    )
    assert info.value.causes == [
        Cause(reason="FieldValueRequired", message="Required value", field="spec.systemPrompt")
    ]


def test_missing_envelope_parts_are_required() -> None:
    assert invalid_causes("Ghost", encode({"kind": "Ghost"})) == [
        Cause(reason="FieldValueRequired", message="Required value", field="metadata"),
        Cause(reason="FieldValueRequired", message="Required value", field="spec"),
    ]


def test_fast_path_still_checks_labels() -> None:
    body = encode({"kind": "Ghost", "metadata": {"name": "g", "labels": {"a b": "c"}}, "spec": {}})
    body = body.replace(b'"spec":{}', b'"spec":{"systemPrompt":"p"}')
    with pytest.raises(Invalid) as info:
        decode(body, input_type("Ghost"))
    assert info.value.message.startswith('Ghost "g" is invalid: metadata.labels[a b]: ')
    assert [(c.reason, c.field) for c in info.value.causes] == [
        ("FieldValueInvalid", "metadata.labels[a b]")
    ]


def test_bytes_and_parsed_objects_decode_to_the_same_value() -> None:
    body = manifest({**TEAM, "description": "d"}, apiVersion="agent.wecode.io/v1")
    from_bytes = decode(encode(body), input_type("Team"))
    assert from_bytes == decode(body, input_type("Team"))
    assert from_bytes == decode(encode(body), input_type("Team"))


def test_the_same_bad_body_gives_the_same_error_twice() -> None:
    body = encode(manifest({"members": [{"botRef": {}}], "collaborationModel": 1, "x": 2}))
    first = invalid_causes("Team", body, field_validation="Strict")
    assert first == invalid_causes("Team", body, field_validation="Strict")
    assert first == [
        Cause(
            reason="FieldValueRequired",
            message="Required value",
            field="spec.members[0].botRef.name",
        ),
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: 1: supported values: "solo", "pipeline", "route", '
            '"coordinate", "collaborate"',
            field="spec.collaborationModel",
        ),
        Cause(reason="FieldValueInvalid", message='unknown field "spec.x"', field="spec.x"),
    ]


def test_parsed_documents_with_non_json_types_are_invalid_not_crashes() -> None:
    body = {"metadata": {"name": "g", "labels": {1: "x"}}, "spec": {"systemPrompt": b"p"}}
    assert invalid_causes("Ghost", body) == [
        Cause(
            reason="FieldValueInvalid",
            message="Expected `str`, got `int`",
            field="metadata.labels[1]",
        ),
        Cause(
            reason="FieldValueInvalid",
            message="Expected `str`, got `bytes`",
            field="spec.systemPrompt",
        ),
    ]


def outcome(data: object) -> object:
    """What decoding gives: the encoded value and warnings, or the error and its causes."""
    try:
        decoded = decode(data, input_type("Team"), field_validation="Strict")
    except (Invalid, BadRequest) as exc:
        return (type(exc).__name__, exc.message, exc.causes)
    return (encode(decoded.value), decoded.warnings)


@pytest.mark.parametrize("junk", [None, 0, -1, 1.5, True, "", "x" * 300, [], {}, [{}], {"a": None}])
def test_junk_anywhere_gives_the_same_answer_for_bytes_and_objects(junk: object) -> None:
    base = manifest({**TEAM, "members": [{"botRef": {"name": "b"}, "role": "r"}]})
    paths: list[tuple[str | int, ...]] = [("metadata",), ("metadata", "name"), ("spec",)]
    paths += [("metadata", "labels"), ("spec", "members"), ("spec", "members", 0)]
    paths += [("spec", "members", 0, "botRef"), ("spec", "members", 0, "role")]
    paths += [("spec", "collaborationModel"), ("apiVersion",)]
    for path in paths:
        body: Any = msgspec.json.decode(encode(base))
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = junk
        assert outcome(body) == outcome(encode(body)), path


def test_numbers_out_of_range() -> None:
    body = b'{"metadata":{"name":"m"},"spec":{"modelConfig":{},"costIndex":1e400}}'
    with pytest.raises(BadRequest) as info:
        decode(body, input_type("Model"))
    assert info.value.message == "request body is not valid JSON: Number out of range"
    body = encode(manifest({"modelConfig": {}, "contextWindow": 2**53}))
    assert invalid_causes("Model", body) == [
        Cause(
            reason="FieldValueInvalid",
            message="Expected `int` <= 9007199254740991",
            field="spec.contextWindow",
        )
    ]


# The __post_init__ convention


class Pair(msgspec.Struct, forbid_unknown_fields=True):
    low: int
    high: int

    def __post_init__(self) -> None:
        errors = FieldErrors()
        if self.low > self.high:
            errors.add("low", "Invalid value: above high")
            errors.add("high", "Required value")
        if self.low == 13:
            errors.add("low", "Forbidden: unlucky")
        errors.raise_if_any()


class Holder(msgspec.Struct):
    pairs: list[Pair]
    metadata: Metadata | None = None


def test_post_init_lines_become_causes_on_exact_fields() -> None:
    with pytest.raises(Invalid) as info:
        decode(b'{"pairs":[{"low":1,"high":2},{"low":3,"high":2},{"low":13,"high":20}]}', Holder)
    assert info.value.message.startswith("the object is invalid: [")
    assert info.value.causes == [
        Cause(
            reason="FieldValueInvalid", message="Invalid value: above high", field="pairs[1].low"
        ),
        Cause(reason="FieldValueRequired", message="Required value", field="pairs[1].high"),
        Cause(reason="FieldValueForbidden", message="Forbidden: unlucky", field="pairs[2].low"),
    ]


def test_decode_works_for_any_struct_type() -> None:
    decoded = decode(b'{"pairs":[{"low":1,"high":2,"z":0}]}', Holder)
    assert decoded == Decoded(Holder(pairs=[Pair(low=1, high=2)]), ['unknown field "pairs[0].z"'])


class Loose(msgspec.Struct):
    """A Struct that does not forbid unknown fields: msgspec ignores them, so does decode."""

    pair: Pair


def test_structs_that_allow_unknown_fields_drop_them_without_warning() -> None:
    decoded = decode(b'{"pair":{"low":1,"high":2},"other":1}', Loose)
    assert decoded == Decoded(Loose(pair=Pair(low=1, high=2)), [])
    decoded = decode(b'{"pair":{"low":1,"high":2,"z":1},"other":1}', Loose)
    assert decoded == Decoded(Loose(pair=Pair(low=1, high=2)), ['unknown field "pair.z"'])


# Integers written with a zero fraction (JSON Schema's integer includes them)


def test_an_integral_float_is_an_integer() -> None:
    body = encode(manifest({"modelConfig": {}, "contextWindow": 5.0, "maxOutputTokens": 1e2}))
    spec = decode(body, input_type("Model")).value.spec
    assert (spec.contextWindow, spec.maxOutputTokens) == (5, 100)
    assert type(spec.contextWindow) is int and type(spec.maxOutputTokens) is int


def test_an_integral_float_takes_the_bounds_of_the_integer() -> None:
    repository = {"gitUrl": "u", "gitRepo": "r", "branchName": "b", "gitDomain": "d"}
    body = encode(manifest({"repository": {**repository, "gitRepoId": -1.0}}))
    assert invalid_causes("Workspace", body) == [
        Cause(
            reason="FieldValueInvalid",
            message="Expected `int` >= 0",
            field="spec.repository.gitRepoId",
        )
    ]


def test_a_fraction_is_still_refused_where_an_integer_is_expected() -> None:
    body = encode(manifest({"modelConfig": {}, "contextWindow": 5.5}))
    assert invalid_causes("Model", body) == [
        Cause(
            reason="FieldValueInvalid",
            message="Expected `int`, got `float`",
            field="spec.contextWindow",
        )
    ]


def test_floats_stay_floats_where_floats_are_taken() -> None:
    """Only integer fields change: a number field and free-form values keep what was sent."""
    spec = {"modelConfig": {"temperature": 1.0}, "costIndex": 2.0, "contextWindow": 3.0}
    assert spec_json("Model", spec) == {
        "modelConfig": {"temperature": 1.0},
        "modelType": "llm",
        "costIndex": 2.0,
        "contextWindow": 3,
    }


def test_an_integral_float_is_an_integer_in_a_field_that_may_be_absent_or_null() -> None:
    """``expiresInDays`` may be absent (UNSET), null or an integer: 358.0 is 358 (the fuzzer
    found it refused, the union's UNSET taken for a second type)."""
    made = decode(b'{"name": "ci", "expiresInDays": 358.0}', TokenCreate).value
    assert made.expiresInDays == 358 and type(made.expiresInDays) is int
    assert decode(b'{"name": "ci", "expiresInDays": null}', TokenCreate).value.expiresInDays is None
    assert decode(b'{"name": "ci"}', TokenCreate).value.expiresInDays is msgspec.UNSET
    with pytest.raises(Invalid) as refused:
        decode(b'{"name": "ci", "expiresInDays": 358.5}', TokenCreate)
    assert refused.value.causes == [
        Cause("FieldValueInvalid", "Expected `int`, got `float`", "expiresInDays")
    ]


def test_an_integral_float_in_a_parsed_document_is_an_integer() -> None:
    """Batch items and merged patches arrive parsed; they decode the same way."""
    body = manifest({"modelConfig": {}, "contextWindow": 7.0})
    assert decode(body, input_type("Model")).value.spec.contextWindow == 7
    assert outcome({**body, "spec": TEAM}) == outcome(encode({**body, "spec": TEAM}))


# U+0000 (NUL), which PostgreSQL cannot store, is refused with a cause on its field

NUL = "Invalid value: must not contain U+0000 (NUL)"


def nul_cause(field: str) -> Cause:
    return Cause(reason="FieldValueInvalid", message=NUL, field=field)


def test_a_nul_in_a_string_is_refused_on_its_field() -> None:
    body = b'{"metadata":{"name":"s6"},"spec":{"description":"a\\u0000b"}}'
    with pytest.raises(Invalid) as info:
        decode(body, input_type("Skill"))
    assert info.value.message == f'Skill "s6" is invalid: spec.description: {NUL}'
    assert info.value.causes == [nul_cause("spec.description")]


def test_a_nul_is_found_in_keys_values_and_free_form_objects() -> None:
    env = {"K\x00": "v", "list": [1, "x\x00"], "deep": [{"\x00": 1}]}
    body = {
        "metadata": {
            "name": "m",
            "displayName": "d\x00",
            "labels": {"ok": "v\x00"},
            "annotations": {"a\x00": "x", "b": "y\x00"},
        },
        "spec": {"modelConfig": {"env": env}},
    }
    expected = [
        nul_cause("metadata.displayName"),
        nul_cause("metadata.labels[ok]"),
        nul_cause("metadata.annotations[a\x00]"),
        nul_cause("metadata.annotations[b]"),
        nul_cause("spec.modelConfig[env][K\x00]"),
        nul_cause("spec.modelConfig[env][list][1]"),
        nul_cause("spec.modelConfig[env][deep][0][\x00]"),
    ]
    assert invalid_causes("Model", body) == expected
    assert invalid_causes("Model", encode(body)) == expected


def test_a_nul_in_what_is_dropped_is_not_looked_at() -> None:
    """Server-set metadata, status and unknown fields are dropped, never stored."""
    body = {
        "metadata": {"name": "s", "uid": "u\x00"},
        "spec": {"description": "d", "extra\x00": "x\x00"},
        "status": {"message": "\x00"},
    }
    decoded = decode(encode(body), input_type("Skill"))
    assert encode(decoded.value) == b'{"metadata":{"name":"s"},"spec":{"description":"d"}}'
    assert decoded.warnings == ['unknown field "spec.extra\\u0000"']


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    body = b'{"metadata":{"name":"s"},"spec":{"description":"\\\\u0000"}}'
    assert decode(body, input_type("Skill")).value.spec.description == "\\u0000"


def test_a_nul_is_refused_in_every_body_type() -> None:
    with pytest.raises(Invalid) as info:
        decode(encode({"username": "ab", "password": "p" * 8, "email": "a\x00@b.c"}), Register)
    assert info.value.causes == [nul_cause("email")]
    with pytest.raises(Invalid) as info:
        decode(encode({"phase": "RUNNING", "result": {"log": ["\x00"]}}), StatusUpdate)
    assert info.value.causes == [nul_cause("result[log][0]")]
