"""The official ``kubernetes`` Python client against the real service over HTTPS (API.md §14):
its version API, its dynamic client's CRUD and paging, and its watch, unmodified."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from tests.helpers import PASSWORD
from tests.k8s.conftest import TlsServer

USER = "py-client"


@pytest.fixture(scope="module")
def api_client(served_tls: TlsServer) -> Iterator[k8s.ApiClient]:
    with httpx.Client(base_url=served_tls.http_url, timeout=30) as http:
        registered = http.post(
            "/api/v1/auth/register", json={"username": USER, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/api/v1/auth/login", json={"username": USER, "password": PASSWORD})
        assert login.status_code == 200, login.text
    configuration = k8s.Configuration(host=served_tls.https_url)
    configuration.ssl_ca_cert = str(served_tls.ca_path)
    configuration.api_key = {"authorization": login.json()["access_token"]}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    with k8s.ApiClient(configuration) as api:
        yield api


@pytest.fixture(scope="module")
def ghosts(api_client: k8s.ApiClient) -> Any:
    dynamic = DynamicClient(api_client)
    return dynamic.resources.get(api_version="agent.wecode.io/v1", kind="Ghost")


def ghost(name: str, prompt: str = "You are helpful.") -> dict[str, Any]:
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "Ghost",
        "metadata": {"name": name, "labels": {"suite": "python"}},
        "spec": {"systemPrompt": prompt},
    }


def test_version(api_client: k8s.ApiClient) -> None:
    info = k8s.VersionApi(api_client).get_code()
    assert (info.major, info.minor) == ("1", "32")


def test_dynamic_crud(ghosts: Any) -> None:
    created = ghosts.create(body=ghost("py-one"), namespace=USER)
    assert created.metadata.name == "py-one"
    got = ghosts.get(name="py-one", namespace=USER)
    assert got.spec.systemPrompt == "You are helpful."
    body = got.to_dict()
    body["spec"]["systemPrompt"] = "Replaced."
    replaced = ghosts.replace(body=body, namespace=USER)
    assert replaced.spec.systemPrompt == "Replaced."
    with pytest.raises(ConflictError):  # the resourceVersion sent is now stale
        ghosts.replace(body=body, namespace=USER)
    patched = ghosts.patch(
        name="py-one",
        namespace=USER,
        body={"spec": {"systemPrompt": "Patched."}},
        content_type="application/merge-patch+json",
    )
    assert patched.spec.systemPrompt == "Patched."
    deleted = ghosts.delete(name="py-one", namespace=USER)
    assert deleted.metadata.name == "py-one"
    with pytest.raises(NotFoundError):
        ghosts.get(name="py-one", namespace=USER)


def test_dynamic_paging(ghosts: Any) -> None:
    names = [f"py-page-{i:02d}" for i in range(7)]
    for name in names:
        ghosts.create(body=ghost(name), namespace=USER)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = ghosts.get(namespace=USER, label_selector="suite=python", limit=3, _continue=token)
        pages += 1
        seen += [item.metadata.name for item in page.items]
        token = page.metadata["continue"]
        if not token:
            break
    assert seen == names
    assert pages == 3
    everywhere = ghosts.get(label_selector="suite=python")  # across namespaces
    assert [item.metadata.name for item in everywhere.items] == names


def test_watch_stream(api_client: k8s.ApiClient, ghosts: Any) -> None:
    """``watch.Watch().stream`` over the custom objects API: the current objects, then what
    is written meanwhile; it resumes by itself from the last version it saw."""

    def watched(name: str) -> dict[str, Any]:
        body = ghost(name)
        body["metadata"]["labels"] = {"suite": "py-watch"}
        return body

    ghosts.create(body=watched("py-w1"), namespace=USER)
    custom = k8s.CustomObjectsApi(api_client)
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object,
        "agent.wecode.io",
        "v1",
        USER,
        "ghosts",
        label_selector="suite=py-watch",
        field_selector=f"metadata.namespace={USER}",
        timeout_seconds=20,
    )
    seen: list[tuple[str, str]] = []
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if seen == [("ADDED", "py-w1")]:
            ghosts.create(body=watched("py-w2"), namespace=USER)
            ghosts.delete(name="py-w1", namespace=USER)
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "py-w1"), ("ADDED", "py-w2"), ("DELETED", "py-w1")]
    ghosts.delete(name="py-w2", namespace=USER)
