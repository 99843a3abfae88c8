"""The five upstream-shaped kinds (API.md §2): decoding, defaults, bounds, cross-field rules, and
the sample manifests of all 13 kinds. No database: specs are decoded directly, so cause paths are
relative to the spec (``resources.ghost.systemPrompt``, not ``spec.resources…``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from wegent.errors import Cause, Invalid
from wegent.resources.decode import decode
from wegent.resources.manifests import parse_manifests
from wegent.resources.meta import FieldErrors
from wegent.resources.registry import KINDS
from wegent.resources.specs_upstream import (
    CollaborationSpec,
    ConnectorAppSpec,
    DeviceSpec,
    RetrieverSpec,
    TemplateSpec,
)

MANIFESTS = Path(__file__).with_name("upstream_manifests.yaml")
BOT_NAME = (
    "must be a Bot name: 1-63 characters of A-Z, a-z, 0-9, '-', '_' or '.', "
    "starting and ending with a letter or digit"
)


def encoded(spec_type: type[msgspec.Struct], body: object) -> dict[str, Any]:
    """The spec decoded strictly (no warnings) and encoded again, as a JSON object."""
    decoded = decode(msgspec.json.encode(body), spec_type, field_validation="Strict")
    assert decoded.warnings == []
    result: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(decoded.value))
    return result


def causes(spec_type: type[msgspec.Struct], body: object) -> list[Cause]:
    with pytest.raises(Invalid) as info:
        decode(msgspec.json.encode(body), spec_type, field_validation="Strict")
    return info.value.causes


def cause(reason: str, field: str, message: str) -> Cause:
    return Cause(reason=reason, message=message, field=field)


def required(field: str, message: str = "Required value") -> Cause:
    return cause("FieldValueRequired", field, message)


def invalid(field: str, message: str) -> Cause:
    return cause("FieldValueInvalid", field, message)


def unsupported(field: str, value: str, allowed: str) -> Cause:
    message = f'Unsupported value: "{value}": supported values: {allowed}'
    return cause("FieldValueNotSupported", field, message)


UPSTREAM_SPECS = {
    "Retriever": RetrieverSpec,
    "Device": DeviceSpec,
    "Template": TemplateSpec,
    "ConnectorApp": ConnectorAppSpec,
    "Collaboration": CollaborationSpec,
}
SPECS = {info.kind: info.spec for info in KINDS}


def test_the_registry_has_the_upstream_kinds() -> None:
    assert {kind: SPECS[kind] for kind in UPSTREAM_SPECS} == UPSTREAM_SPECS
    assert len(SPECS) == 13


# Retriever

RETRIEVER: dict[str, Any] = {
    "storageConfig": {
        "type": "elasticsearch",
        "url": "http://elasticsearch:9200",
        "username": "elastic",
        "password": "secret",
        "apiKey": "key",
        "indexStrategy": {
            "mode": "rolling",
            "fixedName": "unused",
            "rollingStep": 5000,
            "prefix": "wegent",
        },
        "ext": {"verify_certs": False, "timeout": 30},
    },
    "retrievalMethods": {
        "vector": {"enabled": True, "defaultWeight": 0.6},
        "keyword": {"enabled": False, "defaultWeight": 0.4},
        "hybrid": {"enabled": True},
    },
    "description": "Shared Elasticsearch",
}


def test_retriever_round_trips_unchanged() -> None:
    assert encoded(RetrieverSpec, RETRIEVER) == RETRIEVER


def test_retriever_fills_upstream_default_retrieval_methods() -> None:
    storage = {"type": "qdrant", "url": "http://q:6333", "indexStrategy": {"mode": "per_user"}}
    spec = {"storageConfig": storage}
    assert encoded(RetrieverSpec, spec) == {
        **spec,
        "retrievalMethods": {
            "vector": {"enabled": True, "defaultWeight": 0.7},
            "keyword": {"enabled": True, "defaultWeight": 0.3},
            "hybrid": {"enabled": True},
        },
    }


def test_retrieval_method_enabled_defaults_to_true() -> None:
    spec = copy.deepcopy(RETRIEVER)
    spec["retrievalMethods"] = {"vector": {"defaultWeight": 1}}
    assert encoded(RetrieverSpec, spec)["retrievalMethods"] == {
        "vector": {"enabled": True, "defaultWeight": 1.0}
    }


def test_retriever_required_fields() -> None:
    assert causes(RetrieverSpec, {}) == [required("storageConfig")]
    assert causes(RetrieverSpec, {"storageConfig": {"indexStrategy": {}}}) == [
        required("storageConfig.indexStrategy.mode"),
        required("storageConfig.type"),
        required("storageConfig.url"),
    ]


def test_retriever_enums_and_bounds() -> None:
    spec = copy.deepcopy(RETRIEVER)
    spec["storageConfig"]["type"] = "milvus"
    spec["storageConfig"]["indexStrategy"]["mode"] = "weekly"
    spec["storageConfig"]["indexStrategy"]["rollingStep"] = 0
    spec["retrievalMethods"] = {"semantic": {}, "vector": {"defaultWeight": 1.5}}
    assert causes(RetrieverSpec, spec) == [
        unsupported("storageConfig.type", "milvus", '"elasticsearch", "qdrant"'),
        unsupported(
            "storageConfig.indexStrategy.mode",
            "weekly",
            '"fixed", "rolling", "per_dataset", "per_user"',
        ),
        invalid("storageConfig.indexStrategy.rollingStep", "Expected `int` >= 1"),
        unsupported("retrievalMethods[semantic]", "semantic", '"vector", "keyword", "hybrid"'),
        invalid("retrievalMethods[vector].defaultWeight", "Expected `float` <= 1.0"),
    ]


def test_retriever_secret_and_name_bounds() -> None:
    spec = copy.deepcopy(RETRIEVER)
    spec["storageConfig"]["apiKey"] = "k" * 4097
    spec["storageConfig"]["indexStrategy"]["prefix"] = ""
    assert causes(RetrieverSpec, spec) == [
        cause("FieldValueTooLong", "storageConfig.apiKey", "Expected `str` of length <= 4096"),
        invalid("storageConfig.indexStrategy.prefix", "Expected `str` of length >= 1"),
    ]


def test_fixed_index_strategy_needs_a_fixed_name() -> None:
    spec = copy.deepcopy(RETRIEVER)
    spec["storageConfig"]["indexStrategy"] = {"mode": "fixed", "prefix": "wegent"}
    assert causes(RetrieverSpec, spec) == [
        required("storageConfig.indexStrategy.fixedName", 'Required value: mode is "fixed"')
    ]
    spec["storageConfig"]["indexStrategy"] = {"mode": "fixed", "fixedName": "kb"}
    assert encoded(RetrieverSpec, spec)["storageConfig"]["indexStrategy"] == {
        "mode": "fixed",
        "fixedName": "kb",
    }


def test_retriever_unknown_fields_are_named() -> None:
    spec = copy.deepcopy(RETRIEVER)
    spec["storageConfig"]["region"] = "eu"
    spec["retrievalMethods"]["hybrid"]["k"] = 60
    assert causes(RetrieverSpec, spec) == [
        invalid("storageConfig.region", 'unknown field "storageConfig.region"'),
        invalid("retrievalMethods[hybrid].k", 'unknown field "retrievalMethods[hybrid].k"'),
    ]


# Device

DEVICE: dict[str, Any] = {
    "deviceId": "7b7c9d64-0f1e-4c2a-9d55-3f70c6f4a931",
    "displayName": "alice-remote-a931",
    "deviceType": "remote",
    "connectionMode": "websocket",
    "bindShell": "openclaw",
    "isDefault": True,
    "capabilities": ["gpu", "high-memory"],
    "cloudConfig": {"region": "cn-north"},
    "remoteConfig": {"provider": "docker", "image": "ghcr.io/wecode-ai/wegent-device:latest"},
}


def test_device_round_trips_unchanged() -> None:
    assert encoded(DeviceSpec, DEVICE) == DEVICE


def test_device_fills_upstream_defaults() -> None:
    assert encoded(DeviceSpec, {"deviceId": "d1", "capabilities": None}) == {
        "deviceId": "d1",
        "deviceType": "local",
        "connectionMode": "websocket",
        "bindShell": "claudecode",
        "isDefault": False,
    }


def test_device_required_fields_and_bounds() -> None:
    assert causes(DeviceSpec, {"displayName": "x"}) == [required("deviceId")]
    body = {
        "deviceId": "d" * 101,
        "displayName": "",
        "deviceType": "vm",
        "connectionMode": "api",
        "bindShell": "bash",
        "capabilities": ["x" * 64],
    }
    assert causes(DeviceSpec, body) == [
        cause("FieldValueTooLong", "deviceId", "Expected `str` of length <= 100"),
        invalid("displayName", "Expected `str` of length >= 1"),
        unsupported("deviceType", "vm", '"local", "app", "cloud", "remote"'),
        unsupported("connectionMode", "api", '"websocket"'),
        unsupported("bindShell", "bash", '"claudecode", "openclaw"'),
        cause("FieldValueTooLong", "capabilities[0]", "Expected `str` of length <= 63"),
    ]


# Template

TEMPLATE: dict[str, Any] = {
    "resources": {
        "ghost": {
            "systemPrompt": "You are a daily standup summarizer.",
            "mcpServers": {"wiki": {"type": "streamable-http", "url": "https://mcp.example"}},
            "skillRefs": [
                {"name": "wegent-knowledge", "user_id": 0, "namespace": "default"},
                {"name": "mermaid-diagram", "user_id": 7},
            ],
            "preloadSkillRefs": [{"name": "wegent-knowledge", "user_id": 0}],
        },
        "bot": {"shellName": "ClaudeCode", "agentConfig": {"bind_model": "gpt-4.1"}},
        "team": {
            "collaborationModel": "solo",
            "bindMode": ["chat"],
            "description": "Standup team",
        },
        "subscription": {"promptTemplate": "Summarise: {{inbox_message}}", "retryCount": 0},
        "queue": {
            "visibility": "group_visible",
            "triggerMode": "manual",
            "teamRef": {"name": "wegent-chat", "namespace": "default"},
        },
    },
    "displayName": "Daily Standup Summary",
    "description": "Collect team standup reports.",
    "category": "inbox",
    "icon": "📋",
    "tags": ["standup", "summary"],
}


def test_template_round_trips_with_upstream_defaults_filled() -> None:
    expected = copy.deepcopy(TEMPLATE)
    expected["resources"]["subscription"]["timeoutSeconds"] = 600
    assert encoded(TemplateSpec, TEMPLATE) == expected


def test_template_minimal_gets_upstream_queue_and_category() -> None:
    assert encoded(TemplateSpec, {"resources": {}}) == {
        "resources": {"queue": {"visibility": "private", "triggerMode": "immediate"}},
        "category": "inbox",
    }


def test_template_resource_defaults() -> None:
    resources = {"bot": {}, "team": {}, "subscription": {"promptTemplate": "p"}, "queue": {}}
    assert encoded(TemplateSpec, {"resources": resources, "category": "chat"}) == {
        "resources": {
            "bot": {"shellName": "Chat"},
            "team": {"collaborationModel": "pipeline"},
            "subscription": {"promptTemplate": "p", "retryCount": 1, "timeoutSeconds": 600},
            "queue": {"visibility": "private", "triggerMode": "immediate"},
        },
        "category": "chat",
    }


def test_template_required_fields_carry_their_nested_paths() -> None:
    assert causes(TemplateSpec, {"displayName": "x"}) == [required("resources")]
    body = {
        "resources": {
            "ghost": {"skillRefs": [{"name": "s1"}]},
            "subscription": {"retryCount": 2},
            "queue": {"teamRef": {"namespace": "default"}},
        }
    }
    assert causes(TemplateSpec, body) == [
        required("resources.ghost.skillRefs[0].user_id"),
        required("resources.ghost.systemPrompt"),
        required("resources.subscription.promptTemplate"),
        required("resources.queue.teamRef.name"),
    ]


def test_template_nested_bounds_and_enums() -> None:
    body = {
        "resources": {
            "ghost": {"systemPrompt": ""},
            "bot": {"shellName": "not a name"},
            "team": {"collaborationModel": "swarm"},
            "subscription": {"promptTemplate": "p", "retryCount": 4, "timeoutSeconds": 59},
            "queue": {"visibility": "team", "triggerMode": "hourly"},
        },
        "displayName": "d" * 101,
        "description": "d" * 501,
    }
    shell_name = causes(TemplateSpec, body)[1]
    assert (shell_name.reason, shell_name.field) == ("FieldValueInvalid", "resources.bot.shellName")
    assert shell_name.message.startswith("Expected `str` matching regex ")
    assert causes(TemplateSpec, body) == [
        invalid("resources.ghost.systemPrompt", "Expected `str` of length >= 1"),
        shell_name,
        unsupported(
            "resources.team.collaborationModel",
            "swarm",
            '"solo", "pipeline", "route", "coordinate", "collaborate"',
        ),
        invalid("resources.subscription.retryCount", "Expected `int` <= 3"),
        invalid("resources.subscription.timeoutSeconds", "Expected `int` >= 60"),
        unsupported(
            "resources.queue.visibility",
            "team",
            '"private", "public", "group_visible", "invite_only"',
        ),
        unsupported(
            "resources.queue.triggerMode",
            "hourly",
            '"immediate", "manual", "scheduled", "condition_based"',
        ),
        cause("FieldValueTooLong", "displayName", "Expected `str` of length <= 100"),
        cause("FieldValueTooLong", "description", "Expected `str` of length <= 500"),
    ]


@pytest.mark.parametrize(("retries", "timeout"), [(0, 60), (3, 3600)])
def test_template_subscription_range_ends_are_accepted(retries: int, timeout: int) -> None:
    subscription = {"promptTemplate": "p", "retryCount": retries, "timeoutSeconds": timeout}
    spec = encoded(TemplateSpec, {"resources": {"subscription": subscription}})
    assert spec["resources"]["subscription"] == subscription


@pytest.mark.parametrize(
    ("retries", "message"), [(-1, "Expected `int` >= 0"), (3.5, "Expected `int`, got `float`")]
)
def test_template_retry_count_outside_0_to_3(retries: object, message: str) -> None:
    body = {"resources": {"subscription": {"promptTemplate": "p", "retryCount": retries}}}
    assert causes(TemplateSpec, body) == [invalid("resources.subscription.retryCount", message)]


def test_template_skill_refs_name_a_skill_once() -> None:
    ghost = {
        "systemPrompt": "p",
        "skillRefs": [{"name": "a", "user_id": 0}, {"name": "a", "user_id": 1}],
        "preloadSkillRefs": [{"name": "b", "user_id": 0}, {"name": "b", "user_id": 0}],
    }
    assert causes(TemplateSpec, {"resources": {"ghost": ghost}}) == [
        cause("FieldValueDuplicate", "resources.ghost.skillRefs[1].name", 'Duplicate value: "a"'),
        cause(
            "FieldValueDuplicate",
            "resources.ghost.preloadSkillRefs[1].name",
            'Duplicate value: "b"',
        ),
    ]


def test_template_bot_agent_config_refuses_the_legacy_namespace_key() -> None:
    bot = {"agentConfig": {"bind_model": "gpt-4.1", "namespace": "default"}}
    assert causes(TemplateSpec, {"resources": {"bot": bot}}) == [
        cause(
            "FieldValueForbidden",
            "resources.bot.agentConfig.namespace",
            "Forbidden: use bind_model_namespace",
        )
    ]


def test_template_skill_ref_keeps_upstream_user_id_key() -> None:
    ghost = {"systemPrompt": "p", "skillRefs": [{"name": "a", "userId": 0}]}
    assert causes(TemplateSpec, {"resources": {"ghost": ghost}}) == [
        invalid(
            "resources.ghost.skillRefs[0].userId",
            'unknown field "resources.ghost.skillRefs[0].userId"',
        ),
        required("resources.ghost.skillRefs[0].user_id"),
    ]


# ConnectorApp

GET_TICKET: dict[str, Any] = {
    "name": "get_ticket",
    "path": "/tickets/{id}",
    "description": "Get one ticket",
    "method": "GET",
    "input_schema": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "fields": {"type": "string"}},
        "required": ["id"],
    },
    "argument_locations": {"id": "path", "fields": "query"},
    "timeout_seconds": 30,
}
CONNECTOR: dict[str, Any] = {
    "name": "Ticket API",
    "description": "Search and read internal tickets",
    "iconUrl": "https://example.com/ticket-icon.png",
    "enabled": False,
    "visibility": "roles",
    "allowedRoles": ["admin"],
    "allowedUsers": ["alice", "bob"],
    "authType": "none",
    "transport": "http",
    "mcpUrl": "https://tickets.example.com/api",
    "toolAllowlist": ["get_ticket"],
    "httpTools": [GET_TICKET],
}


def connector(**changes: object) -> dict[str, Any]:
    return {**copy.deepcopy(CONNECTOR), **changes}


def tool(**changes: object) -> dict[str, Any]:
    return {**copy.deepcopy(GET_TICKET), **changes}


def test_connector_app_round_trips_unchanged() -> None:
    assert encoded(ConnectorAppSpec, CONNECTOR) == CONNECTOR


def test_connector_app_fills_upstream_defaults() -> None:
    assert encoded(ConnectorAppSpec, {"name": "Docs", "mcpUrl": "http://mcp:8080/mcp"}) == {
        "name": "Docs",
        "enabled": True,
        "visibility": "all",
        "authType": "none",
        "transport": "streamable-http",
        "mcpUrl": "http://mcp:8080/mcp",
    }


def test_http_tool_fills_method_and_timeout() -> None:
    spec = connector(httpTools=[{"name": "get_ticket", "path": "/tickets"}])
    assert encoded(ConnectorAppSpec, spec)["httpTools"] == [
        {"name": "get_ticket", "path": "/tickets", "method": "POST", "timeout_seconds": 30}
    ]


def test_connector_app_required_fields_and_enums() -> None:
    assert causes(ConnectorAppSpec, {"description": "x"}) == [required("name")]
    body = connector(visibility="users", authType="oauth2", transport="websocket", name="")
    assert causes(ConnectorAppSpec, body) == [
        invalid("name", "Expected `str` of length >= 1"),
        unsupported("visibility", "users", '"all", "roles"'),
        unsupported("authType", "oauth2", '"none"'),
        unsupported("transport", "websocket", '"streamable-http", "sse", "http"'),
    ]


def test_http_tool_required_fields_and_bounds() -> None:
    body = connector(
        httpTools=[
            {"description": "no name, no path"},
            tool(name="-bad", method="HEAD", timeout_seconds=121, argument_locations={"id": "x"}),
        ]
    )
    problems = causes(ConnectorAppSpec, body)
    assert problems[2].field == "httpTools[1].name"
    assert problems[2].message.startswith("Expected `str` matching regex ")
    assert problems == [
        required("httpTools[0].name"),
        required("httpTools[0].path"),
        problems[2],
        unsupported("httpTools[1].method", "HEAD", '"GET", "POST", "PUT", "PATCH", "DELETE"'),
        unsupported("httpTools[1].argument_locations[id]", "x", '"path", "query", "body"'),
        invalid("httpTools[1].timeout_seconds", "Expected `int` <= 120"),
    ]


@pytest.mark.parametrize("roles", [{}, {"allowedRoles": []}])
def test_roles_visibility_needs_allowed_roles(roles: dict[str, Any]) -> None:
    body = {"name": "x", "visibility": "roles", **roles}
    assert causes(ConnectorAppSpec, body) == [
        required("allowedRoles", 'Required value: visibility is "roles"')
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://files.example.com", "must be an http or https URL with a host"),
        ("https://", "must be an http or https URL with a host"),
        ("tickets.example.com/api", "must be an http or https URL with a host"),
        ("https://user:pw@tickets.example.com", "must not contain credentials"),
        ("http://[::1", "must be a valid URL"),
    ],
)
def test_mcp_url_is_an_http_url_without_credentials(url: str, problem: str) -> None:
    assert causes(ConnectorAppSpec, connector(mcpUrl=url)) == [
        invalid("mcpUrl", f'Invalid value: "{url}": {problem}')
    ]


def test_http_transport_needs_http_tools_and_others_refuse_them() -> None:
    body = {"name": "x", "transport": "http"}
    assert causes(ConnectorAppSpec, body) == [
        required("httpTools", 'Required value: transport is "http"')
    ]
    assert causes(ConnectorAppSpec, connector(transport="sse")) == [
        cause("FieldValueForbidden", "httpTools", 'Forbidden: only for transport "http"')
    ]
    no_tools = connector(transport="sse", httpTools=[], toolAllowlist=["anything"])
    assert encoded(ConnectorAppSpec, no_tools)["transport"] == "sse"


def test_http_tool_names_are_unique_and_the_allowlist_names_tools() -> None:
    body = connector(httpTools=[tool(), tool()], toolAllowlist=["get_ticket", "delete_ticket"])
    assert causes(ConnectorAppSpec, body) == [
        cause("FieldValueDuplicate", "httpTools[1].name", 'Duplicate value: "get_ticket"'),
        invalid(
            "toolAllowlist[1]", 'Invalid value: "delete_ticket": not the name of one of httpTools'
        ),
    ]


@pytest.mark.parametrize(
    "path", ["tickets", "https://tickets.example.com/t", "//host/t", "/t?x=1", "/t#top"]
)
def test_http_tool_path_is_an_absolute_path(path: str) -> None:
    body = connector(httpTools=[tool(path=path, argument_locations={})])
    message = (
        f'Invalid value: "{path}": must be an absolute path '
        "(starting with /, no scheme, host, query or fragment)"
    )
    assert causes(ConnectorAppSpec, body) == [invalid("httpTools[0].path", message)]


def test_http_tool_arguments_follow_the_input_schema() -> None:
    bad = tool(
        path="/tickets/{id}/{fields}/{other}",
        argument_locations={"id": "body", "page": "query", "fields": "path", "sort": "path"},
    )
    assert causes(ConnectorAppSpec, connector(httpTools=[bad])) == [
        invalid(
            "httpTools[0].argument_locations[page]",
            'Invalid value: "page": not a property of input_schema',
        ),
        invalid(
            "httpTools[0].argument_locations[sort]",
            'Invalid value: "sort": not a property of input_schema',
        ),
        invalid(
            "httpTools[0].path",
            'Invalid value: "fields": a path placeholder must be a required property of '
            "input_schema",
        ),
        invalid(
            "httpTools[0].path",
            'Invalid value: "other": a path placeholder must be a required property of '
            "input_schema",
        ),
    ]


def test_http_tool_path_argument_needs_its_placeholder() -> None:
    bad = tool(path="/tickets/{id}", argument_locations={"id": "path", "fields": "path"})
    assert causes(ConnectorAppSpec, connector(httpTools=[bad])) == [
        invalid(
            "httpTools[0].argument_locations[fields]",
            'Invalid value: "fields": a path argument needs the placeholder "{fields}" in path',
        )
    ]


def test_http_tool_without_input_schema_has_no_properties() -> None:
    bare = {"name": "get_ticket", "path": "/tickets/{id}"}
    assert causes(ConnectorAppSpec, connector(httpTools=[bare])) == [
        invalid(
            "httpTools[0].path",
            'Invalid value: "id": a path placeholder must be a required property of input_schema',
        )
    ]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "array"},
            cause(
                "FieldValueNotSupported",
                "httpTools[0].input_schema.type",
                'Unsupported value: "array": supported values: "object"',
            ),
        ),
        (
            {"properties": ["id"]},
            invalid("httpTools[0].input_schema.properties", "Invalid value: must be an object"),
        ),
        (
            {"properties": {"id": {}}, "required": "id"},
            invalid("httpTools[0].input_schema.required", "Invalid value: must be an array"),
        ),
    ],
)
def test_http_tool_input_schema_describes_an_object(
    schema: dict[str, Any], expected: Cause
) -> None:
    body = connector(httpTools=[tool(path="/tickets", input_schema=schema, argument_locations={})])
    assert causes(ConnectorAppSpec, body) == [expected]


def test_connector_app_list_bounds() -> None:
    body = connector(
        allowedUsers=["Not-A-Username"] + ["u"] * 256,
        httpTools=[tool(name=f"t{i}") for i in range(101)],
    )
    assert causes(ConnectorAppSpec, body) == [
        cause("FieldValueTooMany", "allowedUsers", "Expected `array` of length <= 256"),
        cause("FieldValueTooMany", "httpTools", "Expected `array` of length <= 100"),
    ]


# Collaboration

WORKFLOW: dict[str, Any] = {
    "type": "workflow",
    "config": {
        "steps": [
            {"name": "planning", "participants": ["planner-bot"]},
            {"name": "development", "participants": ["developer-bot", "tester-bot"]},
        ],
        "maxRounds": 3,
    },
}


def test_collaboration_steps_form_round_trips() -> None:
    assert encoded(CollaborationSpec, WORKFLOW) == WORKFLOW


@pytest.mark.parametrize(
    "config",
    [
        None,
        {},
        {"mode": "free", "graph": {"a": ["b"]}},
        {"steps": [{"name": "s", "participants": ["b"], "note": "x"}]},
    ],
)
def test_collaboration_config_is_otherwise_free_form(config: dict[str, Any] | None) -> None:
    spec = {"type": "debate"} if config is None else {"type": "debate", "config": config}
    assert encoded(CollaborationSpec, spec) == spec


def test_collaboration_type_is_required_and_bounded() -> None:
    assert causes(CollaborationSpec, {"config": {}}) == [required("type")]
    assert causes(CollaborationSpec, {"type": ""}) == [
        invalid("type", "Expected `str` of length >= 1")
    ]
    assert causes(CollaborationSpec, {"type": "t" * 65}) == [
        cause("FieldValueTooLong", "type", "Expected `str` of length <= 64")
    ]


def test_collaboration_steps_are_checked_on_their_exact_paths() -> None:
    steps = [
        {"name": "a", "participants": ["b1", "b2", "b1"]},
        {"participants": []},
        {"name": 5, "participants": ["bad name", 3, "x" * 64, "b9", "b9"]},
        {"name": "", "participants": "b1"},
        {"name": "n" * 256},
        7,
    ]
    assert causes(CollaborationSpec, {"type": "workflow", "config": {"steps": steps}}) == [
        cause("FieldValueDuplicate", "config.steps[0].participants[2]", 'Duplicate value: "b1"'),
        required("config.steps[1].name"),
        invalid("config.steps[1].participants", "Invalid value: must have at least 1 item"),
        invalid("config.steps[2].name", "Invalid value: must be a non-empty string"),
        invalid("config.steps[2].participants[0]", f'Invalid value: "bad name": {BOT_NAME}'),
        invalid("config.steps[2].participants[1]", f"Invalid value: 3: {BOT_NAME}"),
        invalid(
            "config.steps[2].participants[2]",
            f'Invalid value: "{"x" * 64}": {BOT_NAME}',
        ),
        cause("FieldValueDuplicate", "config.steps[2].participants[4]", 'Duplicate value: "b9"'),
        invalid("config.steps[3].name", "Invalid value: must be a non-empty string"),
        invalid("config.steps[3].participants", "Invalid value: must be an array of Bot names"),
        cause(
            "FieldValueTooLong",
            "config.steps[4].name",
            "Too long: must have at most 255 characters",
        ),
        required("config.steps[4].participants"),
        invalid("config.steps[5]", "Invalid value: must be an object with name and participants"),
    ]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            "plan, build",
            invalid("config.steps", "Invalid value: must be an array of {name, participants}"),
        ),
        (None, invalid("config.steps", "Invalid value: must be an array of {name, participants}")),
        ([], invalid("config.steps", "Invalid value: must have at least 1 item")),
        (
            [{"name": "s", "participants": ["b"]}] * 65,
            cause("FieldValueTooMany", "config.steps", "Too many: 65: must have at most 64 items"),
        ),
        (
            [{"name": "s", "participants": [f"b{i}" for i in range(65)]}],
            cause(
                "FieldValueTooMany",
                "config.steps[0].participants",
                "Too many: 65: must have at most 64 items",
            ),
        ),
    ],
)
def test_collaboration_steps_shape(steps: object, expected: Cause) -> None:
    body = {"type": "workflow", "config": {"steps": steps}}
    assert causes(CollaborationSpec, body) == [expected]


def test_collaboration_config_depth_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(17):
        node["a"] = {}
        node = node["a"]
    assert causes(CollaborationSpec, {"type": "t", "config": deep}) == [
        invalid("config", "Invalid value: nested more than 16 levels deep")
    ]


def test_post_init_problems_also_raise_when_built_directly() -> None:
    with pytest.raises(ValueError) as info:
        CollaborationSpec(type="t", config={"steps": []})
    errors = FieldErrors()
    errors.add("config.steps", "Invalid value: must have at least 1 item")
    assert str(info.value) == errors.lines[0]


@pytest.mark.parametrize(
    ("spec_type", "body"),
    [
        (RetrieverSpec, RETRIEVER),
        (
            RetrieverSpec,
            {
                "storageConfig": {
                    "type": "qdrant",
                    "url": "u",
                    "indexStrategy": {"mode": "per_user"},
                }
            },
        ),
        (DeviceSpec, DEVICE),
        (DeviceSpec, {"deviceId": "d1"}),
        (TemplateSpec, TEMPLATE),
        (TemplateSpec, {"resources": {"bot": {}, "subscription": {"promptTemplate": "p"}}}),
        (ConnectorAppSpec, CONNECTOR),
        (ConnectorAppSpec, {"name": "x", "httpTools": []}),
        (CollaborationSpec, WORKFLOW),
    ],
)
def test_answers_decode_to_themselves(spec_type: type[msgspec.Struct], body: object) -> None:
    """What is stored and answered, defaults filled in, is a valid body meaning the same."""
    once = encoded(spec_type, body)
    assert encoded(spec_type, once) == once


# The sample manifests of all 13 kinds

ALL_KINDS = [
    "Skill",
    "Ghost",
    "Model",
    "Shell",
    "Workspace",
    "Bot",
    "Team",
    "Task",
    "Retriever",
    "Device",
    "Template",
    "ConnectorApp",
    "Collaboration",
]
# Fields of API.md §2 that the specs of the first eight kinds do not accept yet.


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    items = cast(list[dict[str, Any]], parse_manifests(MANIFESTS.read_bytes(), "application/yaml"))
    assert [item["kind"] for item in items] == ALL_KINDS
    return {item["kind"]: item for item in items}


def test_every_manifest_has_the_envelope_and_no_namespace(
    manifests: dict[str, dict[str, Any]],
) -> None:
    for kind, item in manifests.items():
        assert set(item) == {"apiVersion", "kind", "metadata", "spec"}, kind
        assert item["apiVersion"] == "agent.wecode.io/v1", kind
        assert set(item["metadata"]) <= {"name", "displayName", "labels"}, kind


@pytest.mark.parametrize("kind", list(UPSTREAM_SPECS))
def test_upstream_kind_manifests_decode_strictly(
    manifests: dict[str, dict[str, Any]], kind: str
) -> None:
    spec = manifests[kind]["spec"]
    decoded = decode(spec, UPSTREAM_SPECS[kind], field_validation="Strict")
    assert decoded.warnings == []


@pytest.mark.parametrize("kind", list(SPECS))
def test_every_manifest_decodes_strictly_aliases_included(
    manifests: dict[str, dict[str, Any]], kind: str
) -> None:
    decoded = decode(manifests[kind]["spec"], SPECS[kind], field_validation="Strict")
    assert decoded.warnings == []


def test_manifests_use_the_snake_case_aliases(manifests: dict[str, dict[str, Any]]) -> None:
    ghost, team, task = (manifests[kind]["spec"] for kind in ("Ghost", "Team", "Task"))
    assert ("preload_skills" in ghost, "preloadSkills" in ghost) == (True, False)
    assert [k for k in team if k in ("bind_mode", "bindMode", "quick_phrases", "quickPhrases")] == [
        "bind_mode",
        "quick_phrases",
    ]
    assert [k for k in task if k in ("is_group_chat", "isGroupChat", "device_id", "deviceId")] == [
        "is_group_chat",
        "device_id",
    ]


def test_manifest_references_name_objects_of_the_file(
    manifests: dict[str, dict[str, Any]],
) -> None:
    def name(kind: str) -> str:
        value: str = manifests[kind]["metadata"]["name"]
        return value

    spec = {kind: item["spec"] for kind, item in manifests.items()}
    assert spec["Ghost"]["skills"] == [name("Skill")]
    assert spec["Ghost"]["preload_skills"] == [name("Skill")]
    assert spec["Bot"] == {
        "ghostRef": {"name": name("Ghost")},
        "shellRef": {"name": "ClaudeCode"},
        "modelRef": {"name": name("Model")},
    }
    assert [member["botRef"] for member in spec["Team"]["members"]] == [{"name": name("Bot")}]
    assert spec["Task"]["teamRef"] == {"name": name("Team")}
    assert spec["Task"]["workspaceRef"] == {"name": name("Workspace")}
    assert spec["Task"]["device_id"] == spec["Device"]["deviceId"] == name("Device")
    participants = {
        p for step in spec["Collaboration"]["config"]["steps"] for p in step["participants"]
    }
    assert participants == {name("Bot")}
