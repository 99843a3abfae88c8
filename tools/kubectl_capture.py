"""Capture what the real ``kubectl`` sends to a Kubernetes API server.

Not part of the package. A tiny HTTPS server (stdlib ``http.server`` + ``ssl``, a self-signed
certificate made with ``cryptography``) that answers like a kube-apiserver serving one custom
resource group, ``agent.wecode.io/v1`` (plus core ``v1`` namespaces and the two review groups),
and logs every request: method, path, query, headers, body as hex and as text, and what it
answered.

Usage::

    # drive every scenario of docs/notes/kubectl-protocol.md, one log per scenario
    python tools/kubectl_capture.py capture --out /tmp/captures [--only NAME ...]

    # serve by hand; prints the kubeconfig path to use with KUBECONFIG=...
    python tools/kubectl_capture.py serve [--port 8443] [--variant NAME ...]

    # print protobuf messages as compiled into the kubectl binary (needs ``protobuf``)
    python tools/kubectl_capture.py descriptors ObjectMeta ResourceAttributes

Each scenario gets a fresh kubectl cache directory (``--cache-dir``), so the whole discovery
sequence is captured every time. Variants change the canned answers (see ``Options``).
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GROUP = "agent.wecode.io"
VERSION = "v1"
GV = f"{GROUP}/{VERSION}"
TOKEN = "capture-token"  # noqa: S105 - a fake token for a local capture server
NAMESPACE = "alice"
CREATED = "2026-01-01T00:00:00Z"

Json = dict[str, Any]
META_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
SSA_UNSUPPORTED = (
    "server-side apply is not supported; use client-side apply (kubectl apply without "
    "--server-side)"
)
PATCH_415 = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


# ---------------------------------------------------------------------------------------------
# TLS


def make_certificate(directory: Path) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1/localhost; returns (cert, key, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubectl-capture")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = directory / "tls.crt"
    key_path = directory / "tls.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, pem


def write_kubeconfig(directory: Path, port: int, ca_pem: bytes) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "capture",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "capture", "user": {"token": TOKEN}}],
        "contexts": [
            {
                "name": "capture",
                "context": {"cluster": "capture", "user": "capture", "namespace": NAMESPACE},
            }
        ],
        "current-context": "capture",
    }
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config, indent=2))
    return path


# ---------------------------------------------------------------------------------------------
# Canned documents


@dataclass
class Options:
    """Knobs for the canned answers (``--variant`` names in brackets)."""

    aggregated: bool = False  # [aggregated] answer aggregated discovery v2 when asked for it
    openapi_v3: bool = True  # [no-openapi-v3] 404 on /openapi/v3
    field_validation_param: bool = True  # [no-fieldvalidation] drop the PATCH parameter
    patch_gvk: bool = True  # [no-patch-gvk] drop operation-level x-kubernetes-group-version-kind
    smp_in_openapi: bool = False  # [smp] list strategic-merge-patch in the PATCH request body
    openapi_v2: bool = False  # [openapi-v2] serve a minimal /openapi/v2 (else 404)
    ghost_exists: bool = False  # [ghost-exists] start with Ghost alice/g1 stored
    namespace_exists: bool = False  # [namespace-exists] start with Namespace x stored
    table: bool = True  # [no-table] ignore the Table Accept and answer plain JSON
    reject_protobuf: bool = False  # [reject-protobuf] 415 on protobuf request bodies
    no_reviews: bool = False  # [no-reviews] 404 on the review endpoints
    soft_delete_visible: bool = False  # [soft-delete-visible] GET still finds a deleted object
    broken_gv: bool = False  # [broken-gv] /apis lists authorization.k8s.io/v1 but it is a 503
    missing_gv: bool = False  # [missing-gv] /apis lists authorization.k8s.io/v1 but it is a 404
    watch_expired: bool = False  # [watch-expired] the watch ends with an ERROR 410 Expired event
    partial_version: bool = False  # [partial-version] /version has only major, minor, gitVersion
    delete_204: bool = False  # [delete-204] DELETE answers 204 with no body
    smp_415: bool = False  # [smp-415] answer strategic merge patch with 415 as kube-apiserver does
    minor: str = "32"  # [minor-NN] /version minor (gcloud's kubectl dispatcher picks by it)

    @classmethod
    def from_variants(cls, variants: list[str]) -> Options:
        o = cls()
        for v in variants:
            match v:
                case "aggregated":
                    o.aggregated = True
                case "no-openapi-v3":
                    o.openapi_v3 = False
                case "no-fieldvalidation":
                    o.field_validation_param = False
                case "no-patch-gvk":
                    o.patch_gvk = False
                case "smp":
                    o.smp_in_openapi = True
                case "openapi-v2":
                    o.openapi_v2 = True
                case "ghost-exists":
                    o.ghost_exists = True
                case "namespace-exists":
                    o.namespace_exists = True
                case "no-table":
                    o.table = False
                case "reject-protobuf":
                    o.reject_protobuf = True
                case "no-reviews":
                    o.no_reviews = True
                case "soft-delete-visible":
                    o.soft_delete_visible = True
                case "broken-gv":
                    o.broken_gv = True
                case "missing-gv":
                    o.missing_gv = True
                case "watch-expired":
                    o.watch_expired = True
                case "smp-415":
                    o.smp_415 = True
                case "delete-204":
                    o.delete_204 = True
                case "partial-version":
                    o.partial_version = True
                case _ if v.startswith("minor-"):
                    o.minor = v.removeprefix("minor-")
                case _:
                    raise SystemExit(f"unknown variant {v!r}")
        return o


VERSION_INFO: Json = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-wegent.0.1.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

API_VERSIONS: Json = {
    "kind": "APIVersions",
    "apiVersion": "v1",
    "versions": ["v1"],
    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:0"}],
}

CORE_V1: Json = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "v1",
    "resources": [
        {
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": False,
            "kind": "Namespace",
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": ["ns"],
            "storageVersionHash": "Q3oi5N2YM8M=",
        },
        {
            "name": "namespaces/status",
            "singularName": "",
            "namespaced": False,
            "kind": "Namespace",
            "verbs": ["get", "patch", "update"],
        },
    ],
}

KINDS: list[tuple[str, str, list[str]]] = [
    ("Ghost", "ghosts", ["gh"]),
    ("Bot", "bots", []),
    ("Task", "tasks", []),
]


def group_resources() -> Json:
    resources: list[Json] = []
    for kind, plural, short in KINDS:
        r: Json = {
            "name": plural,
            "singularName": kind.lower(),
            "namespaced": True,
            "kind": kind,
            "verbs": [
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ],
            "categories": ["wegent"],
            "storageVersionHash": base64.b64encode(
                hashlib.sha256(f"{GV}/{kind}".encode()).digest()[:8]
            ).decode(),
        }
        if short:
            r["shortNames"] = short
        resources.append(r)
        if kind == "Task":
            resources.append(
                {
                    "name": "tasks/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Task",
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GV,
        "resources": resources,
    }


REVIEW_GROUPS: dict[str, Json] = {
    "authentication.k8s.io/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "authentication.k8s.io/v1",
        "resources": [
            {
                "name": "selfsubjectreviews",
                "singularName": "selfsubjectreview",
                "namespaced": False,
                "kind": "SelfSubjectReview",
                "verbs": ["create"],
            }
        ],
    },
    "authorization.k8s.io/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "authorization.k8s.io/v1",
        "resources": [
            {
                "name": "selfsubjectaccessreviews",
                "singularName": "selfsubjectaccessreview",
                "namespaced": False,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            },
            {
                "name": "selfsubjectrulesreviews",
                "singularName": "selfsubjectrulesreview",
                "namespaced": False,
                "kind": "SelfSubjectRulesReview",
                "verbs": ["create"],
            },
        ],
    },
}


def api_group(name: str) -> Json:
    gv = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> Json:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            api_group(GROUP),
            api_group("authentication.k8s.io"),
            api_group("authorization.k8s.io"),
        ],
    }


def aggregated_resource(r: Json, subresources: list[Json]) -> Json:
    out: Json = {
        "resource": r["name"],
        "responseKind": {"group": "", "version": "", "kind": r["kind"]},
        "scope": "Namespaced" if r["namespaced"] else "Cluster",
        "singularResource": r["singularName"],
        "verbs": r["verbs"],
    }
    for key in ("shortNames", "categories"):
        if key in r:
            out[key] = r[key]
    if subresources:
        out["subresources"] = subresources
    return out


def aggregated_list(lists: list[tuple[str, Json]]) -> Json:
    """APIGroupDiscoveryList (apidiscovery.k8s.io/v2) from plain APIResourceLists."""
    items: list[Json] = []
    for group, rl in lists:
        version = rl["groupVersion"].split("/")[-1]
        tops = [r for r in rl["resources"] if "/" not in r["name"]]
        resources = []
        for r in tops:
            subs = [
                {
                    "subresource": s["name"].split("/", 1)[1],
                    "responseKind": {"group": "", "version": "", "kind": s["kind"]},
                    "verbs": s["verbs"],
                }
                for s in rl["resources"]
                if s["name"].startswith(r["name"] + "/")
            ]
            resources.append(aggregated_resource(r, subs))
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def describe(text: str, schema: Json) -> Json:
    return {"description": text, **schema}


OBJECT_META: Json = {
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "type": "object",
    "properties": {
        "name": {"description": "Name must be unique within a namespace.", "type": "string"},
        "generateName": {"description": "Prefix for a server-generated name.", "type": "string"},
        "namespace": {"description": "Namespace of the object.", "type": "string"},
        "labels": {
            "description": "Map of string keys and values.",
            "type": "object",
            "additionalProperties": {"type": "string", "default": ""},
        },
        "annotations": {
            "description": "Unstructured key value map.",
            "type": "object",
            "additionalProperties": {"type": "string", "default": ""},
        },
        "resourceVersion": {"description": "Opaque version.", "type": "string"},
        "uid": {"description": "Unique id.", "type": "string"},
        "generation": {"description": "Spec generation.", "type": "integer", "format": "int64"},
        "creationTimestamp": {
            "description": "Creation time.",
            "type": "string",
            "format": "date-time",
        },
    },
}


def ghost_schema() -> Json:
    return {
        "description": "Ghost is the personality of a bot: its prompt, MCP servers and skills.",
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"description": "APIVersion of this representation.", "type": "string"},
            "kind": {"description": "Kind of this object.", "type": "string"},
            "metadata": {
                "description": "Standard object's metadata.",
                "allOf": [{"$ref": META_REF}],
                "default": {},
            },
            "spec": {
                "description": "GhostSpec: what the ghost is.",
                "type": "object",
                "required": ["systemPrompt"],
                "properties": {
                    "systemPrompt": {"description": "The system prompt.", "type": "string"},
                    "mcpServers": {
                        "description": "MCP servers by name.",
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    },
                    "skills": {
                        "description": "Names of Skills.",
                        "type": "array",
                        "items": {"type": "string", "default": ""},
                    },
                },
            },
            "status": {
                "description": "Observed state.",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            },
        },
        "x-kubernetes-group-version-kind": [{"group": GROUP, "kind": "Ghost", "version": VERSION}],
    }


def query_param(name: str, description: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", "uniqueItems": True},
    }


def openapi_group_doc(o: Options) -> Json:
    ref = {"$ref": "#/components/schemas/io.wecode.agent.v1.Ghost"}
    ok = {"description": "OK", "content": {"application/json": {"schema": ref}}}
    gvk_ext = {"group": GROUP, "version": VERSION, "kind": "Ghost"}
    patch_types = ["application/json-patch+json", "application/merge-patch+json"]
    if o.smp_in_openapi:
        patch_types.append("application/strategic-merge-patch+json")
    patch_types.append("application/apply-patch+yaml")
    patch_params = [
        query_param("dryRun", "dry run"),
        query_param("fieldManager", "field manager"),
        query_param("force", "force apply"),
    ]
    if o.field_validation_param:
        patch_params.append(query_param("fieldValidation", "field validation"))
    patch_op: Json = {
        "tags": ["agentWecodeIo_v1"],
        "description": "partially update the specified Ghost",
        "operationId": "patchAgentWecodeIoV1NamespacedGhost",
        "parameters": patch_params,
        "requestBody": {
            "content": {t: {"schema": {"type": "object"}} for t in patch_types},
            "required": True,
        },
        "responses": {"200": ok},
        "x-kubernetes-action": "patch",
    }
    get_op: Json = {
        "description": "read the specified Ghost",
        "operationId": "readAgentWecodeIoV1NamespacedGhost",
        "responses": {"200": ok},
        "x-kubernetes-action": "get",
        "x-kubernetes-group-version-kind": gvk_ext,
    }
    if o.patch_gvk:
        patch_op["x-kubernetes-group-version-kind"] = gvk_ext
    item_path = f"/apis/{GV}/namespaces/{{namespace}}/ghosts/{{name}}"
    return {
        "openapi": "3.0.0",
        "info": {"title": "Wegent", "version": "0.1.0"},
        "paths": {
            f"/apis/{GV}/namespaces/{{namespace}}/ghosts": {
                "get": {
                    "description": "list or watch objects of kind Ghost",
                    "operationId": "listAgentWecodeIoV1NamespacedGhost",
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "list",
                    "x-kubernetes-group-version-kind": gvk_ext,
                },
                "parameters": [
                    {
                        "name": "namespace",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            },
            item_path: {"get": get_op, "patch": patch_op},
        },
        "components": {
            "schemas": {
                "io.wecode.agent.v1.Ghost": ghost_schema(),
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": OBJECT_META,
            }
        },
    }


def openapi_core_doc() -> Json:
    gvk_ext = {"group": "", "version": "v1", "kind": "Namespace"}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Wegent", "version": "0.1.0"},
        "paths": {
            "/api/v1/namespaces/{name}": {
                "patch": {
                    "operationId": "patchCoreV1Namespace",
                    "parameters": [query_param("fieldValidation", "field validation")],
                    "requestBody": {
                        "content": {
                            "application/merge-patch+json": {"schema": {"type": "object"}},
                            "application/json-patch+json": {"schema": {"type": "object"}},
                            "application/strategic-merge-patch+json": {
                                "schema": {"type": "object"}
                            },
                        }
                    },
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk_ext,
                }
            }
        },
        "components": {
            "schemas": {
                "io.k8s.api.core.v1.Namespace": {
                    "description": "Namespace provides a scope for Names.",
                    "type": "object",
                    "properties": {"metadata": {"allOf": [{"$ref": META_REF}]}},
                    "x-kubernetes-group-version-kind": [gvk_ext],
                },
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": OBJECT_META,
            }
        },
    }


def content_hash(doc: Json) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()[:128]


# ---------------------------------------------------------------------------------------------
# State and object helpers


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: list[bytes] | None = None  # chunked body parts (watch)


def json_response(status: int, doc: Json) -> Response:
    return Response(status, json.dumps(doc).encode())


def status_response(code: int, reason: str, message: str) -> Response:
    return json_response(
        code,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def json_patch(doc: Any, ops: list[Json]) -> Any:
    """A small RFC 6902 subset (add, replace, remove, test) for the capture only."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                else:
                    parent.insert(int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op["op"] == "test" and parent.get(last) != op["value"]:
            raise ValueError("test failed")
    return doc


class State:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.rv = 100
        self.lock = threading.Lock()
        self.ghosts: dict[tuple[str, str], Json] = {}
        self.namespaces: dict[str, Json] = {}
        for n in ("alice", "default"):
            self.namespaces[n] = self.namespace(n)
        if options.ghost_exists:
            self.ghosts[(NAMESPACE, "g1")] = self.ghost(
                NAMESPACE,
                "g1",
                {"systemPrompt": "old prompt"},
                annotations={
                    "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                        {
                            "apiVersion": GV,
                            "kind": "Ghost",
                            "metadata": {"name": "g1", "namespace": NAMESPACE},
                            "spec": {"systemPrompt": "old prompt"},
                        },
                        separators=(",", ":"),
                    )
                    + "\n"
                },
            )
        if options.namespace_exists:
            self.namespaces["x"] = self.namespace("x")

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> Json:
        meta: Json = {
            "name": name,
            "uid": f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}",
            "resourceVersion": self.next_rv(),
            "creationTimestamp": CREATED,
            "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
        }
        return {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def ghost(
        self,
        namespace: str,
        name: str,
        spec: Json,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Json:
        meta: Json = {
            "name": name,
            "namespace": namespace,
            "uid": f"11111111-0000-0000-0000-{abs(hash(name)) % 10**12:012d}",
            "resourceVersion": self.next_rv(),
            "generation": 1,
            "creationTimestamp": CREATED,
        }
        if labels:
            meta["labels"] = labels
        if annotations:
            meta["annotations"] = annotations
        return {
            "apiVersion": GV,
            "kind": "Ghost",
            "metadata": meta,
            "spec": spec,
            "status": {"state": "Available"},
        }


def partial_metadata(obj: Json) -> Json:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def age(ts: str) -> str:
    """kube-apiserver's duration.HumanDuration of now - ts for a 'date' column (coarse)."""
    then = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    seconds = int((dt.datetime.now(dt.UTC) - then).total_seconds())
    days = seconds // 86400
    if days >= 365 * 2:
        return f"{days // 365}y"
    return f"{days}d" if days else f"{seconds}s"


def table(objects: list[Json], rv: str, kind: str, include_object: str) -> Json:
    if kind == "Namespace":
        columns = [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": "Name must be unique.",
                "priority": 0,
            },
            {
                "name": "Status",
                "type": "string",
                "format": "",
                "description": "The status of the namespace",
                "priority": 0,
            },
            {
                "name": "Age",
                "type": "string",
                "format": "",
                "description": "CreationTimestamp...",
                "priority": 0,
            },
        ]
    else:
        columns = [
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": "Name must be unique.",
                "priority": 0,
            },
            {
                "name": "Prompt",
                "type": "string",
                "format": "",
                "description": "spec.systemPrompt",
                "priority": 0,
            },
            {
                "name": "Age",
                "type": "date",
                "format": "",
                "description": "CreationTimestamp...",
                "priority": 0,
            },
        ]
    rows = []
    for obj in objects:
        if kind == "Namespace":
            cells: list[Any] = [obj["metadata"]["name"], obj["status"]["phase"], age(CREATED)]
        else:
            cells = [obj["metadata"]["name"], obj["spec"].get("systemPrompt"), age(CREATED)]
        row: Json = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns,
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------
# Routing


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def q(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def wants_table(self) -> bool:
        return "as=Table" in self.headers.get("accept", "")

    def wants_aggregated(self) -> bool:
        return "as=APIGroupDiscoveryList" in self.headers.get("accept", "")


def route(state: State, req: Request) -> Response:
    o = state.options
    p = req.path.rstrip("/") or "/"
    parts = p.strip("/").split("/")
    if req.headers.get("authorization") != f"Bearer {TOKEN}" and p != "/version":
        return status_response(401, "Unauthorized", "Unauthorized")
    if p == "/version":
        info = {**VERSION_INFO, "minor": o.minor}
        if o.partial_version:
            info = {k: info[k] for k in ("major", "minor", "gitVersion")}
        return json_response(200, info)
    if p == "/api":
        if o.aggregated and req.wants_aggregated():
            r = json_response(200, aggregated_list([("", CORE_V1)]))
            r.content_type = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            return r
        return json_response(200, API_VERSIONS)
    if p == "/api/v1":
        return json_response(200, CORE_V1)
    if p == "/apis":
        if o.aggregated and req.wants_aggregated():
            lists = [(GROUP, group_resources())] + [
                (gv.split("/")[0], rl) for gv, rl in REVIEW_GROUPS.items()
            ]
            r = json_response(200, aggregated_list(lists))
            r.content_type = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            return r
        return json_response(200, api_group_list())
    if (
        len(parts) == 2
        and parts[0] == "apis"
        and parts[1] in (GROUP, "authentication.k8s.io", "authorization.k8s.io")
    ):
        return json_response(200, {"kind": "APIGroup", "apiVersion": "v1", **api_group(parts[1])})
    if o.broken_gv and p == "/apis/authorization.k8s.io/v1":
        return status_response(
            503, "ServiceUnavailable", "the server is currently unable to handle the request"
        )
    if o.missing_gv and p == "/apis/authorization.k8s.io/v1":
        return status_response(404, "NotFound", "the server could not find the requested resource")
    if p == f"/apis/{GV}":
        return json_response(200, group_resources())
    if p.removeprefix("/apis/") in REVIEW_GROUPS:
        return json_response(200, REVIEW_GROUPS[p.removeprefix("/apis/")])
    if p == "/openapi/v2":
        if not o.openapi_v2:
            return status_response(
                404, "NotFound", "the server could not find the requested resource"
            )
        return json_response(
            200,
            {
                "swagger": "2.0",
                "info": {"title": "Wegent", "version": "0.1.0"},
                "paths": {},
                "definitions": {},
            },
        )
    if p == "/openapi/v3":
        if not o.openapi_v3:
            return status_response(
                404, "NotFound", "the server could not find the requested resource"
            )
        group_hash = content_hash(openapi_group_doc(o))
        core_hash = content_hash(openapi_core_doc())
        return json_response(
            200,
            {
                "paths": {
                    f"apis/{GV}": {"serverRelativeURL": f"/openapi/v3/apis/{GV}?hash={group_hash}"},
                    "api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={core_hash}"},
                }
            },
        )
    if p == f"/openapi/v3/apis/{GV}":
        doc = openapi_group_doc(o)
        if req.headers.get("if-none-match") == f'"{content_hash(doc)}"':
            return Response(304, headers=[("ETag", f'"{content_hash(doc)}"')])
        r = json_response(200, doc)
        r.headers.append(("ETag", f'"{content_hash(doc)}"'))
        r.headers.append(("Cache-Control", "public, immutable"))
        return r
    if p == "/openapi/v3/api/v1":
        doc = openapi_core_doc()
        r = json_response(200, doc)
        r.headers.append(("ETag", f'"{content_hash(doc)}"'))
        return r
    if o.reject_protobuf and "protobuf" in req.headers.get("content-type", ""):
        return status_response(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
        )
    if o.no_reviews and "review" in p:
        return status_response(404, "NotFound", "the server could not find the requested resource")
    if p == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews" and req.method == "POST":
        return json_response(
            201,
            {
                "kind": "SelfSubjectRulesReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {},
                "status": {
                    "resourceRules": [
                        {
                            "verbs": [
                                "get",
                                "list",
                                "watch",
                                "create",
                                "update",
                                "patch",
                                "delete",
                            ],
                            "apiGroups": [GROUP],
                            "resources": ["*"],
                        },
                        {
                            "verbs": ["create"],
                            "apiGroups": ["authorization.k8s.io"],
                            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                        },
                    ],
                    "nonResourceRules": [
                        {"verbs": ["get"], "nonResourceURLs": ["/version", "/healthz"]}
                    ],
                    "incomplete": False,
                },
            },
        )
    if p == "/apis/authentication.k8s.io/v1/selfsubjectreviews" and req.method == "POST":
        return json_response(
            201,
            {
                "kind": "SelfSubjectReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "status": {
                    "userInfo": {
                        "username": "alice",
                        "uid": "42",
                        "groups": ["system:authenticated", "wegent:user"],
                        "extra": {"wegent.io/role": ["user"]},
                    }
                },
            },
        )
    if p == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and req.method == "POST":
        return json_response(
            201,
            {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {},
                "status": {"allowed": True, "reason": "namespace member with role edit"},
            },
        )
    # core namespaces
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return namespaces(state, req, parts[3] if len(parts) == 4 else None)
    # the custom group: /apis/GV/[namespaces/NS/]ghosts[/name]
    if parts[:3] == ["apis", GROUP, VERSION]:
        rest = parts[3:]
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if rest and rest[0] == "ghosts" and len(rest) <= 2:
            return ghosts(state, req, ns, rest[1] if len(rest) == 2 else None)
        if len(rest) == 1 and rest[0] in ("bots", "tasks") and req.method == "GET":
            kind = "Bot" if rest[0] == "bots" else "Task"
            if req.wants_table() and o.table:
                return json_response(200, table([], str(state.rv), kind, req.q("includeObject")))
            return json_response(
                200,
                {
                    "apiVersion": GV,
                    "kind": f"{kind}List",
                    "metadata": {"resourceVersion": str(state.rv)},
                    "items": [],
                },
            )
    return status_response(404, "NotFound", "the server could not find the requested resource")


def watch_response(state: State, req: Request, objects: list[Json], kind: str) -> Response:
    """A MODIFIED and then a DELETED event for each object, then the stream ends.

    As kube-apiserver does (handlers/response.go, watchEmbeddedEncoder), with a Table Accept only
    the first event's Table carries columnDefinitions.
    """
    events = []
    first = True
    for obj in objects:
        for event_type in ("MODIFIED", "DELETED"):
            changed = copy.deepcopy(obj)
            changed["metadata"]["resourceVersion"] = state.next_rv()
            payload: Json = changed
            if req.wants_table() and state.options.table:
                rv = changed["metadata"]["resourceVersion"]
                payload = table([changed], rv, kind, req.q("includeObject"))
                if not first:
                    del payload["columnDefinitions"]
            first = False
            events.append(json.dumps({"type": event_type, "object": payload}).encode() + b"\n")
    if state.options.watch_expired:
        expired = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "too old resource version: 1 (100)",
            "reason": "Expired",
            "code": 410,
        }
        events.append(json.dumps({"type": "ERROR", "object": expired}).encode() + b"\n")
    r = Response(200, stream=events)
    return r


def namespaces(state: State, req: Request, name: str | None) -> Response:
    with state.lock:
        if name is None and req.method == "GET":
            items = sorted(state.namespaces.values(), key=lambda n: n["metadata"]["name"])
            if req.q("watch") in ("true", "1"):
                return watch_response(state, req, items[:1], "Namespace")
            rv = str(state.rv)
            if req.wants_table() and state.options.table:
                return json_response(200, table(items, rv, "Namespace", req.q("includeObject")))
            return json_response(
                200,
                {
                    "kind": "NamespaceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                },
            )
        if name is None and req.method == "POST":
            # the body is protobuf from kubectl; we do not need to decode it to answer
            new_name = "x"
            try:
                from wegent.k8s.protobuf import decode

                obj = decode(req.body)
                new_name = obj["metadata"].get("name", new_name)
            except Exception:  # noqa: S110 - capture-only best effort
                pass
            if new_name in state.namespaces:
                return status_response(
                    409, "AlreadyExists", f'namespaces "{new_name}" already exists'
                )
            state.namespaces[new_name] = state.namespace(new_name)
            return json_response(201, state.namespaces[new_name])
        if name is not None:
            ns = state.namespaces.get(name)
            if ns is None:
                return status_response(404, "NotFound", f'namespaces "{name}" not found')
            if req.method == "GET":
                if req.wants_table() and state.options.table:
                    return json_response(
                        200, table([ns], str(state.rv), "Namespace", req.q("includeObject"))
                    )
                return json_response(200, ns)
            if req.method == "DELETE":
                gone = copy.deepcopy(state.namespaces.pop(name))
                gone["metadata"]["deletionTimestamp"] = CREATED
                gone["status"]["phase"] = "Terminating"
                return json_response(200, gone)
    return status_response(405, "MethodNotAllowed", "method not allowed")


def ghosts(state: State, req: Request, ns: str | None, name: str | None) -> Response:
    with state.lock:
        if name is None:
            if req.method == "GET":
                items = [
                    g for (gns, _), g in sorted(state.ghosts.items()) if ns is None or gns == ns
                ]
                if req.q("watch") in ("true", "1"):
                    return watch_response(state, req, items[:1], "Ghost")
                rv = str(state.rv)
                if req.wants_table() and state.options.table:
                    return json_response(200, table(items, rv, "Ghost", req.q("includeObject")))
                return json_response(
                    200,
                    {
                        "apiVersion": GV,
                        "kind": "GhostList",
                        "metadata": {"resourceVersion": rv},
                        "items": items,
                    },
                )
            if req.method == "POST" and ns is not None:
                body = json.loads(req.body)
                meta = body.get("metadata", {})
                n = meta.get("name") or meta.get("generateName", "g-") + "abcde"
                if (ns, n) in state.ghosts:
                    return status_response(
                        409, "AlreadyExists", f'ghosts.{GROUP} "{n}" already exists'
                    )
                g = state.ghost(
                    ns, n, body.get("spec", {}), meta.get("labels"), meta.get("annotations")
                )
                state.ghosts[(ns, n)] = g
                return json_response(201, g)
            return status_response(405, "MethodNotAllowed", "method not allowed")
        if ns is None:
            return status_response(404, "NotFound", "not found")
        if req.method == "PATCH" and req.headers.get("content-type", "").startswith(
            "application/apply-patch+yaml"
        ):
            return status_response(
                415,
                "UnsupportedMediaType",
                SSA_UNSUPPORTED,
            )
        found = state.ghosts.get((ns, name))
        if found is None:
            return status_response(404, "NotFound", f'ghosts.{GROUP} "{name}" not found')
        g = found
        if req.method == "GET":
            if req.wants_table() and state.options.table:
                return json_response(
                    200, table([g], str(state.rv), "Ghost", req.q("includeObject"))
                )
            return json_response(200, g)
        if req.method == "PATCH":
            ctype = req.headers.get("content-type", "")
            patch = json.loads(req.body)
            if ctype.startswith("application/json-patch+json"):
                new = json_patch(g, patch)
            elif (
                ctype.startswith("application/strategic-merge-patch+json") and state.options.smp_415
            ):
                return status_response(
                    415,
                    "UnsupportedMediaType",
                    PATCH_415,
                )
            elif ctype.startswith(
                ("application/merge-patch+json", "application/strategic-merge-patch+json")
            ):
                new = merge_patch(g, patch)
            else:
                return status_response(
                    415,
                    "UnsupportedMediaType",
                    PATCH_415,
                )
            new["metadata"]["resourceVersion"] = state.next_rv()
            state.ghosts[(ns, name)] = new
            return json_response(200, new)
        if req.method == "PUT":
            new = json.loads(req.body)
            new["metadata"]["resourceVersion"] = state.next_rv()
            state.ghosts[(ns, name)] = new
            return json_response(200, new)
        if req.method == "DELETE":
            if state.options.soft_delete_visible:
                g["metadata"]["deletionTimestamp"] = CREATED
                g["metadata"]["resourceVersion"] = state.next_rv()
                return json_response(200, g)
            gone = state.ghosts.pop((ns, name))
            if state.options.delete_204:
                return Response(204)
            return json_response(200, gone)
    return status_response(405, "MethodNotAllowed", "method not allowed")


# ---------------------------------------------------------------------------------------------
# HTTP server


class CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: State, log: Callable[[Json], None]) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state
        self.log = log
        self.seq = 0
        self.seq_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CaptureServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_any(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self.read_chunked()
        req = Request(
            method=self.command,
            path=url.path,
            query=urllib.parse.parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = route(self.server.state, req)
        except Exception as exc:
            resp = status_response(500, "InternalError", f"capture server error: {exc!r}")
        with self.server.seq_lock:
            self.server.seq += 1
            seq = self.server.seq
        self.server.log(
            {
                "seq": seq,
                "method": self.command,
                "path": url.path,
                "rawQuery": url.query,
                "query": req.query,
                "headers": list(self.headers.items()),
                "bodyHex": body.hex(),
                "bodyText": body.decode("utf-8", "backslashreplace"),
                "responseStatus": resp.status,
                "responseContentType": resp.content_type,
                "responseBody": (
                    resp.body.decode() if resp.stream is None else b"".join(resp.stream).decode()
                ),
            }
        )
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers:
            self.send_header(k, v)
        if resp.stream is None:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in resp.stream:
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.flush()
            time.sleep(0.2)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def start_server(
    directory: Path, options: Options, log: Callable[[Json], None], port: int = 0
) -> tuple[CaptureServer, Path]:
    cert, key, pem = make_certificate(directory)
    server = CaptureServer(port, State(options), log)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, write_kubeconfig(directory, server.server_address[1], pem)


# ---------------------------------------------------------------------------------------------
# Scenarios

GHOST_YAML = f"""apiVersion: {GV}
kind: Ghost
metadata:
  name: g1
  namespace: {NAMESPACE}
  labels:
    team: core
spec:
  systemPrompt: new prompt
  skills: [a, b]
"""


@dataclass
class Scenario:
    name: str
    args: list[str]
    variants: list[str] = field(default_factory=list)
    stdin: str | None = None
    timeout: float = 20.0
    # earlier commands run against the same server first, their requests logged too
    before: list[list[str]] = field(default_factory=list)
    kubectl: str | None = None  # another binary (e.g. /usr/bin/kubectl, gcloud's dispatcher)
    env: dict[str, str] = field(default_factory=dict)


SCENARIOS: list[Scenario] = [
    Scenario("version", ["version"]),
    Scenario("version-json", ["version", "-o", "json"]),
    Scenario("version-partial", ["version", "-o", "json"], ["partial-version"]),
    Scenario("get-ghosts-partial-version", ["get", "ghosts"], ["ghost-exists", "partial-version"]),
    Scenario("api-resources", ["api-resources"]),
    Scenario("api-resources-aggregated", ["api-resources"], ["aggregated"]),
    Scenario("get-ghosts", ["get", "ghosts"], ["ghost-exists"]),
    Scenario("get-ghosts-aggregated", ["get", "ghosts"], ["ghost-exists", "aggregated"]),
    Scenario("get-ghost-by-name", ["get", "ghost", "g1"], ["ghost-exists"]),
    Scenario("get-ghosts-yaml", ["get", "ghosts", "-o", "yaml"], ["ghost-exists"]),
    Scenario("get-ghosts-all-namespaces", ["get", "ghosts", "-A"], ["ghost-exists"]),
    Scenario("get-ghosts-watch", ["get", "ghosts", "-w"], ["ghost-exists"]),
    Scenario("get-ghosts-watch-no-table", ["get", "ghosts", "-w"], ["ghost-exists", "no-table"]),
    Scenario("get-wegent-category", ["get", "wegent"], ["ghost-exists"]),
    Scenario("get-bots-empty", ["get", "bots"]),
    Scenario("apply-create", ["apply", "-f", "-"], stdin=GHOST_YAML),
    Scenario("apply-again", ["apply", "-f", "-"], stdin=GHOST_YAML, before=[["apply", "-f", "-"]]),
    Scenario("apply-existing", ["apply", "-f", "-"], ["ghost-exists"], stdin=GHOST_YAML),
    Scenario("apply-existing-smp", ["apply", "-f", "-"], ["ghost-exists", "smp"], stdin=GHOST_YAML),
    Scenario(
        "apply-existing-no-fieldvalidation",
        ["apply", "-f", "-"],
        ["ghost-exists", "no-fieldvalidation"],
        stdin=GHOST_YAML,
    ),
    Scenario(
        "apply-existing-no-openapi-v3",
        ["apply", "-f", "-"],
        ["ghost-exists", "no-openapi-v3"],
        stdin=GHOST_YAML,
    ),
    Scenario(
        "apply-existing-no-openapi",
        ["apply", "-f", "-"],
        ["ghost-exists", "no-openapi-v3", "openapi-v2"],
        stdin=GHOST_YAML,
    ),
    Scenario(
        "apply-existing-validate-false",
        ["apply", "--validate=false", "-f", "-"],
        ["ghost-exists"],
        stdin=GHOST_YAML,
    ),
    Scenario("apply-server-side", ["apply", "--server-side", "-f", "-"], stdin=GHOST_YAML),
    Scenario("create-f", ["create", "-f", "-"], stdin=GHOST_YAML),
    Scenario("replace-f", ["replace", "-f", "-"], ["ghost-exists"], stdin=GHOST_YAML),
    Scenario(
        "patch-merge",
        ["patch", "ghost", "g1", "--type=merge", "-p", '{"spec":{"systemPrompt":"p2"}}'],
        ["ghost-exists"],
    ),
    Scenario(
        "patch-json",
        [
            "patch",
            "ghost",
            "g1",
            "--type=json",
            "-p",
            '[{"op":"replace","path":"/spec/systemPrompt","value":"p3"}]',
        ],
        ["ghost-exists"],
    ),
    Scenario(
        "patch-default-type",
        ["patch", "ghost", "g1", "-p", '{"spec":{"systemPrompt":"p4"}}'],
        ["ghost-exists"],
    ),
    Scenario("label", ["label", "ghost", "g1", "team=core"], ["ghost-exists"]),
    Scenario("label-overwrite-remove", ["label", "ghost", "g1", "team-"], ["ghost-exists"]),
    Scenario("annotate", ["annotate", "ghost", "g1", "note=hi"], ["ghost-exists"]),
    Scenario(
        "label-remove-present",
        ["label", "ghost", "g1", "team-"],
        ["ghost-exists"],
        before=[["label", "ghost", "g1", "team=core"]],
    ),
    Scenario("delete-204", ["delete", "ghost", "g1"], ["ghost-exists", "delete-204"]),
    Scenario(
        "delete-cascade-grace",
        ["delete", "ghost", "g1", "--cascade=orphan", "--grace-period=5"],
        ["ghost-exists"],
    ),
    Scenario("delete", ["delete", "ghost", "g1"], ["ghost-exists"]),
    Scenario("delete-wait-false", ["delete", "ghost", "g1", "--wait=false"], ["ghost-exists"]),
    Scenario("delete-dry-run", ["delete", "ghost", "g1", "--dry-run=server"], ["ghost-exists"]),
    Scenario("delete-f", ["delete", "-f", "-"], ["ghost-exists"], stdin=GHOST_YAML),
    Scenario("explain-ghost", ["explain", "ghost"]),
    Scenario("explain-ghost-spec", ["explain", "ghost.spec"]),
    Scenario(
        "explain-ghost-spec-v3-env",
        ["explain", "ghost.spec"],
        env={"KUBECTL_EXPLAIN_OPENAPIV3": "true"},
    ),
    Scenario("create-namespace", ["create", "namespace", "x"]),
    Scenario("get-namespaces", ["get", "namespaces"]),
    Scenario("delete-namespace", ["delete", "namespace", "x"], ["namespace-exists"]),
    Scenario("auth-whoami", ["auth", "whoami"]),
    Scenario("auth-whoami-json", ["auth", "whoami", "-o", "json"]),
    Scenario("auth-can-i", ["auth", "can-i", "create", "ghosts", "-n", "foo"]),
    Scenario(
        "auth-can-i-subresource", ["auth", "can-i", "update", "tasks", "--subresource=status"]
    ),
    Scenario("auth-can-i-nonresource", ["auth", "can-i", "get", "/healthz"]),
    Scenario("auth-can-i-name", ["auth", "can-i", "delete", "ghosts/g1", "-n", "foo"]),
    Scenario("auth-can-i-list", ["auth", "can-i", "--list", "-n", "foo"]),
    Scenario("auth-whoami-no-reviews", ["auth", "whoami"], ["no-reviews"]),
    Scenario("auth-can-i-no-reviews", ["auth", "can-i", "create", "ghosts"], ["no-reviews"]),
    Scenario("create-namespace-save-config", ["create", "namespace", "x", "--save-config"]),
    Scenario("create-namespace-dry-run", ["create", "namespace", "x", "--dry-run=server"]),
    Scenario("create-namespace-reject-protobuf", ["create", "namespace", "x"], ["reject-protobuf"]),
    Scenario(
        "delete-soft-visible",
        ["delete", "ghost", "g1", "--timeout=5s"],
        ["ghost-exists", "soft-delete-visible"],
    ),
    Scenario(
        "apply-existing-no-patch-gvk",
        ["apply", "-f", "-"],
        ["ghost-exists", "no-patch-gvk"],
        stdin=GHOST_YAML,
    ),
    Scenario(
        "apply-server-side-existing",
        ["apply", "--server-side", "-f", "-"],
        ["ghost-exists"],
        stdin=GHOST_YAML,
    ),
    Scenario(
        "patch-default-type-smp-rejected",
        ["patch", "ghost", "g1", "-p", '{"spec":{"systemPrompt":"p4"}}'],
        ["ghost-exists", "smp-415"],
    ),
    Scenario(
        "get-ghosts-watch-expired", ["get", "ghosts", "-w"], ["ghost-exists", "watch-expired"]
    ),
    Scenario("get-ghosts-broken-gv", ["get", "ghosts"], ["ghost-exists", "broken-gv"]),
    Scenario("api-resources-broken-gv", ["api-resources"], ["broken-gv"]),
    Scenario("get-ghosts-missing-gv", ["get", "ghosts"], ["ghost-exists", "missing-gv"]),
    Scenario("api-resources-missing-gv", ["api-resources"], ["missing-gv"]),
    Scenario("get-ghosts-wide", ["get", "ghosts", "-o", "wide"], ["ghost-exists"]),
    Scenario("get-ghost-yaml", ["get", "ghost", "g1", "-o", "yaml"], ["ghost-exists"]),
    Scenario("diff", ["diff", "-f", "-"], ["ghost-exists"], stdin=GHOST_YAML),
    Scenario("dispatcher-minor-32", ["version"], kubectl="/usr/bin/kubectl"),
    Scenario("dispatcher-minor-33", ["version"], ["minor-33"], kubectl="/usr/bin/kubectl"),
    Scenario("dispatcher-minor-40", ["version"], ["minor-40"], kubectl="/usr/bin/kubectl"),
    Scenario("dispatcher-minor-plus", ["version"], ["minor-32+"], kubectl="/usr/bin/kubectl"),
]


def run_scenario(sc: Scenario, out: Path, kubectl: str) -> None:
    records: list[Json] = []
    lock = threading.Lock()

    def log(rec: Json) -> None:
        with lock:
            records.append(rec)

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        server, kubeconfig = start_server(d, Options.from_variants(sc.variants), log)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(d), **sc.env}
        cache = ["--cache-dir", str(d / "cache")]
        results = []
        for args in [*sc.before, sc.args]:
            stdin = sc.stdin
            cmd = [sc.kubectl or kubectl, *cache, *args]
            with lock:
                records.append({"marker": "command", "args": args})
            try:
                proc = subprocess.run(  # noqa: S603 - fixed argv
                    cmd,
                    input=stdin,
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=sc.timeout,
                    check=False,
                )
                results.append(
                    {
                        "args": args,
                        "rc": proc.returncode,
                        "stdout": proc.stdout,
                        "stderr": proc.stderr,
                    }
                )
            except subprocess.TimeoutExpired as exc:
                results.append(
                    {
                        "args": args,
                        "rc": "timeout",
                        "stdout": str(exc.stdout or ""),
                        "stderr": str(exc.stderr or ""),
                    }
                )
        server.shutdown()
        server.server_close()
    doc = {
        "scenario": sc.name,
        "variants": sc.variants,
        "stdin": sc.stdin,
        "results": results,
        "requests": records,
    }
    (out / f"{sc.name}.json").write_text(json.dumps(doc, indent=2))
    (out / f"{sc.name}.txt").write_text(render(doc))


def render(doc: Json) -> str:
    """A readable transcript of one scenario."""
    lines = [f"# {doc['scenario']}  variants={doc['variants']}"]
    for rec in doc["requests"]:
        if rec.get("marker") == "command":
            lines.append(f"\n$ kubectl {' '.join(rec['args'])}")
            continue
        q = f"?{rec['rawQuery']}" if rec["rawQuery"] else ""
        lines.append(
            f"\n[{rec['seq']}] {rec['method']} {rec['path']}{q}  -> {rec['responseStatus']}"
        )
        for k, v in rec["headers"]:
            if k.lower() in ("authorization",):
                v = "Bearer <token>"
            lines.append(f"    {k}: {v}")
        if rec["bodyHex"]:
            ctype = dict((k.lower(), v) for k, v in rec["headers"]).get("content-type", "")
            if "protobuf" in ctype:
                lines.append(f"    body (hex): {rec['bodyHex']}")
                lines.append(f"    body (text): {rec['bodyText']!r}")
            else:
                lines.append(f"    body: {rec['bodyText']}")
    for r in doc["results"]:
        lines.append(f"\n== kubectl {' '.join(r['args'])} -> rc={r['rc']}")
        if r["stdout"]:
            lines.append("-- stdout:\n" + r["stdout"].rstrip())
        if r["stderr"]:
            lines.append("-- stderr:\n" + r["stderr"].rstrip())
    return "\n".join(lines) + "\n"


def dump_descriptors(binary: Path, messages: list[str]) -> None:
    """Print fields of Kubernetes protobuf messages as compiled into a kubectl binary.

    gogo-protobuf registers every generated.proto as a gzipped FileDescriptorProto, so the binary
    itself says which field numbers that kubectl writes. Needs the ``protobuf`` package.
    """
    import zlib

    from google.protobuf import descriptor_pb2

    data = binary.read_bytes()
    magic = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    kinds = {
        v: k.removeprefix("TYPE_").lower()
        for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()
    }
    labels = {
        v: k.removeprefix("LABEL_").lower()
        for k, v in descriptor_pb2.FieldDescriptorProto.Label.items()
    }
    start = data.find(magic)
    while start != -1:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                data[start : start + 4_000_000]
            )
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:
            start = data.find(magic, start + 1)
            continue
        if fd.name.endswith("generated.proto"):
            for m in fd.message_type:
                if not messages or m.name in messages or f"{fd.package}.{m.name}" in messages:
                    print(f"{fd.name}  message {fd.package}.{m.name}")
                    for f in m.field:
                        type_name = f.type_name or kinds[f.type]
                        print(f"    {labels[f.label]} {type_name} {f.name} = {f.number}")
        start = data.find(magic, start + 1)


def default_kubectl() -> str:
    """The real 1.32 binary: /usr/bin/kubectl here is gcloud's dispatcher, which first sends its
    own ``GET /version?timeout=5s`` and then runs kubectl.1.MINOR for the server's minor."""
    real = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
    return str(real) if real.exists() else (shutil.which("kubectl") or "kubectl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    cap = sub.add_parser("capture", help="run the scenarios")
    cap.add_argument("--out", type=Path, required=True)
    cap.add_argument("--only", nargs="*", default=None)
    cap.add_argument("--kubectl", default=default_kubectl())
    desc = sub.add_parser("descriptors", help="print protobuf fields compiled into kubectl")
    desc.add_argument("--kubectl", type=Path, default=Path(default_kubectl()))
    desc.add_argument("messages", nargs="*", help="message names (all when none)")
    srv = sub.add_parser("serve", help="serve until interrupted, logging to stdout")
    srv.add_argument("--port", type=int, default=0)
    srv.add_argument("--variant", nargs="*", default=[])
    args = parser.parse_args(argv)
    if args.cmd == "capture":
        args.out.mkdir(parents=True, exist_ok=True)
        for sc in SCENARIOS:
            if args.only and sc.name not in args.only:
                continue
            run_scenario(sc, args.out, args.kubectl)
            print(f"captured {sc.name}", file=sys.stderr)
        return 0
    if args.cmd == "descriptors":
        dump_descriptors(args.kubectl, args.messages)
        return 0
    directory = Path(tempfile.mkdtemp(prefix="kubectl-capture-"))
    server, kubeconfig = start_server(
        directory,
        Options.from_variants(args.variant),
        lambda rec: print(json.dumps(rec), flush=True),
        args.port,
    )
    print(
        f"serving on https://127.0.0.1:{server.server_address[1]}; KUBECONFIG={kubeconfig}",
        file=sys.stderr,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
