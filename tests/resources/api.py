"""A small client for the resource API that speaks either path family (API.md §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from tests.helpers import Account

UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class Api:
    """Requests as ``account`` in ``namespace`` through family ``A``, ``B`` or ``C``."""

    client: httpx.AsyncClient
    account: Account
    namespace: str
    family: str

    def _url(self, plural: str, name: str | None, suffix: str) -> tuple[str, dict[str, str]]:
        if self.family == "A":
            base, params = f"/api/v1/kinds/{plural}", {"namespace": self.namespace}
        elif self.family == "B":
            base, params = f"/api/v1/namespaces/{self.namespace}/{plural}", {}
        else:
            base, params = f"/apis/agent.wecode.io/v1/namespaces/{self.namespace}/{plural}", {}
        if name is not None:
            base = f"{base}/{name}"
        return base + suffix, params

    async def request(
        self,
        method: str,
        plural: str,
        name: str | None = None,
        *,
        suffix: str = "",
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        url, base_params = self._url(plural, name, suffix)
        return await self.client.request(
            method,
            url,
            params={**base_params, **(params or {})},
            json=json,
            content=content,
            headers={**self.account.headers, **(headers or {})},
        )

    async def create(self, plural: str, manifest: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.request("POST", plural, json=manifest, **kw)

    async def get(self, plural: str, name: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", plural, name, **kw)

    async def list(self, plural: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", plural, **kw)

    async def replace(
        self, plural: str, name: str, manifest: dict[str, Any], **kw: Any
    ) -> httpx.Response:
        return await self.request("PUT", plural, name, json=manifest, **kw)

    async def patch(self, plural: str, name: str, patch: Any, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", plural, name, json=patch, **kw)

    async def delete(self, plural: str, name: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", plural, name, **kw)

    async def restore(self, plural: str, name: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", plural, name, suffix="/restore", **kw)

    @property
    def product(self) -> Api:
        """The same caller and namespace on a family with the product operations (restore,
        cancel, batch): family C has only the Kubernetes verbs (API.md §14)."""
        return Api(
            self.client, self.account, self.namespace, "B" if self.family == "C" else self.family
        )

    @property
    def deleted(self) -> int:
        """The status of a delete: Kubernetes answers the deleted object (API.md §14)."""
        return 200 if self.family == "C" else 204

    async def must_create(self, plural: str, manifest: dict[str, Any]) -> dict[str, Any]:
        response = await self.create(plural, manifest)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


METADATA = frozenset({"namespace", "labels", "annotations", "displayName", "resourceVersion"})


def manifest(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agent.wecode.io/v1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def _split(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments that are metadata go to metadata, the rest to the spec."""
    meta = {k: v for k, v in fields.items() if k in METADATA}
    return meta, {k: v for k, v in fields.items() if k not in METADATA}


def ghost(name: str, prompt: str = "You are helpful.", **fields: Any) -> dict[str, Any]:
    meta, spec = _split(fields)
    return manifest("Ghost", name, {"systemPrompt": prompt, **spec}, **meta)


def model(name: str, **fields: Any) -> dict[str, Any]:
    meta, spec = _split(fields)
    return manifest("Model", name, {"modelConfig": {"env": {"MODEL": "gpt"}}, **spec}, **meta)


def shell(name: str, shell_type: str = "ClaudeCode") -> dict[str, Any]:
    return manifest("Shell", name, {"shellType": shell_type})


def bot(
    name: str, ghost_name: str, shell_name: str = "ClaudeCode", **fields: Any
) -> dict[str, Any]:
    meta, spec = _split(fields)
    refs = {"ghostRef": {"name": ghost_name}, "shellRef": {"name": shell_name}}
    return manifest("Bot", name, {**refs, **spec}, **meta)


def team(name: str, *bots: str, model: str = "solo") -> dict[str, Any]:
    return manifest(
        "Team",
        name,
        {"members": [{"botRef": {"name": b}} for b in bots], "collaborationModel": model},
    )


def skill(name: str) -> dict[str, Any]:
    return manifest("Skill", name, {"description": f"the {name} skill"})


def assert_envelope(
    body: dict[str, Any],
    *,
    kind: str,
    name: str,
    namespace: str,
    spec: dict[str, Any],
    user: str,
    generation: int = 1,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    display_name: str | None = None,
    deleted: bool = False,
) -> None:
    """Every field of an answered object, exactly; server-made values by their shape."""
    meta = body["metadata"]
    assert UID.match(meta["uid"]), meta["uid"]
    assert meta["resourceVersion"].isdigit()
    assert TIMESTAMP.match(meta["creationTimestamp"]) and TIMESTAMP.match(meta["updateTimestamp"])
    if deleted:
        assert TIMESTAMP.match(meta["deletionTimestamp"])
    assert body == {
        "apiVersion": "agent.wecode.io/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "displayName": display_name,
            "labels": labels or {},
            "annotations": annotations or {},
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "generation": generation,
            "creationTimestamp": meta["creationTimestamp"],
            "updateTimestamp": meta["updateTimestamp"],
            "deletionTimestamp": meta["deletionTimestamp"] if deleted else None,
            "createdBy": user,
            "updatedBy": meta["updatedBy"],
        },
        "spec": spec,
        "status": {"state": "Available", "message": None},
    }
