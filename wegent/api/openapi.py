"""The OpenAPI document, exact about what the server accepts (docs/fuzzing.md checks it).

Litestar builds the document from the routes; :func:`finish` then says what Litestar cannot:

- Request bodies are documented from msgspec's own JSON Schema of their Structs, so every
  constraint the decoder enforces is there (Litestar drops those of optional fields and of
  list items), explicit ``extra_json_schema`` metadata included (label rules, the kind each
  input takes, a unique ``skills`` list ...). Then what the decoder and the services check
  beyond msgspec: no U+0000 in any kept string (free-form objects included), unknown fields
  allowed (``fieldValidation=Warn`` drops them, API.md §1), ``shellType`` or its alias
  ``runtime`` required and both equal when both are given, ``bindMode`` and its alias not
  both, and for a create a ``metadata.name`` and no ``resourceVersion`` (API.md §6).
- ``{namespace}`` is a DNS label; family A routes take it as ``?namespace=`` (API.md §3, §5).
- Media types: a merge patch may be ``application/merge-patch+json``, a batch a YAML stream;
  a batch is an array of manifests or one manifest (API.md §9).

The document is built once per app and is the same on every start.
"""

from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any, get_args

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI

from wegent.api.bodies import BODY_TYPES, MERGE_PATCH_TYPES
from wegent.resources.decode import NO_NUL
from wegent.resources.envelope import ResourceInput
from wegent.resources.manifests import JSON_MEDIA_TYPES, MAX_MANIFESTS, YAML_MEDIA_TYPES
from wegent.resources.meta import NAMESPACE_PATTERN
from wegent.resources.registry import BY_KIND
from wegent.resources.specs import ShellType

REF = "#/components/schemas/{name}"
JSON_VALUE = "JsonValue"
CREATE_METADATA = "CreateMetadata"

NAMESPACE_OR_EMPTY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$(?!\n)"  # "": the default namespace
NAMESPACE_IN_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": NAMESPACE_PATTERN,
}
NAMESPACE_IN_QUERY = {
    "name": "namespace",
    "in": "query",
    "required": False,
    "description": "The namespace; empty or absent means default, the caller's own (API.md §3)",
    "schema": {"type": "string", "maxLength": 63, "pattern": NAMESPACE_OR_EMPTY},
}


class DocumentConfig(OpenAPIConfig):
    """``OpenAPIConfig`` whose document is :func:`finish`\\ ed when it is rendered."""

    def to_openapi_schema(self) -> OpenAPI:
        built = super().to_openapi_schema()
        return Document(**{field.name: getattr(built, field.name) for field in fields(built)})


class Document(OpenAPI):
    """The document as Litestar builds it, finished when it is turned into JSON."""

    def to_schema(self) -> dict[str, Any]:
        return finish(super().to_schema())


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Correct and complete the document Litestar generated (see the module's docstring)."""
    document["components"]["schemas"].update(body_schemas())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _parameters(path, operation)
                _request_body(method, operation)
    return document


def _parameters(path: str, operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter["in"] == "path" and parameter["name"] == "namespace":
            parameter["schema"] = dict(NAMESPACE_IN_PATH)
    if path.startswith("/api/v1/kinds/"):
        parameters.append(copy.deepcopy(NAMESPACE_IN_QUERY))


def _request_body(method: str, operation: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content")
    if not content:
        return
    tags = operation.get("tags", [])
    if "batch" in tags:
        manifests = {"type": "array", "maxItems": MAX_MANIFESTS, "items": {"type": "object"}}
        one_of: list[dict[str, Any]] = [manifests, {"type": "object"}]
        described = "An array of manifests, or one manifest (API.md §9)"
        content.clear()
        for media_type in sorted(JSON_MEDIA_TYPES):
            content[media_type] = {"schema": {"description": described, "oneOf": one_of}}
        for media_type in sorted(YAML_MEDIA_TYPES):  # an empty stream holds no manifest
            schema = {"description": f"{described}; a stream of documents", "oneOf": one_of}
            content[media_type] = {"schema": copy.deepcopy(schema)}
            content[media_type]["schema"]["oneOf"].append({"type": "null"})
        return
    if method == "patch" and tags and tags[0] in BY_KIND:
        schema = content["application/json"]["schema"]
        for media_type in sorted(MERGE_PATCH_TYPES):
            content[media_type] = {"schema": copy.deepcopy(schema)}
        return
    body = content.get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    created = _create_name(ref.rpartition("/")[2])
    if method == "post" and created:
        body["$ref"] = REF.format(name=created)


def _create_name(component: str) -> str | None:
    """``SkillCreate`` for ``SkillInput``: what a create takes."""
    body_type = BODY_TYPES.get(component)
    if body_type is None or not issubclass(body_type, ResourceInput):
        return None
    return f"{body_type.KIND}Create"


# -- request body schemas ---------------------------------------------------------------------


def body_schemas() -> dict[str, Any]:
    """Every request body's component, from msgspec, corrected and completed."""
    _, components = msgspec.json.schema_components(list(BODY_TYPES.values()), ref_template=REF)
    for schema in components.values():
        schema.pop("description", None)  # the Structs' docstrings are written for developers
        _exact(schema)
    components[JSON_VALUE] = json_value()
    _shell_type_required(components["ShellSpec"])
    _bind_mode_once(components["TeamSpec"])
    components.update(_create_schemas(components))
    return components


def json_value() -> dict[str, Any]:
    """Any JSON value, U+0000 in none of its strings: what free-form objects hold."""
    ref = {"$ref": REF.format(name=JSON_VALUE)}
    return {
        "description": "Any JSON value whose strings (keys included) hold no U+0000",
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": ref},
            {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": ref},
        ],
    }


_DATA_KEYWORDS = frozenset({"enum", "const", "examples"})  # their values are not schemas


def _exact(node: object) -> None:
    """Unknown fields allowed, no U+0000 in strings, free-form objects made of JSON values."""
    if isinstance(node, list):
        for item in node:
            _exact(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]  # unknown fields are dropped by default (API.md §1)
    node.pop("default", None)  # no information, and it trips schemathesis's coverage phase
    _flatten_nullable(node)
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    if "string" in kinds and "enum" not in node and "const" not in node:
        node["pattern"] = _without_nul(node.get("pattern"))
    if "object" in kinds and "properties" not in node and "additionalProperties" not in node:
        node["propertyNames"] = {"pattern": NO_NUL}
        node["additionalProperties"] = {"$ref": REF.format(name=JSON_VALUE)}
    for key, value in node.items():
        if key == "properties":
            _exact(list(value.values()))
        elif key not in _DATA_KEYWORDS:
            _exact(value)


def _flatten_nullable(node: dict[str, Any]) -> None:
    """``anyOf: [{type: T, ...}, {type: null}]`` as ``{type: [T, null], ...}`` (``enum``: with
    ``null`` among the values): the same schema, in the form schemathesis's coverage phase can
    merge with other constraints on the same property."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return
    (value,) = [b for b in branches if b != {"type": "null"}]
    if isinstance(value.get("type"), str) and "anyOf" not in value:
        del node["anyOf"]
        node.update({**value, "type": [value["type"], "null"]})
    elif set(value) <= {"enum", "description", "deprecated"} and "enum" in value:
        del node["anyOf"]
        node.update({**value, "enum": [*value["enum"], None]})


def _without_nul(pattern: str | None) -> str:
    """``pattern``, made to refuse U+0000. Our patterns are built of positive classes, which do
    not hold it, and negated ones (the email's ``[^@ ...]``), which it is added to."""
    if pattern is None:
        return NO_NUL
    return pattern.replace("[^", "[^\\u0000")


def _shell_type_required(shell: dict[str, Any]) -> None:
    """``shellType`` or its alias ``runtime`` (API.md §2); both given, they must be equal.
    Absent and null are the same. One ``anyOf`` of plain cases, which schemathesis's coverage
    phase can combine with the properties (it gives up on ``not`` and nested combinators)."""
    values = list(get_args(ShellType))
    shell["anyOf"] = [
        {"required": [given], "properties": {given: {"enum": values}, other: {"enum": [None]}}}
        for given, other in (("shellType", "runtime"), ("runtime", "shellType"))
    ] + [
        {
            "required": ["shellType", "runtime"],
            "properties": {"shellType": {"enum": [value]}, "runtime": {"enum": [value]}},
        }
        for value in values
    ]


def _bind_mode_once(team: dict[str, Any]) -> None:
    """``bindMode`` or its alias ``bind_mode``: one of them absent or null. The server also
    takes both when they are equal, which no JSON Schema can say of two arrays."""
    team["anyOf"] = [{"properties": {f: {"type": "null"}}} for f in ("bindMode", "bind_mode")]


def _create_schemas(components: dict[str, Any]) -> dict[str, Any]:
    """``{Kind}Create`` and ``CreateMetadata``: a create needs ``metadata.name`` and takes no
    resourceVersion (``""``, Kubernetes' unset, is accepted)."""
    metadata = copy.deepcopy(components["Metadata"])
    metadata["title"] = CREATE_METADATA
    properties = metadata["properties"]
    properties["name"] = {**properties["name"], "type": "string"}
    properties["resourceVersion"] = {"description": "May not be set on create", "enum": ["", None]}
    metadata["required"] = ["name"]
    created = {CREATE_METADATA: metadata}
    for name, body_type in BODY_TYPES.items():
        if issubclass(body_type, ResourceInput):
            schema = copy.deepcopy(components[name])
            schema["title"] = f"{body_type.KIND}Create"
            schema["properties"]["metadata"] = {"$ref": REF.format(name=CREATE_METADATA)}
            created[schema["title"]] = schema
    return created
