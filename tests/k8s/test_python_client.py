"""The official ``kubernetes`` Python client against the real service over HTTPS (API.md §14):
its version API and its dynamic client's CRUD and paging, unmodified."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
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
