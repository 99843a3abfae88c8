"""The OpenAPI document, exact about what the server accepts (docs/fuzzing.md checks it).

Litestar builds the document from its routes; :func:`finish` then completes it:

- The resource API (its operations, parameters, bodies and answers) is written from the
  operation table (``wegent.api.operations``), the same rows both of its doors serve.
- Request and answer bodies are documented from msgspec's own JSON Schema of their Structs, so
  every constraint the decoder enforces is there (Litestar drops those of optional fields and
  of list items), explicit ``extra_json_schema`` metadata included (label rules, the kind each
  input takes, a unique ``skills`` list ...). Then what the decoder and the services check
  beyond msgspec: no U+0000 in any kept string (free-form objects included), unknown fields
  allowed (``fieldValidation=Warn`` drops them, API.md §1), each input alias as a deprecated
  property (a required field may come under its alias; not both), and for a create a
  ``metadata.name`` and no ``resourceVersion`` (API.md §6).
- ``{namespace}`` is a DNS label in every path (API.md §3).

The document is built once per app and is the same on every start.
"""

from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any, get_args

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import OpenAPI

from wegent.api import namespaces
from wegent.api.bodies import BODY_TYPES
from wegent.api.docs import error_responses
from wegent.api.operations import Route, build_routes
from wegent.k8s import protobuf
from wegent.k8s.bodies import DeleteOptions
from wegent.names import NAME_PATTERN, NAMESPACE_PATTERN
from wegent.resources.batch import BatchResult
from wegent.resources.claims import ClaimedList, ClaimRequest, Heartbeat
from wegent.resources.decode import NO_NUL, aliases_of
from wegent.resources.envelope import input_type, list_type, output_type
from wegent.resources.manifests import MAX_MANIFESTS, YAML_MEDIA_TYPES
from wegent.resources.patching import JSON_PATCH
from wegent.resources.registry import KINDS
from wegent.resources.tasks import StatusUpdate, TaskWithStatus

REF = "#/components/schemas/{name}"
JSON_VALUE = "JsonValue"
CREATE_METADATA = "CreateMetadata"

NAMESPACE_IN_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": NAMESPACE_PATTERN,
}
NAME_IN_PATH = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": NAME_PATTERN}


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
    """Complete the document Litestar generated (see the module's docstring)."""
    document["components"]["schemas"].update(body_schemas())
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path" and parameter["name"] == "namespace":
                        parameter["schema"] = dict(NAMESPACE_IN_PATH)
    for route in build_routes():
        item = document["paths"].setdefault(route.path, {})
        item[route.operation.method.lower()] = resource_operation(route)
    _namespace_routes(document)
    return document


def _namespace_routes(document: dict[str, Any]) -> None:
    """The namespace routes' parameters, and the answers of those that encode their own."""
    paths = document["paths"]
    item = "/api/v1/namespaces/{namespace}"
    for path, method, params, answered in (
        ("/api/v1/namespaces", "get", namespaces.LIST_PARAMS, "NamespaceList"),
        ("/api/v1/namespaces", "post", namespaces.CREATE_PARAMS, None),
        (item, "get", namespaces.GET_PARAMS, "NamespaceOut"),
        (item, "delete", namespaces.DELETE_PARAMS, None),
    ):
        operation = paths[path][method]
        given = [q for q in operation.get("parameters", []) if q["in"] != "query"]
        operation["parameters"] = given + [param.openapi() for param in params.params]
        if answered is not None:
            content = {"application/json": {"schema": {"$ref": REF.format(name=answered)}}}
            operation["responses"]["200"] = {"description": "OK", "content": content}


# -- the resource API, from the operation table -------------------------------------------------


def resource_operation(route: Route) -> dict[str, Any]:
    """One operation of the resource API on one kind and path family."""
    operation, info = route.operation, route.kind
    names = {"kind": info.kind, "plural": info.plural} if info else {}
    parameters: list[dict[str, Any]] = []
    if "{namespace}" in route.path:
        parameters.append(_path_parameter("namespace", NAMESPACE_IN_PATH))
    if "{name}" in route.path:
        parameters.append(_path_parameter("name", NAME_IN_PATH))
    parameters += [param.openapi() for param in route.params.params]
    success: dict[str, Any] = {"description": "The request succeeded"}
    if operation.response is not None:
        component = operation.response.format(**names)
        success["content"] = {"application/json": {"schema": {"$ref": REF.format(name=component)}}}
    documented: dict[str, Any] = {
        "tags": [operation.tag or (info.kind if info else "")],
        "summary": operation.summary.format(**names),
        "operationId": route.operation_id,
        "parameters": parameters,
        "responses": {str(operation.status): success, **error_responses(*operation.errors)},
    }
    if operation.body is not None:
        schema = operation.body.schema(info)
        content = {
            media_type: {"schema": _body_schema(schema, media_type)}
            for media_type in sorted(operation.body.media_types)
        }
        documented["requestBody"] = {"required": operation.body.required, "content": content}
    return documented


def _path_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": dict(schema)}


def _body_schema(component: str, media_type: str) -> dict[str, Any]:
    if media_type == JSON_PATCH:
        return {"$ref": REF.format(name="JsonPatch")}
    if media_type == protobuf.CONTENT_TYPE:
        return {"description": f"{component} in Kubernetes protobuf", "format": "binary"}
    if component != "Manifests":
        return {"$ref": REF.format(name=component)}
    manifests = {"type": "array", "maxItems": MAX_MANIFESTS, "items": {"type": "object"}}
    one_of: list[dict[str, Any]] = [manifests, {"type": "object"}]
    described = "An array of manifests, or one manifest (API.md §9)"
    if media_type in YAML_MEDIA_TYPES:  # an empty stream holds no manifest
        one_of.append({"type": "null"})
        described += "; a stream of documents"
    return {"description": described, "oneOf": one_of}


# -- request body schemas ---------------------------------------------------------------------


def body_schemas() -> dict[str, Any]:
    """Every request body's component, from msgspec, corrected and completed; and the answers
    of the resource API (each kind's object and list, a batch's result)."""
    bodies: list[Any] = [
        *BODY_TYPES.values(),
        StatusUpdate,
        TaskWithStatus,
        Heartbeat,
        ClaimRequest,
        DeleteOptions,
    ]
    bodies += [input_type(info.kind) for info in KINDS]
    _, components = msgspec.json.schema_components(bodies, ref_template=REF)
    for schema in components.values():
        # The Struct's docstring, written for developers; its fields' descriptions, written for
        # users, are under "properties" and stay.
        schema.pop("description", None)
        _exact(schema)
    components[JSON_VALUE] = json_value()
    components["JsonPatch"] = json_patch()
    _aliases(components, bodies)
    components.update(_create_schemas(components))
    components["NamespaceCreate"]["anyOf"] = _one_namespace_name()
    answers: list[Any] = [BatchResult, ClaimedList]
    answers += [t for info in KINDS for t in (output_type(info.kind), list_type(info.kind))]
    _, answered = msgspec.json.schema_components(answers, ref_template=REF)
    for name, schema in answered.items():
        schema.pop("description", None)
        components.setdefault(name, schema)  # a spec shared with a body keeps its body form
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


def json_patch() -> dict[str, Any]:
    """An RFC 6902 JSON patch: an array of operations, each with what its ``op`` needs."""
    pointer = {"type": "string", "pattern": r"^(/([^/~\u0000]|~[01])*)*$"}
    value = {"$ref": REF.format(name=JSON_VALUE)}
    cases = [
        (("add", "replace", "test"), {"path": pointer, "value": value}),
        (("remove",), {"path": pointer}),
        (("move", "copy"), {"path": pointer, "from": pointer}),
    ]
    operations = [
        {
            "type": "object",
            "required": ["op", *fields],
            "properties": {"op": {"enum": list(ops)}, **fields},
        }
        for ops, fields in cases
    ]
    return {
        "description": "A JSON patch (RFC 6902)",
        "type": "array",
        "maxItems": 1000,
        "items": {"oneOf": operations},
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
        if "enum" in value:  # an enum names every value allowed: null is one of them too
            node["enum"] = [*value["enum"], None]
    elif set(value) <= {"enum", "description", "deprecated"} and "enum" in value:
        del node["anyOf"]
        node.update({**value, "enum": [*value["enum"], None]})


def _without_nul(pattern: str | None) -> str:
    """``pattern``, made to refuse U+0000. Our patterns are built of positive classes, which do
    not hold it, and negated ones (the email's ``[^@ ...]``), which it is added to."""
    if pattern is None:
        return NO_NUL
    return pattern.replace("[^", "[^\\u0000")


def _aliases(components: dict[str, Any], bodies: list[Any]) -> None:
    """Each input alias (``specs.alias``) as a deprecated property beside its field, and one of
    the two at most (API.md §2). A required field may be given under its alias instead. The
    server also takes both when they are equal, which no JSON Schema can say of any value."""
    for struct in _structs(bodies):
        schema = components.get(struct.__name__)
        if schema is None:
            continue
        required = schema.get("required", [])
        cases = []
        for alias, field in aliases_of(struct).items():
            original = schema["properties"][field]
            given = _nullable(original)  # null: as if absent
            schema["properties"][field] = given
            shown = {
                **copy.deepcopy(given),
                "description": f"Input alias of {field}; answers use {field}.",
                "deprecated": True,
            }
            schema["properties"][alias] = shown
            absent: list[dict[str, Any]] = [
                {"properties": {name: {"type": "null"}}} for name in (field, alias)
            ]
            if field in required:  # given under one name, not null, and the other absent
                required.remove(field)
                absent = [
                    {"required": [one], "properties": {one: original, other: {"type": "null"}}}
                    for one, other in ((field, alias), (alias, field))
                ]
            cases.append({"anyOf": absent})
        if not required:
            schema.pop("required", None)
        if len(cases) == 1:
            schema.update(cases[0])
        elif cases:
            schema["allOf"] = cases


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null, in the flat form of :func:`_flatten_nullable`."""
    if "null" in (schema.get("type") or []) or None in schema.get("enum", [None]):
        return schema
    either = {"anyOf": [schema, {"type": "null"}]}
    _flatten_nullable(either)
    return either


def _structs(roots: list[Any]) -> list[type[msgspec.Struct]]:
    """Every Struct type reachable from ``roots`` through fields, optionals, lists and maps."""
    found: dict[str, type[msgspec.Struct]] = {}
    pending = list(roots)
    while pending:
        type_ = pending.pop()
        if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
            if type_.__name__ not in found:
                found[type_.__name__] = type_
                pending += [f.type for f in msgspec.structs.fields(type_)]
        else:
            pending += list(get_args(type_))
    return list(found.values())


def _one_namespace_name() -> list[dict[str, Any]]:
    """A namespace is named by ``name`` (API.md §11) or by ``metadata.name`` (a ``Namespace``
    manifest, §14): exactly one of the two, null meaning absent."""
    null = {"type": "null"}
    name = {"not": null}  # given (the field's own schema says what it must be)
    return [
        {
            "required": ["name"],
            "properties": {
                "name": name,
                "metadata": {"anyOf": [null, {"properties": {"name": null}}]},
            },
        },
        {
            "required": ["metadata"],
            "properties": {
                "name": null,
                "metadata": {"type": "object", "required": ["name"], "properties": {"name": name}},
            },
        },
    ]


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
    for info in KINDS:
        schema = copy.deepcopy(components[f"{info.kind}Input"])
        schema["title"] = f"{info.kind}Create"
        metadata_field = schema["properties"]["metadata"]  # its description is kept
        metadata_field["$ref"] = REF.format(name=CREATE_METADATA)
        created[schema["title"]] = schema
    return created
