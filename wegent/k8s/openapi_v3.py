"""OpenAPI v3 as Kubernetes clients read it (API.md §14): ``/openapi/v3`` and one document per
group version, each with a content hash in its URL and as its ``ETag``.

The group document is cut from the service's own OpenAPI document (``/schema/openapi.json``,
the same msgspec schemas): the family C paths and every schema they reach. kubectl needs two
extensions on it (docs/notes/kubectl-protocol.md §6, §12): an operation-level
``x-kubernetes-group-version-kind`` *object* on each operation (``kubectl explain`` finds the
kind's schema from its paths; ``kubectl apply`` asks a kind's PATCH operations whether the
server validates fields, from their ``fieldValidation`` parameter), and a *list* of them on the
kind's schema. PATCH lists only the media types the server takes, never strategic merge patch,
so kubectl sends merge patches.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import msgspec

from wegent.k8s.discovery import GROUP, GROUP_VERSION, VERSION
from wegent.resources.registry import KINDS

REF_PREFIX = "#/components/schemas/"
_ACTIONS = {
    ("get", False): "list",
    ("post", False): "post",
    ("get", True): "get",
    ("put", True): "put",
    ("patch", True): "patch",
    ("delete", True): "delete",
}


class Published(msgspec.Struct, frozen=True):
    """A document as served: its bytes and their hash (the ``ETag`` and ``?hash=``)."""

    body: bytes
    hash: str


def publish(document: dict[str, Any]) -> Published:
    body = msgspec.json.encode(document)
    return Published(body, hashlib.sha512(body).hexdigest().upper())


def gvk(kind: str, group: str = GROUP) -> dict[str, str]:
    return {"group": group, "version": VERSION, "kind": kind}


def group_document(document: dict[str, Any]) -> dict[str, Any]:
    """The ``agent.wecode.io/v1`` document, cut from the service's whole ``document``."""
    kinds = {info.plural: info.kind for info in KINDS}
    prefix = f"/apis/{GROUP_VERSION}/"
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        if not path.startswith(prefix):
            continue
        rest = path.removeprefix(prefix).split("/")
        if rest[0] == "namespaces":
            rest = rest[2:]
        kind = kinds[rest[0]]
        item = copy.deepcopy(item)
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["x-kubernetes-group-version-kind"] = gvk(kind)
            action = _ACTIONS.get((method, len(rest) > 1))
            if action is not None:
                operation["x-kubernetes-action"] = action
        paths[path] = item
    schemas = document["components"]["schemas"]
    reached = _reachable(paths, schemas)
    for info in KINDS:
        reached.add(info.kind)
        reached |= _reachable(schemas[info.kind], schemas)
    components = {name: copy.deepcopy(schemas[name]) for name in sorted(reached)}
    for info in KINDS:
        components[info.kind]["x-kubernetes-group-version-kind"] = [gvk(info.kind)]
    as_openapi_30(paths)
    as_openapi_30(components)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Wegent", "version": document["info"]["version"]},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": document["components"].get("securitySchemes", {}),
        },
        "security": document.get("security", []),
    }


def as_openapi_30(node: object) -> None:
    """The 3.1 schemas of the service's document in the 3.0 form Kubernetes clients read:
    ``nullable`` rather than a ``null`` type (kubectl's explain template compares ``type`` with
    a string), ``enum`` rather than ``const``, and a described ``$ref`` as a one-item
    ``allOf`` (as kube-apiserver writes it) so that the field keeps its description."""
    if isinstance(node, list):
        for item in node:
            as_openapi_30(item)
        return
    if not isinstance(node, dict):
        return
    if "$ref" in node and len(node) > 1:  # 3.0 ignores a $ref's siblings: its description
        node["allOf"] = [{"$ref": node.pop("$ref")}]
    types = node.get("type")
    if isinstance(types, list):
        kept = [t for t in types if t != "null"]
        if len(kept) < len(types):
            node["nullable"] = True
        if len(kept) == 1:
            node["type"] = kept[0]
        else:
            del node["type"]  # several types: 3.0 cannot say it with one
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("enum"), list) and None in node["enum"]:
        node["enum"] = [value for value in node["enum"] if value is not None]
        node["nullable"] = True
    branches = node.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        node["nullable"] = True
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest  # what kubectl's explain resolves
        elif len(rest) == 1:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
    for key, value in node.items():
        if key not in ("enum", "example", "default"):
            as_openapi_30(value)


def _reachable(node: object, schemas: dict[str, Any]) -> set[str]:
    """The names of every component schema ``node`` refers to, transitively."""
    found: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                name = ref.removeprefix(REF_PREFIX)
                if name not in found:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
    return found


def core_document(version: str) -> dict[str, Any]:
    """The core ``v1`` document: the ``Namespace`` resource as this server serves it."""
    namespace_gvk = {"group": "", "version": "v1", "kind": "Namespace"}
    ref = {"$ref": f"{REF_PREFIX}io.k8s.api.core.v1.Namespace"}
    content = {"application/json": {"schema": ref}}
    answer: dict[str, Any] = {"description": "OK", "content": content}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

    def operation(action: str, **extra: Any) -> dict[str, Any]:
        return {
            "operationId": f"{action}CoreV1Namespace",
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": namespace_gvk,
            "responses": {"200": answer},
            **extra,
        }

    string = {"type": "string"}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Wegent", "version": version},
        "paths": {
            "/api/v1/namespaces": {
                "get": operation("list"),
                "post": operation(
                    "post",
                    requestBody={
                        "content": {"application/json": answer["content"]["application/json"]}
                    },
                ),
            },
            "/api/v1/namespaces/{name}": {
                "parameters": [name],
                "get": operation("get"),
                "delete": operation("delete"),
            },
        },
        "components": {
            "schemas": {
                "io.k8s.api.core.v1.Namespace": {
                    "description": (
                        "A namespace: where objects live and who may read or write them "
                        "(members with the view, edit or admin role)."
                    ),
                    "type": "object",
                    "properties": {
                        "apiVersion": {"description": "Always v1.", **string},
                        "kind": {"description": "Always Namespace.", **string},
                        "metadata": {
                            "description": "name, uid, resourceVersion, creationTimestamp.",
                            "type": "object",
                        },
                        "spec": {"description": "Empty.", "type": "object"},
                        "status": {
                            "description": "phase: Active.",
                            "type": "object",
                            "properties": {"phase": {"description": "Always Active.", **string}},
                        },
                        "owner": {"description": "The user who owns it, if any.", **string},
                        "personal": {
                            "description": "Whether it is a user's personal namespace.",
                            "type": "boolean",
                        },
                        "role": {"description": "The caller's role in it.", **string},
                    },
                    "x-kubernetes-group-version-kind": [namespace_gvk],
                }
            }
        },
    }


def index(documents: dict[str, Published]) -> bytes:
    """``/openapi/v3``: each group version's document by path, with its hash."""
    return msgspec.json.encode(
        {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={published.hash}"}
                for path, published in documents.items()
            }
        }
    )
