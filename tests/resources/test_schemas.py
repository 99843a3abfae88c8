"""Schema validation of the envelope and of every kind's spec (API.md §1, §2). No database."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from wegent.errors import Cause, Invalid
from wegent.resources.decode import decode
from wegent.resources.envelope import ListMeta, input_type, list_type, output_type
from wegent.resources.meta import (
    API_VERSION,
    MAX_FREEFORM_KEYS,
    ObjectMeta,
    check_depth,
    validate_annotations,
    validate_labels,
)
from wegent.resources.registry import BY_KIND, KINDS
from wegent.resources.status import ResourceStatus

NAME_REGEX = r"Expected `str` matching regex '^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$(?!\\n)'"
NS_REGEX = r"Expected `str` matching regex '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$(?!\\n)'"
NAME_CHARS = (
    "consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def body(spec: object, **metadata: object) -> bytes:
    return msgspec.json.encode({"metadata": {"name": "x1", **metadata}, "spec": spec})


def encoded(kind: str, spec: object, **metadata: object) -> dict[str, Any]:
    """Decode a valid manifest and answer its encoding as plain JSON data."""
    value = decode(body(spec, **metadata), input_type(kind)).value
    result: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(value))
    return result


def causes(kind: str, spec: object, **metadata: object) -> list[Cause]:
    with pytest.raises(Invalid) as info:
        decode(body(spec, **metadata), input_type(kind))
    assert info.value.message.startswith(f'{kind} "{metadata.get("name", "x1")}" is invalid: ')
    return info.value.causes


def required(field: str) -> Cause:
    return Cause(reason="FieldValueRequired", message="Required value", field=field)


def invalid(field: str, message: str) -> Cause:
    return Cause(reason="FieldValueInvalid", message=message, field=field)


def bot(name: str = "b1") -> dict[str, object]:
    return {"botRef": {"name": name}}


REPO = {"gitUrl": "https://x/y.git", "gitRepo": "x/y", "branchName": "main", "gitDomain": "x"}


# Ghost


def test_ghost_minimal_is_encoded_without_absent_optionals() -> None:
    assert encoded("Ghost", {"systemPrompt": "be nice"}) == {
        "metadata": {"name": "x1"},
        "spec": {"systemPrompt": "be nice"},
    }


def test_ghost_requires_system_prompt() -> None:
    assert causes("Ghost", {}) == [required("spec.systemPrompt")]


def test_ghost_empty_system_prompt_is_invalid() -> None:
    assert causes("Ghost", {"systemPrompt": ""}) == [
        invalid("spec.systemPrompt", "Expected `str` of length >= 1")
    ]


def test_ghost_system_prompt_is_bounded() -> None:
    assert causes("Ghost", {"systemPrompt": "x" * 262145}) == [
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 262144",
            field="spec.systemPrompt",
        )
    ]


def test_ghost_preload_skills_must_be_a_subset_of_skills() -> None:
    spec = {"systemPrompt": "p", "skills": ["a", "b"], "preloadSkills": ["a", "c", "d"]}
    assert causes("Ghost", spec) == [
        invalid("spec.preloadSkills[1]", 'Invalid value: "c": not one of skills'),
        invalid("spec.preloadSkills[2]", 'Invalid value: "d": not one of skills'),
    ]


def test_ghost_skills_are_unique() -> None:
    assert causes("Ghost", {"systemPrompt": "p", "skills": ["a", "b", "a"]}) == [
        Cause(reason="FieldValueDuplicate", message='Duplicate value: "a"', field="spec.skills[2]")
    ]


def test_ghost_skill_names_follow_the_name_rule() -> None:
    assert causes("Ghost", {"systemPrompt": "p", "skills": ["ok", "not ok", "-x"]}) == [
        invalid("spec.skills[1]", NAME_REGEX),
        invalid("spec.skills[2]", NAME_REGEX),
    ]


def test_ghost_mcp_servers_nesting_is_bounded() -> None:
    deep: object = 1
    for _ in range(16):
        deep = {"a": deep}
    assert encoded("Ghost", {"systemPrompt": "p", "mcpServers": deep})["spec"]["mcpServers"] == deep
    assert causes("Ghost", {"systemPrompt": "p", "mcpServers": {"a": deep}}) == [
        invalid("spec.mcpServers", "Invalid value: nested more than 16 levels deep")
    ]


def test_ghost_mcp_servers_key_count_is_bounded() -> None:
    servers: dict[str, object] = {f"s{i}": {} for i in range(MAX_FREEFORM_KEYS + 1)}
    assert causes("Ghost", {"systemPrompt": "p", "mcpServers": servers}) == [
        Cause(
            reason="FieldValueTooMany",
            message="Expected `object` of length <= 256",
            field="spec.mcpServers",
        )
    ]


# Model


def test_model_type_defaults_to_llm_and_is_encoded() -> None:
    assert encoded("Model", {"modelConfig": {"env": {"model": "m"}}})["spec"] == {
        "modelConfig": {"env": {"model": "m"}},
        "modelType": "llm",
    }


def test_model_type_is_one_of_the_documented_values() -> None:
    assert causes("Model", {"modelConfig": {}, "modelType": "gpt"}) == [
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: "gpt": supported values: "llm", "tts", "stt", '
            '"embedding", "rerank", "video", "image"',
            field="spec.modelType",
        )
    ]


def test_model_requires_model_config_object() -> None:
    assert causes("Model", {}) == [required("spec.modelConfig")]
    assert causes("Model", {"modelConfig": "env"}) == [
        invalid("spec.modelConfig", "Expected `object`, got `str`")
    ]


def test_model_numbers_are_range_checked() -> None:
    spec = {"modelConfig": {}, "contextWindow": 0, "maxOutputTokens": "9", "costIndex": -1}
    assert causes("Model", spec) == [
        invalid("spec.contextWindow", "Expected `int` >= 1"),
        invalid("spec.maxOutputTokens", "Expected `int`, got `str`"),
        invalid("spec.costIndex", "Expected `int` >= 0"),
    ]


def test_model_cost_index_keeps_integers_and_floats_as_sent() -> None:
    assert encoded("Model", {"modelConfig": {}, "costIndex": 2})["spec"]["costIndex"] == 2
    assert encoded("Model", {"modelConfig": {}, "costIndex": 0.5})["spec"]["costIndex"] == 0.5


def test_model_cost_index_must_be_finite() -> None:
    manifest = {"metadata": {"name": "m"}, "spec": {"modelConfig": {}, "costIndex": float("inf")}}
    with pytest.raises(Invalid) as info:
        decode(manifest, input_type("Model"))
    assert info.value.causes == [
        invalid("spec.costIndex", "Invalid value: must be a finite number")
    ]


# Shell and Bot


def test_shell_type_is_one_of_the_documented_values() -> None:
    assert causes("Shell", {"shellType": "Bash"}) == [
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: "Bash": supported values: "Chat", "ClaudeCode", '
            '"Agno", "Dify"',
            field="spec.shellType",
        )
    ]


def test_shell_bounds_its_lists_and_strings() -> None:
    spec = {
        "shellType": "Chat",
        "supportModel": ["m"] * 65,
        "baseImage": "i" * 2049,
        "baseShellRef": "a/b",
    }
    assert causes("Shell", spec) == [
        Cause(
            reason="FieldValueTooMany",
            message="Expected `array` of length <= 64",
            field="spec.supportModel",
        ),
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 2048",
            field="spec.baseImage",
        ),
        invalid("spec.baseShellRef", NAME_REGEX),
    ]


def test_bot_requires_ghost_and_shell_refs() -> None:
    assert causes("Bot", {"modelRef": {"name": "m"}}) == [
        required("spec.ghostRef"),
        required("spec.shellRef"),
    ]


def test_bot_references_are_checked_field_by_field() -> None:
    spec = {
        "ghostRef": {"namespace": "Alice"},
        "shellRef": "ClaudeCode",
        "modelRef": {"name": "m" * 64},
    }
    assert causes("Bot", spec) == [
        invalid("spec.ghostRef.namespace", NS_REGEX),
        required("spec.ghostRef.name"),
        invalid("spec.shellRef", "Expected `object`, got `str`"),
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 63",
            field="spec.modelRef.name",
        ),
    ]


def test_bot_reference_namespace_is_optional_and_omitted() -> None:
    spec = {"ghostRef": {"name": "g"}, "shellRef": {"name": "ClaudeCode", "namespace": "public"}}
    assert encoded("Bot", spec)["spec"] == spec


# Team


def test_team_member_defaults_are_filled_in() -> None:
    assert encoded("Team", {"members": [bot()], "collaborationModel": "solo"})["spec"] == {
        "members": [
            {"botRef": {"name": "b1"}, "requireConfirmation": False, "contextPassing": "none"}
        ],
        "collaborationModel": "solo",
    }


def test_team_needs_one_to_64_members() -> None:
    assert causes("Team", {"members": [], "collaborationModel": "solo"}) == [
        invalid("spec.members", "Expected `array` of length >= 1")
    ]
    assert causes("Team", {"members": [bot()] * 65, "collaborationModel": "solo"}) == [
        Cause(
            reason="FieldValueTooMany",
            message="Expected `array` of length <= 64",
            field="spec.members",
        )
    ]


def test_team_allows_at_most_one_leader() -> None:
    members = [bot("a"), {**bot("b"), "role": "leader"}, {**bot("c"), "role": "leader"}]
    members.append({**bot("d"), "role": "leader"})
    assert causes("Team", {"members": members, "collaborationModel": "coordinate"}) == [
        Cause(
            reason="FieldValueDuplicate",
            message='Duplicate value: "leader": at most one leader',
            field=f"spec.members[{i}].role",
        )
        for i in (2, 3)
    ]


def test_team_member_errors_carry_the_full_path() -> None:
    members = [bot(), bot(), {"botRef": {"name": 7}, "contextPassing": "all"}, {"prompt": "p"}]
    assert causes("Team", {"members": members, "collaborationModel": "swarm"}) == [
        invalid("spec.members[2].botRef.name", "Expected `str`, got `int`"),
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: "all": supported values: "none", "original_user", '
            '"previous_bot", "original_and_previous"',
            field="spec.members[2].contextPassing",
        ),
        required("spec.members[3].botRef"),
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: "swarm": supported values: "solo", "pipeline", '
            '"route", "coordinate", "collaborate"',
            field="spec.collaborationModel",
        ),
    ]


def test_team_bind_mode_is_a_bounded_list_of_short_strings() -> None:
    spec = {"members": [bot()], "collaborationModel": "solo", "bindMode": ["x" * 65]}
    assert causes("Team", spec) == [
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 64",
            field="spec.bindMode[0]",
        )
    ]
    spec["bindMode"] = ["chat"] * 17
    assert causes("Team", spec) == [
        Cause(
            reason="FieldValueTooMany",
            message="Expected `array` of length <= 16",
            field="spec.bindMode",
        )
    ]


# Skill, Workspace, Task


def test_skill_requires_description_and_bounds_tags() -> None:
    assert causes("Skill", {"tags": ["t" * 64]}) == [
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 63",
            field="spec.tags[0]",
        ),
        required("spec.description"),
    ]


def test_skill_bind_shells_are_names() -> None:
    assert causes("Skill", {"description": "d", "bindShells": ["Claude Code"]}) == [
        invalid("spec.bindShells[0]", NAME_REGEX)
    ]


def test_workspace_repository_fields_are_required() -> None:
    assert causes("Workspace", {"repository": {"gitRepoId": "12"}}) == [
        invalid("spec.repository.gitRepoId", "Expected `int`, got `str`"),
        required("spec.repository.gitUrl"),
        required("spec.repository.gitRepo"),
        required("spec.repository.branchName"),
        required("spec.repository.gitDomain"),
    ]


def test_workspace_round_trips() -> None:
    spec = {"repository": {**REPO, "gitRepoId": 12}}
    assert encoded("Workspace", spec)["spec"] == spec


def test_task_fields_are_checked() -> None:
    assert causes("Task", {"title": "", "teamRef": {"name": "t"}, "workspaceRef": None}) == [
        invalid("spec.title", "Expected `str` of length >= 1"),
        required("spec.prompt"),
    ]


# Envelope and metadata


def test_metadata_fields_are_bounded() -> None:
    metadata = {
        "name": "n" * 64,
        "namespace": "Team-A",
        "displayName": "d" * 256,
        "resourceVersion": "1" * 33,
    }
    with pytest.raises(Invalid) as info:
        decode(msgspec.json.encode({"metadata": metadata, "spec": {}}), input_type("Ghost"))
    assert info.value.message.startswith(f'Ghost "{"n" * 64}" is invalid: [')
    assert info.value.causes == [
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 63",
            field="metadata.name",
        ),
        invalid("metadata.namespace", NS_REGEX),
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 255",
            field="metadata.displayName",
        ),
        Cause(
            reason="FieldValueTooLong",
            message="Expected `str` of length <= 32",
            field="metadata.resourceVersion",
        ),
        required("spec.systemPrompt"),
    ]


@pytest.mark.parametrize("name", ["ClaudeCode", "a", "a.b_c-d", "0" * 63])
def test_names_are_case_sensitive_and_allow_dots_and_underscores(name: str) -> None:
    assert encoded("Ghost", {"systemPrompt": "p"}, name=name)["metadata"] == {"name": name}


@pytest.mark.parametrize("name", ["", "-a", "a-", "a b", "a/b", "é", "abc\n", "x" * 64])
def test_bad_names_are_refused(name: str) -> None:
    manifest = {"metadata": {"name": name}, "spec": {"systemPrompt": "p"}}
    with pytest.raises(Invalid) as info:
        decode(msgspec.json.encode(manifest), input_type("Ghost"))
    assert [c.field for c in info.value.causes] == ["metadata.name"]


def test_api_version_must_be_ours() -> None:
    manifest = {"apiVersion": "v1", "metadata": {"name": "g"}, "spec": {"systemPrompt": "p"}}
    with pytest.raises(Invalid) as info:
        decode(msgspec.json.encode(manifest), input_type("Ghost"))
    assert info.value.causes == [
        Cause(
            reason="FieldValueNotSupported",
            message='Unsupported value: "v1": supported values: "agent.wecode.io/v1"',
            field="apiVersion",
        )
    ]


def test_server_set_fields_and_status_are_accepted_and_dropped() -> None:
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "Ghost",
        "metadata": {
            "name": "g",
            "uid": "forged",
            "generation": 99,
            "creationTimestamp": "2000-01-01T00:00:00Z",
            "updateTimestamp": "x",
            "deletionTimestamp": None,
            "createdBy": "root",
            "updatedBy": "root",
            "resourceVersion": "7",
        },
        "spec": {"systemPrompt": "p"},
        "status": {"state": "Hacked"},
    }
    decoded = decode(msgspec.json.encode(manifest), input_type("Ghost"), field_validation="Strict")
    assert decoded.warnings == []
    assert decoded.value.status is None
    assert msgspec.json.decode(msgspec.json.encode(decoded.value)) == {
        "apiVersion": API_VERSION,
        "kind": "Ghost",
        "metadata": {"name": "g", "resourceVersion": "7"},
        "spec": {"systemPrompt": "p"},
    }


def test_labels_follow_the_kubernetes_rules() -> None:
    labels = {
        "team": "core",
        "example.com/tier": "",
        "a b": "x",
        "Example.com/x": "y",
        "ok": "no spaces",
        "/x": "-",
        "k" * 64: "v",
    }
    assert validate_labels(labels) == [
        invalid("metadata.labels[a b]", f'Invalid value: "a b": name part must {NAME_CHARS}'),
        invalid(
            "metadata.labels[Example.com/x]",
            'Invalid value: "Example.com/x": prefix part must be a lowercase DNS subdomain: '
            "lower case alphanumeric characters, '-' or '.', starting and ending with an "
            "alphanumeric character",
        ),
        invalid(
            "metadata.labels[ok]",
            f'Invalid value: "no spaces": value must be empty or {NAME_CHARS}',
        ),
        invalid(
            "metadata.labels[/x]",
            'Invalid value: "/x": prefix part must be non-empty; '
            f'Invalid value: "-": value must be empty or {NAME_CHARS}',
        ),
        invalid(
            f"metadata.labels[{'k' * 64}]",
            f'Invalid value: "{"k" * 64}": name part must be no more than 63 characters',
        ),
    ]


def test_labels_are_at_most_64() -> None:
    assert validate_labels({f"k{i}": "v" for i in range(64)}) == []
    assert validate_labels({f"k{i}": "v" for i in range(65)}) == [
        Cause(
            reason="FieldValueTooMany",
            message="Too many: 65: must have at most 64 items",
            field="metadata.labels",
        )
    ]


def test_annotations_keys_and_total_size_are_checked() -> None:
    assert validate_annotations({"example.com/note": "free text, any chars: é \n"}) == []
    big = {"a": "x" * (256 * 1024 - 1), "bad key": ""}
    assert validate_annotations(big) == [
        invalid(
            "metadata.annotations[bad key]",
            f'Invalid value: "bad key": name part must {NAME_CHARS}',
        ),
        Cause(
            reason="FieldValueTooLong",
            message="Too long: must have at most 262144 bytes",
            field="metadata.annotations",
        ),
    ]


def test_label_problems_are_reported_with_every_other_problem() -> None:
    manifest = {"metadata": {"name": "g", "labels": {"a b": "x", "n": 1}}, "spec": {}}
    with pytest.raises(Invalid) as info:
        decode(msgspec.json.encode(manifest), input_type("Ghost"))
    assert info.value.causes == [
        invalid("metadata.labels[n]", "Expected `str`, got `int`"),
        invalid("metadata.labels[a b]", f'Invalid value: "a b": name part must {NAME_CHARS}'),
        required("spec.systemPrompt"),
    ]


def test_annotation_problems_are_reported_with_every_other_problem() -> None:
    annotations = {"n": 1, "b/c/d": "x", "ok": "fine"}
    manifest = {"metadata": {"name": "g", "annotations": annotations}, "spec": {}}
    with pytest.raises(Invalid) as info:
        decode(msgspec.json.encode(manifest), input_type("Ghost"))
    assert info.value.causes == [
        invalid("metadata.annotations[n]", "Expected `str`, got `int`"),
        invalid(
            "metadata.annotations[b/c/d]",
            'Invalid value: "b/c/d": prefix part must be a lowercase DNS subdomain: lower case '
            "alphanumeric characters, '-' or '.', starting and ending with an alphanumeric "
            "character",
        ),
        required("spec.systemPrompt"),
    ]


def test_check_depth_counts_containers() -> None:
    assert check_depth(1, max_depth=0)
    assert check_depth({"a": [1, {"b": 2}]}, max_depth=3)
    assert not check_depth({"a": [1, {"b": 2}]}, max_depth=2)
    assert not check_depth([[[]]], max_depth=2)


# Output types


def object_meta() -> ObjectMeta:
    return ObjectMeta(
        name="g",
        namespace="alice",
        uid="u1",
        resourceVersion="5",
        generation=1,
        creationTimestamp="2026-11-26T10:00:00Z",
        updateTimestamp="2026-11-26T10:00:00Z",
        createdBy="alice",
        updatedBy="alice",
    )


def test_output_object_encodes_every_metadata_field_and_status() -> None:
    ghost = output_type("Ghost")(
        metadata=object_meta(), spec=BY_KIND["Ghost"].spec(systemPrompt="p")
    )
    assert msgspec.json.encode(ghost) == (
        b'{"apiVersion":"agent.wecode.io/v1","kind":"Ghost","metadata":{"name":"g",'
        b'"namespace":"alice","displayName":null,"labels":{},"annotations":{},"uid":"u1",'
        b'"resourceVersion":"5","generation":1,"creationTimestamp":"2026-11-26T10:00:00Z",'
        b'"updateTimestamp":"2026-11-26T10:00:00Z","deletionTimestamp":null,'
        b'"createdBy":"alice","updatedBy":"alice"},"spec":{"systemPrompt":"p"},'
        b'"status":{"state":"Available","message":null}}'
    )


def test_list_omits_continue_when_there_is_no_next_page() -> None:
    ghosts = list_type("Ghost")
    assert msgspec.json.encode(ghosts(metadata=ListMeta(resourceVersion="9"), items=[])) == (
        b'{"apiVersion":"agent.wecode.io/v1","kind":"GhostList",'
        b'"metadata":{"resourceVersion":"9"},"items":[]}'
    )
    page = ghosts(metadata=ListMeta(resourceVersion="9", continue_="tok"), items=[])
    assert msgspec.json.decode(msgspec.json.encode(page))["metadata"] == {
        "resourceVersion": "9",
        "continue": "tok",
    }


def test_envelope_types_are_named_per_kind_and_built_once() -> None:
    kinds = [info.kind for info in KINDS]
    assert kinds == [
        *("Skill", "Ghost", "Model", "Shell", "Workspace", "Bot", "Team", "Task"),
        *("Retriever", "Device", "Template", "ConnectorApp", "Collaboration"),
    ]
    for kind in kinds:
        assert input_type(kind).__name__ == f"{kind}Input"
        assert output_type(kind).__name__ == kind
        assert list_type(kind).__name__ == f"{kind}List"
        assert input_type(kind) is input_type(kind)
        assert kind == output_type(kind).KIND
    assert ResourceStatus() == ResourceStatus(state="Available", message=None)


def test_label_key_and_value_length_limits() -> None:
    prefix = ".".join(["a" * 63] * 4) + ".ab"  # 254 characters
    assert validate_labels({f"{prefix}/n": "", "x/": "v" * 64, "a" * 63: "v" * 63}) == [
        invalid(
            f"metadata.labels[{prefix}/n]",
            f'Invalid value: "{prefix}/n": prefix part must be no more than 253 characters',
        ),
        invalid(
            "metadata.labels[x/]",
            'Invalid value: "x/": name part must be non-empty; '
            f'Invalid value: "{"v" * 64}": value must be no more than 63 characters',
        ),
    ]


def test_skill_mcp_servers_nesting_is_bounded() -> None:
    assert causes(
        "Skill", {"description": "d", "mcpServers": {"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}}
    ) == [invalid("spec.mcpServers", "Invalid value: nested more than 16 levels deep")]


def test_unknown_kinds_have_no_envelope() -> None:
    with pytest.raises(KeyError, match="unknown kind 'Gadget'"):
        input_type("Gadget")
