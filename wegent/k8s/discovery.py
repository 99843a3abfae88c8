"""Kubernetes discovery and ``/version`` (API.md §14), built from the kind registry and the
operation table, so a kind or a verb added there is discovered with no change here.

kubectl reads ``/api`` and ``/apis``, then the ``APIResourceList`` of every group version
listed (one missing makes ``kubectl api-resources`` fail, docs/notes/kubectl-protocol.md §2).
Aggregated discovery is not served: whatever the ``Accept``, the plain documents are answered
as ``application/json``, which is how clients tell them apart.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from typing import Any

import msgspec

from wegent import __version__
from wegent.resources.registry import KINDS

GROUP = "agent.wecode.io"
VERSION = "v1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "wegent"
#: The Kubernetes minor version reported. kubectl warns beyond one minor of skew, and on these
#: machines gcloud's kubectl dispatcher picks the binary by it (kubectl-protocol.md §13).
KUBERNETES_MINOR = "32"
#: The order kube-apiserver lists verbs in.
VERB_ORDER = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
#: (method, target, suffix) of an operation → its Kubernetes verb.
VERBS = {
    ("GET", "collection", ""): "list",
    ("POST", "collection", ""): "create",
    ("GET", "item", ""): "get",
    ("PUT", "item", ""): "update",
    ("PATCH", "item", ""): "patch",
    ("DELETE", "item", ""): "delete",
    ("GET", "item", "status"): "get",
    ("PUT", "item", "status"): "update",
    ("PATCH", "item", "status"): "patch",
}
REVIEW_GROUPS = {
    "authentication.k8s.io": [("selfsubjectreviews", "SelfSubjectReview")],
    # ``selfsubjectrulesreviews`` (``kubectl auth can-i --list``) is not served (API.md §14).
    "authorization.k8s.io": [("selfsubjectaccessreviews", "SelfSubjectAccessReview")],
}

_encode = msgspec.json.encode


class Operated(msgspec.Struct, frozen=True):
    """What discovery needs of one route of the operation table."""

    plural: str
    method: str
    target: str
    suffix: str
    watch: bool = False  # the list also serves ``watch=true``


def verbs_of(routes: Iterable[Operated]) -> dict[str, list[str]]:
    """Each resource (``plural`` or ``plural/subresource``) with its verbs, in kube order."""
    found: dict[str, set[str]] = {}
    for route in routes:
        verb = VERBS.get((route.method, route.target, route.suffix))
        if verb is None:
            continue
        resource = f"{route.plural}/{route.suffix}" if route.suffix else route.plural
        verbs = found.setdefault(resource, set())
        verbs.add(verb)
        if route.watch:
            verbs.add("watch")
    return {name: [v for v in VERB_ORDER if v in verbs] for name, verbs in found.items()}


def _group(name: str) -> dict[str, Any]:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def _resource_list(group_version: str, resources: list[dict[str, Any]]) -> bytes:
    return _encode(
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }
    )


class Discovery:
    """Every discovery document, encoded once: they change only with the code."""

    def __init__(self, routes: Iterable[Operated], namespace_verbs: list[str]) -> None:
        verbs = verbs_of(routes)
        self.documents: dict[str, bytes] = {
            "/api": _encode(
                {
                    "kind": "APIVersions",
                    "apiVersion": "v1",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [],
                }
            ),
            "/api/v1": _resource_list("v1", [_namespaces(namespace_verbs)]),
            "/apis": _encode(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [_group(GROUP), *(_group(g) for g in REVIEW_GROUPS)],
                }
            ),
            f"/apis/{GROUP}": _encode({"kind": "APIGroup", "apiVersion": "v1", **_group(GROUP)}),
            f"/apis/{GROUP_VERSION}": _resource_list(GROUP_VERSION, _kinds(verbs)),
        }
        for group, reviews in REVIEW_GROUPS.items():
            self.documents[f"/apis/{group}"] = _encode(
                {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}
            )
            self.documents[f"/apis/{group}/v1"] = _resource_list(
                f"{group}/v1",
                [
                    {
                        "name": plural,
                        "singularName": kind.lower(),
                        "namespaced": False,
                        "kind": kind,
                        "verbs": ["create"],
                    }
                    for plural, kind in reviews
                ],
            )


def _kinds(verbs: dict[str, list[str]]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for info in KINDS:
        resources.append(
            {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": True,
                "kind": info.kind,
                "verbs": verbs.get(info.plural, []),
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            }
        )
        for resource, sub_verbs in verbs.items():
            if resource.startswith(f"{info.plural}/"):
                resources.append(
                    {
                        "name": resource,
                        "singularName": "",
                        "namespaced": True,
                        "kind": info.kind,
                        "verbs": sub_verbs,
                    }
                )
    return resources


def _namespaces(verbs: list[str]) -> dict[str, Any]:
    return {
        "name": "namespaces",
        "singularName": "namespace",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": [v for v in VERB_ORDER if v in verbs],
        "shortNames": ["ns"],
    }


def version_info() -> bytes:
    """``version.Info``: every field a string (the official Python client refuses anything
    else); ``gitVersion`` names this service's version."""
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return _encode(
        {
            "major": "1",
            "minor": KUBERNETES_MINOR,
            "gitVersion": f"v1.{KUBERNETES_MINOR}.0-wegent.{__version__}",
            "gitCommit": "",
            "gitTreeState": "",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
            "compiler": sys.implementation.name,
            "platform": f"{sys.platform}/{machine}",
        }
    )
