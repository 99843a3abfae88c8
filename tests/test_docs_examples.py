"""The docs stay true: every manifest in docs/api.md and docs/examples/*.yaml is accepted as written.

Each manifest is posted as JSON, in dependency order, into a fresh user's personal namespace, and
the answered spec must hold every field the manifest sets: references come back with the
namespace the server resolved, model secrets come back masked (API.md §4, §8), and defaulted
fields the manifest leaves out are not compared.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers import register

DOCS = Path(__file__).resolve().parent.parent / "docs"
API_DOC = DOCS / "api.md"
EXAMPLES = DOCS / "examples"
TEAM_FILE = EXAMPLES / "team.yaml"

ORDER = ("Skill", "Ghost", "Model", "Shell", "Workspace", "Bot", "Team")
PLURALS = {kind: f"{kind.lower()}s" for kind in ORDER}
YAML_BLOCK = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
MASK = "***"

Manifest = dict[str, Any]
Sourced = tuple[str, Manifest]


def doc_manifests() -> list[Sourced]:
    """One manifest per ```yaml block of docs/api.md, in page order."""
    blocks = YAML_BLOCK.findall(API_DOC.read_text(encoding="utf-8"))
    return [(f"docs/api.md yaml block {i + 1}", yaml.safe_load(b)) for i, b in enumerate(blocks)]


def example_manifests() -> list[Sourced]:
    """Every document of every docs/examples/*.yaml, files by name, documents in file order."""
    found: list[Sourced] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            documents = [doc for doc in yaml.safe_load_all(stream) if doc is not None]
        found.extend(
            (f"docs/examples/{path.name} document {i + 1}", doc) for i, doc in enumerate(documents)
        )
    return found


def in_dependency_order(manifests: list[Sourced]) -> list[Sourced]:
    """Referenced kinds first; the sort is stable, so a file's own order is kept within a kind."""
    return sorted(manifests, key=lambda item: ORDER.index(item[1]["kind"]))


def assert_complete(source: str, manifest: object) -> None:
    assert isinstance(manifest, dict), f"{source}: not a mapping"
    assert manifest.get("apiVersion") == "agent.wecode.io/v1", source
    assert manifest.get("kind") in ORDER, f"{source}: kind {manifest.get('kind')!r}"
    assert isinstance(manifest.get("metadata"), dict) and manifest["metadata"].get("name"), source
    assert isinstance(manifest.get("spec"), dict) and manifest["spec"], source


def masked(sent: Any, path: tuple[str, ...] = ()) -> Any:
    """The spec as answered without ?reveal: secret strings in modelConfig.env read "***"."""
    if isinstance(sent, dict):
        return {
            key: MASK
            if path == ("modelConfig", "env")
            and isinstance(value, str)
            and any(word in key.upper() for word in SECRET_WORDS)
            else masked(value, (*path, key))
            for key, value in sent.items()
        }
    if isinstance(sent, list):
        return [masked(item, path) for item in sent]
    return sent


def assert_holds(sent: Any, answered: Any, namespace: str, where: str) -> None:
    """``answered`` has every field ``sent`` sets, with the same value; a reference sent without
    a namespace is answered with the one it resolved to (its own or ``public``)."""
    if isinstance(sent, dict):
        assert isinstance(answered, dict), f"{where}: {answered!r}"
        for key, value in sent.items():
            assert key in answered, f"{where}.{key} is missing from {answered!r}"
            assert_holds(value, answered[key], namespace, f"{where}.{key}")
        if where.endswith("Ref") and "namespace" not in sent:
            assert answered.get("namespace") in {namespace, "public"}, f"{where}: {answered!r}"
    elif isinstance(sent, list):
        assert isinstance(answered, list) and len(answered) == len(sent), f"{where}: {answered!r}"
        for index, (item, got) in enumerate(zip(sent, answered, strict=True)):
            assert_holds(item, got, namespace, f"{where}[{index}]")
    else:
        assert answered == sent, f"{where}: sent {sent!r}, answered {answered!r}"


async def post_all(client: httpx.AsyncClient, manifests: list[Sourced]) -> dict[str, Manifest]:
    """Post each manifest into a fresh user's namespace; the answers by source."""
    account = await register(client)
    namespace = account.username
    answers: dict[str, Manifest] = {}
    for source, manifest in in_dependency_order(manifests):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        url = f"/api/v1/namespaces/{namespace}/{PLURALS[kind]}"
        response = await client.post(url, json=manifest, headers=account.headers)
        assert response.status_code == 201, f"{source} ({kind} {name}): {response.text}"
        body = response.json()
        assert body["metadata"]["namespace"] == namespace, source
        assert_holds(masked(manifest["spec"]), body["spec"], namespace, f"{source}: spec")
        if masked(manifest["spec"]) != manifest["spec"]:
            shown = await client.get(
                f"{url}/{name}", params={"reveal": "true"}, headers=account.headers
            )
            assert shown.status_code == 200, f"{source}: {shown.text}"
            assert_holds(manifest["spec"], shown.json()["spec"], namespace, f"{source}: spec")
        answers[source] = body
    return answers


def test_every_kind_has_examples_in_both_sources() -> None:
    docs, examples = doc_manifests(), example_manifests()
    for source, manifest in docs + examples:
        assert_complete(source, manifest)
    assert {m["kind"] for _, m in docs} == set(ORDER)
    assert {m["kind"] for _, m in examples} == set(ORDER)
    example_documents = [m for _, m in examples]
    for source, manifest in docs:
        assert manifest in example_documents, f"{source} is not in docs/examples/"
    team_file = f"docs/examples/{TEAM_FILE.name} "
    team_kinds = [m["kind"] for s, m in examples if s.startswith(team_file)]
    assert team_kinds == ["Ghost", "Model", "Bot", "Team"]


async def test_doc_manifests_are_accepted(client: httpx.AsyncClient) -> None:
    manifests = doc_manifests()
    answers = await post_all(client, manifests)
    assert len(answers) == len(manifests)


async def test_example_manifests_are_accepted(client: httpx.AsyncClient) -> None:
    manifests = example_manifests()
    answers = await post_all(client, manifests)
    assert len(answers) == len(manifests)

    in_team_file = {s: m for s, m in manifests if s.startswith(f"docs/examples/{TEAM_FILE.name} ")}
    (bot,) = [m["metadata"]["name"] for m in in_team_file.values() if m["kind"] == "Bot"]
    (team_source,) = [s for s, m in in_team_file.items() if m["kind"] == "Team"]
    team = answers[team_source]
    namespace = team["metadata"]["namespace"]
    refs = [member["botRef"] for member in team["spec"]["members"]]
    assert refs and all(ref == {"name": bot, "namespace": namespace} for ref in refs), refs
