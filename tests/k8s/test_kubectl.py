"""The everyday kubectl workflow against the real service over HTTPS (API.md §14), with the real
``kubectl`` binary: one server for the module, one user and kubeconfig, the steps in order.

These are the commands of docs/kubectl.md. kubectl must be on the PATH (it is on these machines
and on CI); without it the module fails, it does not skip.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import PASSWORD
from tests.k8s.conftest import TlsServer

KUBECTL = shutil.which("kubectl")
GHOST_AND_BOT = """\
apiVersion: agent.wecode.io/v1
kind: Ghost
metadata:
  name: helper
  labels: {team: core}
spec:
  systemPrompt: You are helpful.
---
apiVersion: agent.wecode.io/v1
kind: Bot
metadata:
  name: coder
  labels: {team: core}
spec:
  ghostRef: {name: helper}
  shellRef: {name: ClaudeCode, namespace: public}
"""


@dataclass
class Kubectl:
    """``kubectl`` with this test's kubeconfig and a cache of its own."""

    kubeconfig: Path
    cache: Path

    def __call__(
        self, *args: str, stdin: str | None = None, ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        done = subprocess.run(
            [KUBECTL, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
            assert "couldn't get" not in done.stderr and "E1" not in done.stderr, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


def test_kubectl_is_installed() -> None:
    assert KUBECTL is not None, "kubectl is not on the PATH: install kubectl 1.32 to run the suite"


@pytest.fixture(scope="module")
def kubectl(served_tls: TlsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """A registered user and a kubeconfig for it: server URL, CA and token, and the user's
    personal namespace as the context's."""
    assert KUBECTL is not None, "kubectl is not on the PATH: install kubectl 1.32 to run the suite"
    user = "ops-user"
    with httpx.Client(base_url=served_tls.http_url, timeout=30) as http:
        registered = http.post(
            "/api/v1/auth/register", json={"username": user, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
    folder = tmp_path_factory.mktemp("kube")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "wegent",
                "cluster": {
                    "server": served_tls.https_url,
                    "certificate-authority": str(served_tls.ca_path),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "wegent", "context": {"cluster": "wegent", "user": user, "namespace": user}}
        ],
        "current-context": "wegent",
    }
    kubeconfig = folder / "config"
    kubeconfig.write_text(yaml.safe_dump(config))
    yield Kubectl(kubeconfig, folder / "cache")


def test_version_and_api_resources(kubectl: Kubectl) -> None:
    version = kubectl.json("version")
    assert version["serverVersion"]["gitVersion"].startswith("v1.32.0-wegent.")
    listed = kubectl("api-resources", "--api-group=agent.wecode.io", "-o", "name").stdout.split()
    assert "ghosts.agent.wecode.io" in listed and "bots.agent.wecode.io" in listed
    assert len(listed) == 13


def test_apply_creates_then_leaves_unchanged_then_configures(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "team.yaml"
    manifest.write_text(GHOST_AND_BOT)
    first = kubectl("apply", "-f", str(manifest))
    assert first.stdout.splitlines() == [
        "ghost.agent.wecode.io/helper created",
        "bot.agent.wecode.io/coder created",
    ]
    assert first.stderr == ""
    again = kubectl("apply", "-f", str(manifest))
    assert again.stdout.splitlines() == [
        "ghost.agent.wecode.io/helper unchanged",
        "bot.agent.wecode.io/coder unchanged",
    ]
    manifest.write_text(GHOST_AND_BOT.replace("You are helpful.", "You are very helpful."))
    edited = kubectl("apply", "-f", str(manifest))
    assert edited.stdout.splitlines() == [
        "ghost.agent.wecode.io/helper configured",
        "bot.agent.wecode.io/coder unchanged",
    ]
    assert kubectl.json("get", "ghost", "helper")["spec"]["systemPrompt"] == "You are very helpful."


def test_get_as_a_table_and_as_yaml(kubectl: Kubectl) -> None:
    table = kubectl("get", "bots").stdout.splitlines()
    assert table[0].split() == ["NAME", "GHOST", "SHELL", "MODEL", "AGE"]
    assert table[1].split()[:3] == ["coder", "helper", "ClaudeCode"]
    shown = yaml.safe_load(kubectl("get", "bot", "coder", "-o", "yaml").stdout)
    assert shown["kind"] == "Bot"
    assert shown["spec"]["ghostRef"] == {"name": "helper", "namespace": "ops-user"}
    by_label = kubectl("get", "ghosts", "-l", "team=core", "-o", "name").stdout.split()
    assert by_label == ["ghost.agent.wecode.io/helper"]
    assert kubectl("get", "ghosts", "-l", "team=other", "-o", "name").stdout == ""
    everything = kubectl("get", "wegent", "-o", "name").stdout.split()
    assert everything == ["ghost.agent.wecode.io/helper", "bot.agent.wecode.io/coder"]
    across = kubectl("get", "ghosts", "-A").stdout.splitlines()
    assert across[0].split()[:2] == ["NAMESPACE", "NAME"]


def test_label_and_patch(kubectl: Kubectl) -> None:
    assert kubectl("label", "ghost", "helper", "tier=gold").stdout.strip() == (
        "ghost.agent.wecode.io/helper labeled"
    )
    assert kubectl.json("get", "ghost", "helper")["metadata"]["labels"] == {
        "team": "core",
        "tier": "gold",
    }
    merge = kubectl(
        "patch", "ghost", "helper", "--type=merge", "-p", '{"spec":{"systemPrompt":"p2"}}'
    )
    assert merge.stdout.strip() == "ghost.agent.wecode.io/helper patched"
    ops = '[{"op":"replace","path":"/spec/systemPrompt","value":"p3"}]'
    kubectl("patch", "ghost", "helper", "--type=json", "-p", ops)
    assert kubectl.json("get", "ghost", "helper")["spec"]["systemPrompt"] == "p3"
    strategic = kubectl("patch", "ghost", "helper", "-p", '{"spec":{}}', ok=False)
    assert strategic.returncode == 1
    assert "application/strategic-merge-patch+json is not supported" in strategic.stderr


def test_explain(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "bot.spec").stdout
    assert "KIND:       Bot" in explained
    assert "ghostRef\t<ResourceRef> -required-" in explained
    assert "shellRef\t<ResourceRef> -required-" in explained
    assert "The Ghost that gives the bot its system prompt and tools." in explained
    field = kubectl("explain", "bot.spec.ghostRef").stdout
    assert "name\t<string> -required-" in field
    assert "Name of the referenced object." in field


def test_delete_and_the_refusal_for_a_referenced_object(kubectl: Kubectl) -> None:
    refused = kubectl("delete", "ghost", "helper", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error from server (Conflict): ")
    assert "referenced by 1 live object" in refused.stderr
    assert kubectl("delete", "bot", "coder").stdout.strip() == 'bot.agent.wecode.io "coder" deleted'
    assert kubectl("delete", "ghost", "helper").stdout.strip() == (
        'ghost.agent.wecode.io "helper" deleted'
    )
    gone = kubectl("get", "ghost", "helper", ok=False)
    assert gone.returncode == 1
    assert "NotFound" in gone.stderr


def test_namespaces(kubectl: Kubectl) -> None:
    created = kubectl("create", "namespace", "ops-team")
    assert created.stdout.strip() == "namespace/ops-team created"
    table = kubectl("get", "namespaces").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "AGE"]
    assert ["ops-team", "Active"] in [line.split()[:2] for line in table[1:]]
    assert kubectl.json("get", "namespace", "ops-team")["metadata"]["name"] == "ops-team"
    deleted = kubectl("delete", "namespace", "ops-team")
    assert deleted.stdout.strip() == 'namespace "ops-team" deleted'


def test_auth_whoami_and_can_i(kubectl: Kubectl) -> None:
    whoami = kubectl("auth", "whoami").stdout
    assert "ops-user" in whoami and "system:authenticated" in whoami
    assert kubectl("auth", "can-i", "create", "ghosts").stdout.strip() == "yes"
    refused = kubectl("auth", "can-i", "create", "ghosts", "-n", "public", ok=False)
    assert refused.returncode == 1
    assert refused.stdout.startswith("no")
    assert kubectl("auth", "can-i", "get", "ghosts", "-n", "public").stdout.strip() == "yes"


def test_get_watch(kubectl: Kubectl) -> None:
    """``kubectl get -w``: the table, then a row per change, until it is stopped."""
    assert KUBECTL is not None
    watching = subprocess.Popen(
        [
            KUBECTL,
            f"--kubeconfig={kubectl.kubeconfig}",
            f"--cache-dir={kubectl.cache}",
            "get",
            "ghosts",
            "-l",
            "watch=kubectl",
            "--watch",
            "--output-watch-events",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in watching.stdout or ()], daemon=True
    )
    reader.start()
    try:
        watched = (
            "apiVersion: agent.wecode.io/v1\nkind: Ghost\n"
            "metadata: {name: watched, labels: {watch: kubectl}}\nspec: {systemPrompt: hi}\n"
        )
        kubectl("apply", "-f", "-", stdin=watched)
        first = lines.get(timeout=30).split()
        assert first == ["EVENT", "NAME", "SKILLS", "AGE"]
        added = lines.get(timeout=30).split()
        assert added[:2] == ["ADDED", "watched"]
        kubectl("label", "ghost", "watched", "more=yes")
        assert lines.get(timeout=30).split()[:2] == ["MODIFIED", "watched"]
        kubectl("delete", "ghost", "watched")
        assert lines.get(timeout=30).split()[:2] == ["DELETED", "watched"]
    finally:
        watching.terminate()
        _, errors = watching.communicate(timeout=30)
    assert "error" not in errors.lower(), errors
