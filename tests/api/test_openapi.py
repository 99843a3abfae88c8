"""The OpenAPI document describes every route, each kind's own schemas and every error."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jsonschema_rs
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar

from tests.auth.test_authorization import route_table
from tests.helpers import Account, register
from wegent.api import kubernetes
from wegent.api.bodies import BODY_TYPES
from wegent.api.params import NAMESPACE_OR_EMPTY
from wegent.resources.decode import NO_NUL, decode
from wegent.resources.envelope import input_type
from wegent.resources.meta import (
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    NAME_PATTERN,
    NAMESPACE_PATTERN,
    RESOURCE_VERSION_PATTERN,
    label_value_problems,
    qualified_name_problems,
)
from wegent.resources.registry import BY_KIND, KINDS

SKILL = {"description": "d"}
TEAM = {"members": [{"botRef": {"name": "b"}}], "collaborationModel": "solo"}
REPOSITORY = {"gitUrl": "u", "gitRepo": "r", "branchName": "b", "gitDomain": "d"}


@pytest.fixture(scope="module")
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
async def writer(client: httpx.AsyncClient) -> Account:
    """An account whose namespace holds a Bot "b" (for Teams) and a Shell "b" (bindShells)."""
    account = await register(client)
    base = f"/api/v1/namespaces/{account.username}"
    for plural, body in (
        ("ghosts", {"metadata": {"name": "g"}, "spec": {"systemPrompt": "p"}}),
        (
            "bots",
            {
                "metadata": {"name": "b"},
                "spec": {"ghostRef": {"name": "g"}, "shellRef": {"name": "Chat"}},
            },
        ),
    ):
        response = await client.post(f"{base}/{plural}", json=body, headers=account.headers)
        assert response.status_code == 201, response.text
    return account


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


async def test_it_is_openapi_3_1_and_served_without_auth(
    document: dict[str, Any], client: httpx.AsyncClient
) -> None:
    assert document["openapi"].startswith("3.1")
    # A login JWT or an API token as a bearer token, or an API token as X-API-Key (§16).
    assert document["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A login JWT or an API token (wg-…)",
        },
        "apiKey": {
            "type": "apiKey",
            "name": "X-API-Key",
            "in": "header",
            "description": "An API token (wg-…)",
        },
    }
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    assert (await client.get("/schema")).status_code == 200


async def test_every_kind_has_its_own_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for info in KINDS:
        for name in (info.kind, f"{info.kind}Input", f"{info.kind}List", f"{info.kind}Spec"):
            assert name in schemas, name
        for family in (
            f"/api/v1/namespaces/{{namespace}}/{info.plural}",
            f"/api/v1/kinds/{info.plural}",
        ):
            post = document["paths"][family]["post"]
            body = post["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{info.kind}Create"}
            created = post["responses"]["201"]["content"]["application/json"]["schema"]
            assert created == {"$ref": f"#/components/schemas/{info.kind}"}
            put = document["paths"][f"{family}/{{name}}"]["put"]
            body = put["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{info.kind}Input"}
        for name in (f"{info.kind}Input", f"{info.kind}Create"):  # F5: only the URL's kind
            assert schemas[name]["properties"]["kind"] == {
                "description": f"The kind of the object: {info.kind}. May be omitted.",
                "enum": [info.kind, None],
                "maxLength": 63,
                "type": ["string", "null"],
            }
    assert schemas["Task"]["properties"]["status"] == {
        "description": "The object's current state, set by the server.",
        "$ref": "#/components/schemas/TaskStatus",
    }


def referenced(node: object) -> list[str]:
    """The components ``node`` refers to, anywhere in it."""
    if isinstance(node, list):
        return [name for item in node for name in referenced(item)]
    if not isinstance(node, dict):
        return []
    ref = node.get("$ref")
    found = [ref.removeprefix("#/components/schemas/")] if isinstance(ref, str) else []
    for key, value in node.items():
        if key not in ("enum", "const", "examples"):  # values, not schemas
            found += referenced(value)
    return found


async def test_every_field_of_every_resource_body_is_described(document: dict[str, Any]) -> None:
    """Users read a field's description (``kubectl explain bot.spec.ghostRef``): every property
    of each kind's bodies, as sent and as answered, and of every object they reference, has
    one, ``$ref`` properties (bare or in an ``anyOf`` with null) included."""
    schemas = document["components"]["schemas"]
    pending = [
        f"{info.kind}{suffix}" for info in KINDS for suffix in ("Input", "Create", "", "List")
    ]
    walked: set[str] = set()
    undescribed: list[str] = []
    while pending:
        name = pending.pop()
        if name in walked:
            continue
        walked.add(name)
        schema = schemas[name]
        for field, prop in schema.get("properties", {}).items():
            described = prop.get("description")
            if not (isinstance(described, str) and described.strip()):
                undescribed.append(f"{name}.{field}")
        pending += referenced(schema)
    assert not undescribed, "properties without a description: " + ", ".join(sorted(undescribed))
    # The walk reached the nested objects: metadata, references, members, upstream configs.
    assert {
        "Metadata",
        "CreateMetadata",
        "ObjectMeta",
        "ListMeta",
        "ResourceRef",
        "ResourceStatus",
        "TaskStatus",
        "TeamMember",
        "Repository",
        "StorageConfig",
        "IndexStrategy",
        "RetrievalMethod",
        "TemplateResources",
        "TemplateSkillRef",
        "TemplateQueueConfig",
        "ConnectorHttpTool",
    } <= walked
    bot = schemas["BotSpec"]["properties"]
    assert bot["ghostRef"]["$ref"] == "#/components/schemas/ResourceRef"
    assert {"$ref": "#/components/schemas/ResourceRef"} in bot["modelRef"]["anyOf"]


async def test_every_route_is_documented_once(document: dict[str, Any], app: Litestar) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    # Kubernetes' own documents and reviews (docs/kubectl.md) are not in this document.
    hidden = {path for handler in kubernetes.ROUTES for path in handler.paths}
    hidden.add("/metrics")  # Prometheus' text format, for scrapers (API.md §18)
    served = {
        (method, path.replace(":str", ""))
        for method, path, _ in route_table(app)
        if not path.startswith("/schema") and path not in hidden
    }
    served = {
        (m, p.replace("{namespace}", "{namespace}").replace("{name}", "{name}")) for m, p in served
    }
    assert served == documented
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


async def test_errors_are_documented_as_status_bodies(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for code, response in op["responses"].items():
            if int(code) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Status"}, (method, path, code)
        if path not in (
            "/healthz",
            "/readyz",
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/auth/login",
        ):
            assert "401" in op["responses"], (method, path)
        if "requestBody" in op:
            decoded = {"400", "415"} if method == "DELETE" else {"400", "415", "422"}
            assert decoded <= set(op["responses"]), (method, path)


# The document says exactly what the server accepts (docs/fuzzing.md F4-F16)


def test_namespaces_are_documented_as_dns_labels(document: dict[str, Any]) -> None:
    """F4: ``{namespace}`` in every path; family A takes it as ``?namespace=`` (may be empty)."""
    for method, path, op in operations(document):
        parameters = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
        if "{namespace}" in path:
            assert parameters[("path", "namespace")]["schema"] == {
                "type": "string",
                "minLength": 1,
                "maxLength": 63,
                "pattern": NAMESPACE_PATTERN,
            }, (method, path)
        query = parameters.get(("query", "namespace"))
        if path.startswith("/api/v1/kinds/"):
            assert query is not None and query["schema"]["pattern"] == NAMESPACE_OR_EMPTY
        else:
            assert query is None, (method, path)


@given(st.text(alphabet="a-z0.A\n", max_size=70))
def test_the_query_namespace_pattern_is_a_dns_label_or_empty(text: str) -> None:
    assert bool(re.search(NAMESPACE_OR_EMPTY, text)) == (
        text == "" or (len(text) <= 63 and re.search(NAMESPACE_PATTERN, text) is not None)
    )


def test_request_media_types(document: dict[str, Any]) -> None:
    """A patch may be a merge or a JSON patch; a batch may be YAML (F6). Nothing else takes
    those."""
    for method, path, op in operations(document):
        media_types = set(op.get("requestBody", {}).get("content", {}))
        if path.endswith(("/apply", "/delete")):
            expected = {"application/json", "application/yaml", "application/x-yaml", "text/yaml"}
        elif method == "PATCH" and not path.startswith("/api/v1/users"):
            expected = {
                "application/json",
                "application/merge-patch+json",
                "application/json-patch+json",
            }
        elif method == "DELETE" and media_types:  # DeleteOptions, as client-go sends it (§14)
            expected = {"application/json", "application/vnd.kubernetes.protobuf"}
        else:
            expected = {"application/json"} if media_types else set()
        assert media_types == expected, (method, path)


def validator(document: dict[str, Any], component: str) -> jsonschema_rs.Validator:
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


def test_batch_bodies_are_manifests(document: dict[str, Any]) -> None:
    """F6: an array of objects or one object; YAML also an empty stream (null)."""
    content = document["paths"]["/api/v1/namespaces/{namespace}/apply"]["post"]["requestBody"]
    for media_type, body in content["content"].items():
        check = jsonschema_rs.Draft202012Validator(body["schema"])
        assert check.is_valid([{}, {"kind": "Ghost"}]) and check.is_valid({"kind": "Ghost"})
        assert not check.is_valid([[None, None]]) and not check.is_valid(["x"])
        assert not check.is_valid([{}] * 501) and not check.is_valid("x")
        assert check.is_valid(None) == media_type.endswith("yaml"), media_type


def no_nul_everywhere(node: object, where: str) -> None:
    """Every string schema refuses U+0000 (F14)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            no_nul_everywhere(item, f"{where}[{index}]")
    elif isinstance(node, dict):
        kinds = node.get("type")
        if "string" in ([kinds] if isinstance(kinds, str) else kinds or []) and not (
            "enum" in node or "const" in node
        ):
            assert re.search(node["pattern"], "a\x00b") is None, where
        for key, value in node.items():
            if key not in ("enum", "const", "examples"):
                no_nul_everywhere(value, f"{where}.{key}")


def test_request_strings_refuse_nul(document: dict[str, Any]) -> None:
    for text in ("", "a\nb\n", "\u2028\U0001f600"):
        assert re.search(NO_NUL, text) and jsonschema_rs.validator_for(
            {"pattern": NO_NUL}
        ).is_valid(text)
    schemas = document["components"]["schemas"]
    for name in BODY_TYPES:
        no_nul_everywhere(schemas[name], name)
    no_nul_everywhere(schemas["JsonValue"], "JsonValue")
    assert not validator(document, "JsonValue").is_valid({"a": [{"b": "\x00"}]})
    assert not validator(document, "JsonValue").is_valid({"\x00": 1})
    assert validator(document, "JsonValue").is_valid({"a": [{"b": "c", "d": 1.5}], "e": None})


@given(st.text(alphabet="aZ0.-_/ \n", max_size=70), st.text(alphabet="a.-/", max_size=260))
def test_label_key_pattern_agrees_with_the_check(name: str, prefix: str) -> None:
    """F11: what the document says of label and annotation keys, the server checks."""
    for key in (name, f"{prefix}/{name}"):
        documented = re.search(LABEL_KEY_PATTERN, key) is not None
        assert documented == (not qualified_name_problems(key)), key


@given(st.text(alphabet="aZ0.-_/ \n", max_size=70))
def test_label_value_pattern_agrees_with_the_check(value: str) -> None:
    documented = re.search(LABEL_VALUE_PATTERN, value) is not None and len(value) <= 63
    assert documented == (not label_value_problems(value)), value


EXACT = [  # (component, body, accepted by the server and by the document)
    ("SkillCreate", {"metadata": {"name": "s1"}, "spec": {"description": "d"}}, True),
    ("SkillCreate", {"metadata": {}, "spec": {"description": "d"}}, False),  # F10
    ("SkillCreate", {"metadata": {"name": None}, "spec": {"description": "d"}}, False),
    ("SkillCreate", {"metadata": {"name": "s2", "resourceVersion": ""}, "spec": SKILL}, True),
    ("SkillCreate", {"metadata": {"name": "s3", "resourceVersion": "1"}, "spec": SKILL}, False),
    ("SkillCreate", {"kind": "Skill", "metadata": {"name": "s4"}, "spec": SKILL}, True),
    ("SkillCreate", {"kind": "", "metadata": {"name": "s5"}, "spec": SKILL}, False),  # F5
    ("SkillCreate", {"kind": "Bot", "metadata": {"name": "s6"}, "spec": SKILL}, False),
    ("SkillCreate", {"metadata": {"name": "s7", "labels": {"a b": "x"}}, "spec": SKILL}, False),
    ("SkillCreate", {"metadata": {"name": "s8", "labels": {"x.io/a": ""}}, "spec": SKILL}, True),
    ("SkillCreate", {"metadata": {"name": "s9", "labels": {"X.io/a": "v"}}, "spec": SKILL}, False),
    ("SkillCreate", {"metadata": {"name": "sa", "labels": {"a": "b c"}}, "spec": SKILL}, False),
    (
        "SkillCreate",
        {"metadata": {"name": "sb", "labels": {f"k{i}": "" for i in range(65)}}, "spec": SKILL},
        False,
    ),
    (
        "SkillCreate",
        {"metadata": {"name": "sc", "annotations": {"6<(": "x"}}, "spec": SKILL},
        False,
    ),
    (
        "SkillCreate",
        {"metadata": {"name": "sd", "annotations": {"a": "<\n>"}}, "spec": SKILL},
        True,
    ),
    ("SkillCreate", {"metadata": {"name": "se"}, "spec": {"description": "a\x00b"}}, False),
    ("SkillCreate", {"metadata": {"name": "sf"}, "spec": {**SKILL, "tags": ["t" * 64]}}, False),
    ("SkillCreate", {"metadata": {"name": "sg"}, "spec": {**SKILL, "bindShells": [""]}}, False),
    ("SkillCreate", {"metadata": {"name": "sh"}, "spec": {**SKILL, "bindShells": ["b"]}}, True),
    (
        "GhostCreate",
        {"metadata": {"name": "g1"}, "spec": {"systemPrompt": "x", "skills": ["a b"]}},
        False,
    ),
    (
        "GhostCreate",
        {"metadata": {"name": "g2"}, "spec": {"systemPrompt": "x", "skills": []}},
        True,
    ),
    ("ShellCreate", {"metadata": {"name": "h1"}, "spec": {}}, False),  # F12
    ("ShellCreate", {"metadata": {"name": "h2"}, "spec": {"runtime": "Chat"}}, True),
    (
        "ShellCreate",
        {"metadata": {"name": "h3"}, "spec": {"shellType": None, "runtime": "Agno"}},
        True,
    ),
    (
        "ShellCreate",
        {"metadata": {"name": "h5"}, "spec": {"shellType": "Chat", "runtime": "Dify"}},
        False,
    ),  # F15
    ("ShellCreate", {"metadata": {"name": "h6"}, "spec": {"shellType": None}}, False),
    (
        "ModelCreate",
        {"metadata": {"name": "m1"}, "spec": {"modelConfig": {}, "contextWindow": 5.0}},
        True,
    ),  # F13
    (
        "ModelCreate",
        {"metadata": {"name": "m2"}, "spec": {"modelConfig": {}, "costIndex": -1}},
        False,
    ),  # F9
    (
        "ModelCreate",
        {"metadata": {"name": "m3"}, "spec": {"modelConfig": {"a": ["\x00"]}}},
        False,
    ),  # F14
    (
        "WorkspaceCreate",
        {"metadata": {"name": "w1"}, "spec": {"repository": {**REPOSITORY, "gitRepoId": -445}}},
        False,
    ),
    (
        "WorkspaceCreate",
        {"metadata": {"name": "w2"}, "spec": {"repository": {**REPOSITORY, "gitRepoId": 7}}},
        True,
    ),
    (
        "TeamCreate",
        {"metadata": {"name": "t1"}, "spec": {**TEAM, "bindMode": ["a"], "bind_mode": ["b"]}},
        False,
    ),
    ("TeamCreate", {"metadata": {"name": "t2"}, "spec": {**TEAM, "bind_mode": ["b"]}}, True),
]


@pytest.mark.parametrize(("component", "body", "accepted"), EXACT)
async def test_the_document_and_the_server_agree(
    document: dict[str, Any],
    client: httpx.AsyncClient,
    writer: Account,
    component: str,
    body: dict[str, Any],
    accepted: bool,
) -> None:
    assert validator(document, component).is_valid(body) == accepted
    plural = BY_KIND[component.removesuffix("Create")].plural
    response = await client.post(
        f"/api/v1/namespaces/{writer.username}/{plural}", json=body, headers=writer.headers
    )
    # Refused: 400 for a kind other than the URL's (API.md §1), 422 for everything else.
    refused = 400 if body.get("kind") not in (None, component.removesuffix("Create")) else 422
    assert response.status_code == (201 if accepted else refused), response.text


def test_both_aliases_equal_is_the_one_thing_the_document_refuses_and_the_server_takes(
    document: dict[str, Any],
) -> None:
    """No JSON Schema can say that two values are equal; the document asks for one of them."""
    for kind, component, spec in (
        ("Team", "TeamSpec", {**TEAM, "bindMode": ["a"], "bind_mode": ["a"]}),
        ("Shell", "ShellSpec", {"shellType": "Dify", "runtime": "Dify"}),
        ("Ghost", "GhostSpec", {"systemPrompt": "p", "preloadSkills": [], "preload_skills": []}),
    ):
        assert not validator(document, component).is_valid(spec)
        assert decode(
            msgspec.json.encode({"metadata": {"name": "t"}, "spec": spec}), input_type(kind)
        )


def test_replace_takes_a_resource_version_of_this_server(document: dict[str, Any]) -> None:
    """F8: on replace, digits (at most 18) or "" (unset)."""
    check = validator(document, "Metadata")
    for version, documented in (("", True), ("42", True), ("9" * 18, True), ("9" * 19, False)):
        assert check.is_valid({"resourceVersion": version}) == documented
    for version in ("abc", "²", "1.5", " 1"):
        assert not check.is_valid({"resourceVersion": version})
    assert re.search(RESOURCE_VERSION_PATTERN, "12\n") is None


def test_optional_fields_keep_their_constraints(document: dict[str, Any]) -> None:
    """F9, F16: Litestar dropped ``ge=0`` and list item constraints of optional fields."""
    schemas = document["components"]["schemas"]
    assert schemas["StatusUpdate"]["properties"]["progress"]["minimum"] == 0
    assert schemas["Repository"]["properties"]["gitRepoId"]["minimum"] == 0
    skills = schemas["GhostSpec"]["properties"]["skills"]
    assert skills["items"]["pattern"] == NAME_PATTERN and skills["uniqueItems"] is True
    assert schemas["SkillSpec"]["properties"]["tags"]["items"]["maxLength"] == 63
    assert schemas["ShellSpec"]["properties"]["supportModel"]["items"]["maxLength"] == 255
