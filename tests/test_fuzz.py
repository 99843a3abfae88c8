"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation of ``/schema/openapi.json`` gets generated requests, valid and invalid (the
explicit-examples, coverage and fuzzing phases, positive and negative modes), and every answer
goes through all of schemathesis's default checks: no 5xx, documented status codes, content
types and headers, bodies matching the documented schemas, invalid input refused, valid input
accepted, authentication enforced (``missing_required_header``, ``ignored_auth``), ``Allow``
headers and 405s for undocumented methods.

How it is wired (docs/fuzzing.md has the why and the longer local run):

- pytest collects one test per operation from the document, built at import by an app that
  never starts (the document needs no database); ``fuzz_app`` checks that the running app
  serves the same document.
- Requests go in-process over ASGI, from schemathesis's own event-loop thread, so the tests
  are synchronous and drive a second app, on a fresh database of its own, whose lifespan runs
  on that thread (the session's ``app`` lives on the test loop; its pool cannot be shared).
- Authentication is a real bearer token: a user registered and logged in through the API
  (the global admin's token on the admin-only ``/api/v1/users`` routes).
- ``steer`` points most path parameters at what exists (the user's namespace, the ``seed``
  object of every kind, the ``seed`` API tokens, the service account whose tokens the admin
  manages) and makes valid manifests agree with their URL, so that requests reach the
  handlers instead of stopping at 403/404/400; half the logins use the user's credentials;
  new users and tokens get names of their own. ``prepare`` makes, just before each call, the
  state that a request changes (an empty namespace to delete, an object in the trash to
  restore, a task to move or cancel, a token to revoke).
- ``test_every_operation_succeeded``, last, asserts that every operation got a 2xx, so that
  every success answer was checked against the document.
- A refusal of valid input passes only when every cause of it is a refusal API.md prescribes
  for input no JSON schema can describe (``CONTRACT_REFUSALS``: an opaque ``continue`` token,
  a missing reference target, an unknown field under ``fieldValidation=Strict``...).
- ``KNOWN_BUGS`` (and ``KNOWN_REFUSALS``) would skip one check for the requests that hit a
  server bug listed in docs/fuzzing.md, and only those, until it is fixed. None is open.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from litestar import Litestar
from litestar.serialization import encode_json
from schemathesis import Case, checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi

from tests.conftest import make_settings
from tests.helpers import PASSWORD
from wegent.api.params import TRUE
from wegent.app import create_app

# Not measured by --cov: it would be the suite's slowest part by far for 0.3% (docs/fuzzing.md).
pytestmark = pytest.mark.not_measured

#: Generated examples per operation and generation mode; raise it for a deeper local run.
EXAMPLES = int(os.environ.get("WEGENT_FUZZ_EXAMPLES", "4"))

# Fixed names (the database is new on every run), so that every run sends the same requests.
USER = "fuzzer"
ADMIN = "fuzz-admin"
VICTIM = "fuzz-victim"  # the target of the admin's PATCH /users/{username}
ROBOT = "fuzz-robot"  # a service account: the target of the admin's token routes
SCRATCH = "fuzz-scratch"  # a shared namespace USER administers
EMPTY = "fuzz-empty"  # an empty shared namespace USER administers, created before each delete
SEED = "seed"  # one object of every kind has this name in USER's namespace
DONE = "done"  # a cancelled task in USER's namespace
LIVE = "live"  # a task re-created PENDING (or RUNNING) before each call that moves it
TRASHED = "trashed"  # an object put in the trash before each call that restores it
UNUSED_DATABASE = "postgresql://fuzz@127.0.0.1:1/unused"


# -- the document and the app ----------------------------------------------------------------


def load_document() -> dict[str, Any]:
    """What ``/schema/openapi.json`` serves, from an app that never starts."""
    app = create_app(make_settings(UNUSED_DATABASE, Path(tempfile.gettempdir()) / "wegent-fuzz"))
    document: dict[str, Any] = json.loads(encode_json(app.openapi_schema.to_schema()))
    return document


class LateApp:
    """The ASGI app under test, plugged in by the ``fuzz_app`` fixture.

    The schema must know its app at import, the app needs the session's database, which only
    fixtures provide. Every request, the checks' own probes included, comes through here.
    """

    target: Litestar | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "the fuzz_app fixture plugs the app in"
        await self.target(scope, receive, send)


@schemathesis.python.constants
def wegent_literals() -> object:
    """Generation also draws on the literals of the server's own code."""
    return "wegent"


DOCUMENT = load_document()
APP = LateApp()
# schemathesis's defaults plus 413: how a body over the size limit is refused (API.md §1: an
# object is at most 1 MiB, which no JSON schema states), a right answer to any input.
REFUSED = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                "deterministic": True,  # derandomize: the same requests on every run
                "database": "none",
            },
            "checks": {
                "negative_data_rejection": {"expected-statuses": REFUSED},
                "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            },
        }
    ),
)
schema.app = APP

#: Real bearer tokens by role, from logins in the ``fuzz_app`` fixture.
TOKENS: dict[str, str] = {}


def placeholder(role: str) -> str:
    return f"placeholder-for-the-{role}-token"


@schema.auth(refresh_interval=None)
class Bearer:
    """The user's token; the global admin's on the admin-only user routes.

    Coverage cases are built at collection, before any login, so they carry a placeholder
    that ``use_real_tokens`` swaps for the real token just before the call.
    """

    def get(self, case: Case, context: schemathesis.AuthContext) -> str:
        path = context.operation.path
        role = "admin" if path == "/api/v1/users" or path.startswith("/api/v1/users/{") else "user"
        return TOKENS.get(role, placeholder(role))

    def set(self, case: Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def use_real_tokens(case: Case) -> None:
    headers = case.headers or {}
    for role, token in TOKENS.items():
        if headers.get("Authorization") == f"Bearer {placeholder(role)}":
            headers["Authorization"] = f"Bearer {token}"


@pytest.fixture(scope="module")
async def fuzz_database_url(make_database: Any) -> str:
    url: str = await make_database()
    return url


@pytest.fixture(scope="module")
def fuzz_app(
    fuzz_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Litestar]:
    settings = make_settings(
        fuzz_database_url,
        tmp_path_factory.mktemp("fuzz"),
        admin_username=ADMIN,
        admin_password=PASSWORD,
    )
    app = create_app(settings)
    # schemathesis's pytest plugin ends the app's lifespan after every test, so each of the
    # ~130 operations would reconnect and migrate again; keep one lifespan for the module.
    shutdown, asgi.shutdown_lifespans = asgi.shutdown_lifespans, lambda: None
    APP.target = app
    try:
        with asgi.get_client(APP) as client:
            served = client.get("/schema/openapi.json")
            assert served.status_code == 200
            assert served.json() == DOCUMENT  # F1 (fixed): random examples made them differ
            for username in (USER, VICTIM):
                response = client.post(
                    "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
                )
                assert response.status_code == 201, response.text
            TOKENS["user"] = login(client, USER)
            TOKENS["admin"] = login(client, ADMIN)
            seed(client, TOKENS["user"])
        yield app
    finally:
        asgi.shutdown_lifespans = shutdown
        shutdown()
        APP.target = None
        TOKENS.clear()
        RESEEDED.clear()
        SUCCESSES.clear()


def login(client: asgi.ASGIClient, username: str) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


UPSTREAM_KINDS = ("Retriever", "Device", "Template", "ConnectorApp", "Collaboration")


def upstream_samples() -> dict[str, dict[str, Any]]:
    """The spec of each kind in tests/resources/upstream_manifests.yaml."""
    text = (Path(__file__).parent / "resources" / "upstream_manifests.yaml").read_text()
    return {doc["kind"]: doc["spec"] for doc in yaml.safe_load_all(text) if doc}


_REF = {"name": SEED}
#: A valid spec of every kind, its references naming the seeds.
SPECS: dict[str, dict[str, Any]] = {
    "Skill": {"description": "a skill"},
    "Ghost": {"systemPrompt": "be brief", "skills": [SEED]},
    "Model": {"modelConfig": {"env": {"API_KEY": "sk-secret", "MODEL": "m"}}},
    "Shell": {"shellType": "ClaudeCode"},
    "Workspace": {
        "repository": {
            "gitUrl": "https://example.com/a/b.git",
            "gitRepo": "a/b",
            "branchName": "main",
            "gitDomain": "example.com",
        }
    },
    "Bot": {"ghostRef": _REF, "shellRef": _REF, "modelRef": _REF},
    "Team": {"members": [{"botRef": _REF}], "collaborationModel": "solo"},
    "Task": {"title": "t", "prompt": "p", "teamRef": _REF, "workspaceRef": _REF},
    # The upstream-shaped kinds reference nothing: their sample manifests as they are.
    **{kind: spec for kind, spec in upstream_samples().items() if kind in UPSTREAM_KINDS},
}


def manifest(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}, "spec": SPECS[kind]}


def seed(client: asgi.ASGIClient, token: str) -> None:
    """One object of every kind named ``seed``, a finished task ``done`` (whose spec may
    change), a shared namespace, the service account ``ROBOT``, and an API token named
    ``seed`` of the user's and of ``ROBOT``'s, so that routes reach them."""
    headers = {"Authorization": f"Bearer {token}"}
    seed_tokens(client, token)
    manifests = [manifest(kind, SEED) for kind in SPECS]
    manifests.append(manifest("Task", DONE))
    response = client.post(f"/api/v1/namespaces/{USER}/apply", json=manifests, headers=headers)
    assert response.status_code == 200 and response.json()["success"], response.text
    task = client.get(f"/api/v1/namespaces/{USER}/tasks/{DONE}", headers=headers).json()
    if task["status"]["phase"] != "CANCELLED":  # a re-seed finds it cancelled already
        response = client.post(f"/api/v1/namespaces/{USER}/tasks/{DONE}/cancel", headers=headers)
        assert response.status_code == 200, response.text
    if client.get(f"/api/v1/namespaces/{SCRATCH}", headers=headers).status_code != 200:
        response = client.post("/api/v1/namespaces", json={"name": SCRATCH}, headers=headers)
        assert response.status_code == 201, response.text


def seed_tokens(client: asgi.ASGIClient, token: str) -> None:
    """``ROBOT`` and the two ``seed`` tokens, made again when a request deleted them."""
    mine = {"Authorization": f"Bearer {token}"}
    admins = {"Authorization": f"Bearer {TOKENS['admin']}"}
    robot = {"username": ROBOT, "serviceAccount": True}
    expect(client, "POST", "/api/v1/users", {201, 409}, admins, robot)
    expect(client, "POST", "/api/v1/tokens", {201, 409}, mine, {"name": SEED})
    expect(client, "POST", f"/api/v1/users/{ROBOT}/tokens", {201, 409}, admins, {"name": SEED})


# -- steering: requests that reach the handlers ----------------------------------------------


def bucket(value: object) -> int:
    """0-9, stable across runs (unlike ``hash``), from a generated value."""
    return zlib.crc32(repr(value).encode()) % 10


def choose(value: object, choices: list[str]) -> object:
    """The first choice 6 times in 10, each other one once, else ``value`` itself."""
    if value in choices:
        return value  # already steered: explicit examples run again when Hypothesis shrinks
    b = bucket(value)
    if b < 6:
        return choices[0]
    return choices[b - 5] if b - 5 < len(choices) else value


def negative_at(case: Case, location: ParameterLocation) -> bool:
    meta = case.meta
    return bool(meta and meta.is_negative_at(location))


def steer(case: Case) -> None:
    """Point path parameters (and family A's ``?namespace=``) at what exists, and make valid
    manifests agree with their URL.

    Only valid generated values are replaced, by other valid ones, so a positive case stays
    positive and a negative one keeps its invalid part (schemathesis re-checks which is which).
    """
    params = case.path_parameters
    namespaces = [USER, "default", "public", SCRATCH]
    if case.method == "DELETE" and case.operation.path == "/api/v1/namespaces/{namespace}":
        namespaces = [EMPTY, USER, "public", SCRATCH]  # EMPTY: created just before the call
    query = case.query
    if query and str(query.get("watch")) in TRUE:
        # A watch is a stream of up to 30 minutes, tested in tests/watch: lists here.
        case.query = query = {**query, "watch": "false"}
    if query and "namespace" in query and not negative_at(case, ParameterLocation.QUERY):
        case.query = {**query, "namespace": choose(query["namespace"], namespaces)}
    if params and not negative_at(case, ParameterLocation.PATH):
        steered = dict(params)
        if "namespace" in params:
            steered["namespace"] = choose(params["namespace"], namespaces)
        if "name" in params:
            steered["name"] = choose(params["name"], object_names(case))
        if "username" in params:
            tokens = case.operation.path.startswith("/api/v1/users/{username}/tokens")
            steered["username"] = choose(params["username"], [ROBOT if tokens else VICTIM])
        if steered != params:
            case.path_parameters = steered
    body = case.body
    if negative_at(case, ParameterLocation.BODY):
        return
    if status_merge_patch(case) and bucket(body) < 5:
        # Family C's status patch body is any JSON: half of them move the task.
        phases = ["RUNNING", "COMPLETED", "RUNNING", "FAILED", "PENDING"]
        case.body = {"status": {"phase": phases[bucket(body)]}}
        return
    if not isinstance(body, dict):
        return
    if isinstance(body.get("metadata"), dict) and "/{namespace}/apply" not in case.operation.path:
        case.body = steer_manifest(case, body)
    elif case.operation.path.endswith("/auth/login") and bucket(body) < 5:
        # Half the logins are the user's (generated credentials are always a 401); never the
        # user's name with a wrong password, which would count towards its lockout (429).
        case.body = {**body, "username": USER, "password": PASSWORD}
    elif case.method == "POST" and case.operation.path == "/api/v1/users" and bucket(body) < 8:
        case.body = steer_new_user(case, body)
    elif case.method == "POST" and case.operation.path.endswith("/tokens") and bucket(body) < 8:
        # A name of its own (generated ones are nearly all "0": a 409 after the first).
        case.body = {
            **body,
            "name": f"fz-{zlib.crc32(repr((case.operation.path, body)).encode()):08x}",
        }


def steer_new_user(case: Case, body: dict[str, Any]) -> dict[str, Any]:
    """A service account the admin can make (API.md §16): a name of its own."""
    named = repr((case.operation.path, body)).encode()
    return {**body, "username": f"fz-{zlib.crc32(named):08x}"}


def status_merge_patch(case: Case) -> bool:
    """A merge patch of a Task status subresource (family C): its body is any JSON value."""
    return (
        case.method == "PATCH"
        and case.operation.path.endswith("/status")
        and case.media_type in ("application/merge-patch+json", "application/json")
    )


def object_names(case: Case) -> list[str]:
    """What ``{name}`` is steered to, the first most often (``prepare`` makes the state the
    first one needs just before the call)."""
    path = case.operation.path
    if path.endswith("/restore"):
        return [TRASHED, SEED]  # TRASHED is in the trash, SEED is live (409)
    if kind_of(case) != "Task":
        return [SEED]
    if path.endswith(("/status", "/cancel", "/heartbeat")):
        return [LIVE, SEED, DONE]  # LIVE is PENDING or RUNNING, DONE finished (409)
    return [DONE, SEED] if case.method in ("PUT", "PATCH") else [SEED, DONE]


def steer_manifest(case: Case, body: dict[str, Any]) -> dict[str, Any]:
    """A valid manifest that agrees with its URL, as API.md §5 requires and no JSON schema can
    say: ``metadata.namespace`` is the URL's namespace (path, or family A's query), and
    ``metadata.name`` the URL's name on replace. Most of the time a create gets a name of its
    own (generated names are nearly all "0", a 409 after the first) and references name the
    seeds, so that writes succeed."""
    metadata = dict(body["metadata"])
    params = case.path_parameters or {}
    namespace = params.get("namespace") or (case.query or {}).get("namespace") or "default"
    if metadata.get("namespace") not in (None, namespace):
        metadata["namespace"] = namespace
    name = params.get("name")
    if name is not None and metadata.get("name") not in (None, name):
        metadata["name"] = name
    if case.method == "POST" and isinstance(metadata.get("name"), str) and bucket(body) < 8:
        # Else mostly "0": a 409. The path counts: each family generates the same bodies.
        named = repr((case.operation.path, body)).encode()
        metadata["name"] = f"fz-{zlib.crc32(named):08x}"
    steered = {**body, "metadata": metadata}
    spec = body.get("spec")
    # 7 in 10 point their references at the seeds; which ones also depends on the query, so
    # that the many query variations of one generated spec do not all share its fate.
    if isinstance(spec, dict) and bucket((spec, case.query)) < 7:
        steered["spec"] = point_references_at_seeds(spec)
    return steered


REFERENCES = ("ghostRef", "shellRef", "modelRef", "secondaryModelRef", "teamRef", "workspaceRef")


def point_references_at_seeds(spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    for field in REFERENCES:
        if isinstance(spec.get(field), dict):
            spec[field] = {"name": SEED}
    if isinstance(spec.get("members"), list):
        spec["members"] = [
            {**m, "botRef": {"name": SEED}} if isinstance(m, dict) else m for m in spec["members"]
        ]
    if isinstance(spec.get("skills"), list):
        spec["skills"] = [SEED]
        if isinstance(spec.get("preloadSkills"), list):
            spec["preloadSkills"] = [SEED][: len(spec["preloadSkills"])]
    return spec


def own_namespace(case: Case) -> bool:
    """Whether a request acts in USER's namespace (by name, as ``default``, or family A's
    absent or empty ``?namespace=``)."""
    params = case.path_parameters or {}
    namespace = params.get("namespace", (case.query or {}).get("namespace", ""))
    return namespace in (USER, "default", "")


def prepare(case: Case, client: asgi.ASGIClient) -> None:
    """Make the state a steered request acts on, which a request changes, just before each call:
    the ``seed`` API tokens to read or revoke, an empty shared namespace ``EMPTY`` to delete, a ``TRASHED`` object of the route's kind in
    the trash to restore, a task ``LIVE`` to move or cancel, PENDING, or RUNNING when the body
    moves it out of RUNNING (the only phase no task ever moves to is PENDING, a 409)."""
    path = case.operation.path
    params = case.path_parameters or {}
    headers = {"Authorization": f"Bearer {TOKENS['user']}"}
    if "/tokens/{name}" in path and params.get("name") == SEED:
        seed_tokens(client, TOKENS["user"])  # a request before may have revoked one
        return
    if case.method == "DELETE" and path == "/api/v1/namespaces/{namespace}":
        if params.get("namespace") == EMPTY:
            expect(client, "POST", "/api/v1/namespaces", {201, 409}, headers, {"name": EMPTY})
        return
    name = params.get("name")
    if name not in (TRASHED, LIVE) or not own_namespace(case):
        return
    items = f"/api/v1/namespaces/{USER}/{path.split('/')[-3]}"
    if path.endswith("/restore") and name == TRASHED:
        kind = kind_of(case)
        assert kind is not None
        expect(client, "POST", items, {201, 409}, headers, manifest(kind, TRASHED))
        expect(client, "DELETE", f"{items}/{TRASHED}?force=true", {204}, headers)
    elif path.endswith("/heartbeat") and name == LIVE:
        # LIVE claimed by the executor the body names (when it names a valid one)
        expect(client, "DELETE", f"{items}/{LIVE}?force=true", {204, 404}, headers)
        live = manifest("Task", LIVE)
        live["metadata"]["labels"] = {"fuzz": "live"}
        expect(client, "POST", items, {201}, headers, live)
        body = case.body
        if isinstance(body, dict) and not negative_at(case, ParameterLocation.BODY):
            claim = {"executor": body.get("executor"), "labelSelector": "fuzz=live"}
            expect(client, "POST", "/api/v1/tasks/claim", {200}, headers, claim)
    elif path.endswith(("/status", "/cancel")) and name == LIVE:
        expect(client, "DELETE", f"{items}/{LIVE}?force=true", {204, 404}, headers)
        expect(client, "POST", items, {201}, headers, manifest("Task", LIVE))
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("status"), dict):
            body = body["status"]  # family C: a Task holding the status
        if isinstance(body, dict) and body.get("phase") in ("RUNNING", "COMPLETED", "FAILED"):
            move = {"phase": "RUNNING"}
            expect(client, "PUT", f"{items}/{LIVE}/status", {200}, headers, move)


def expect(
    client: asgi.ASGIClient,
    method: str,
    url: str,
    expected: set[int],
    headers: dict[str, str],
    body: object = None,
) -> None:
    response = client.request(method, url, json=body, headers=headers)
    if response.status_code == 503:  # see test_api
        response = client.request(method, url, json=body, headers=headers)
    assert response.status_code in expected, f"{method} {url}: {response.text}"


def kind_of(case: Case) -> str | None:
    """The resource kind of an operation (its tag), or None."""
    tags = case.operation.tags or []
    return tags[0] if tags and tags[0][:1].isupper() else None


# -- known server bugs: docs/fuzzing.md lists each with a reproduction -----------------------
#
# Rules skip one check for the cases that hit one bug, and only those. When a bug is fixed,
# delete its rule: the fuzzer then checks the fix. Every finding so far is fixed.

CaseRule = Callable[[Case], bool]


#: (bug, check skipped, when): bugs that are not a refusal of valid input. None is open.
KNOWN_BUGS: list[tuple[str, Any, CaseRule]] = []

Cause = dict[str, Any]


def text(cause: Cause) -> str:
    return str(cause.get("message", ""))


#: (bug, explains this cause of a 422 to valid input): the refusals of valid input.
KNOWN_REFUSALS: list[tuple[str, Callable[[Case, Cause], bool]]] = []
#: (bug, explains this causeless 400 or 422 to valid input).
KNOWN_CAUSELESS_REFUSALS: list[tuple[str, Callable[[Case, str], bool]]] = []

# -- refusals the contract prescribes for input no schema can describe -----------------------
#
# ``positive_data_acceptance`` expects no 400/422 for input that matches the schema. API.md
# prescribes some: a ``continue`` token the server did not issue and a ``labelSelector``
# outside the grammar (§7), a reference to a missing object (§4), a reserved name (§3), a task
# spec edited while it runs and a task's progress going down (§10), an unknown field under
# ``fieldValidation=Strict`` (§1), a Ghost's ``preloadSkills`` that are not among its
# ``skills`` and a Team with two leaders (§2), a merge patch (any JSON object, §6) whose
# result is not a valid object (422).

PROGRESS_DOWN = re.compile(r"Invalid value: (\d+): progress never goes down \(it is (\d+)\)")


def body_of(case: Case) -> dict[str, Any]:
    """The case's body when it is a JSON object (a claim's ``labelSelector`` is in it)."""
    return case.body if isinstance(case.body, dict) else {}


def progress_went_down(case: Case, message: str) -> bool:
    """The body's ``progress`` is below the task's (a task moved earlier in the run)."""
    found = PROGRESS_DOWN.fullmatch(message)
    return bool(found) and body_of(case).get("progress") == int(found[1]) < int(found[2])


#: Rules across fields of the upstream-shaped kinds (API.md §2: upstream Wegent's schemas and
#: write-time checks), which no JSON Schema states: (kind, the cause's field).
UPSTREAM_RULES = [
    ("Retriever", r"spec\.storageConfig\.indexStrategy\.fixedName"),  # needed when mode is fixed
    ("Template", r"spec\.resources\.ghost\.(preload)?[sS]killRefs\[\d+\]\.name"),  # unique
    ("Template", r"spec\.resources\.bot\.agentConfig\.namespace"),
    ("ConnectorApp", r"spec\.(allowedRoles|mcpUrl|httpTools|toolAllowlist)(\[.*)?"),
    ("Collaboration", r"spec\.config\.steps(\[.*)?"),
]


def upstream_rule(case: Case, cause: Cause) -> bool:
    kind = kind_of(case)
    field = str(cause.get("field", ""))
    return any(kind == k and re.fullmatch(f, field) for k, f in UPSTREAM_RULES)


CONTRACT_REFUSALS: list[tuple[str, Callable[[Case, Cause], bool]]] = [
    ("§2", upstream_rule),
    ("§2", lambda case, c: text(c).endswith(": not one of skills")),  # preloadSkills ⊆ skills
    ("§2", lambda case, c: text(c).endswith(": at most one leader")),  # of a Team's members
    ("§4", lambda case, c: c.get("reason") == "FieldValueNotFound"),
    ("§3", lambda case, c: c.get("message") == "reserved name"),
    ("§10", lambda case, c: "cannot change while the task is" in text(c)),
    ("§10", lambda case, c: progress_went_down(case, text(c))),
    (
        "§1",
        lambda case, c: (
            (case.query or {}).get("fieldValidation") == "Strict"
            and text(c).startswith("unknown field ")
        ),
    ),
]
CONTRACT_CAUSELESS_REFUSALS: list[tuple[str, Callable[[Case, str], bool]]] = [
    (
        "§7",
        lambda case, message: (
            "continue" in (case.query or {}) and message.startswith("invalid continue token")
        ),
    ),
    (
        "§7",
        lambda case, message: (
            ("labelSelector" in (case.query or {}) or "labelSelector" in body_of(case))
            and message.startswith("invalid labelSelector")
        ),
    ),
    (
        "§14",
        lambda case, message: (
            "fieldSelector" in (case.query or {})
            and message.startswith(("invalid field selector", "field label not supported"))
        ),
    ),
    (
        "§14",
        lambda case, message: (
            message
            in (
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
                "specifying resource version is not allowed when using continue",
                'resourceVersionMatch "Exact" is forbidden for resourceVersion "0"',
            )
        ),
    ),
    (
        "§14",  # a generated binary body is no Kubernetes protobuf
        lambda case, message: (
            case.media_type == "application/vnd.kubernetes.protobuf"
            and message.startswith("the DeleteOptions could not be decoded")
        ),
    ),
    (
        "§14",
        lambda case, message: (
            (case.query or {}).get("resourceVersionMatch") == "Exact"
            and message.startswith("too old resource version: ")
        ),
    ),
]


def explained_refusal(case: Case, response: Any) -> bool:
    """A 400/422 to valid input that a known bug or the contract explains, every cause of it."""
    if response.status_code not in (400, 410, 422):  # 410: §14's Expired
        return False
    if case.method == "PATCH" and response.status_code == 422 and kind_of(case) is not None:
        return True  # §6: a merge patch is any object; the merged object is what is validated
    try:
        status = response.json()
    except ValueError:
        return False
    message = str(status.get("message", ""))
    causes = (status.get("details") or {}).get("causes") or []
    if causes:
        rules = [rule for _, rule in KNOWN_REFUSALS + CONTRACT_REFUSALS]
        return all(any(rule(case, cause) for rule in rules) for cause in causes)
    rules_ = [rule for _, rule in KNOWN_CAUSELESS_REFUSALS + CONTRACT_CAUSELESS_REFUSALS]
    return any(rule(case, message) for rule in rules_)


def skipped_checks(case: Case, response: Any) -> list[Any]:
    skipped = [check for _, check, applies in KNOWN_BUGS if applies(case)]
    if explained_refusal(case, response):
        skipped.append(checks.positive_data_acceptance)
    return skipped


#: Operations whose first case re-seeded (an earlier operation may have deleted the seeds).
RESEEDED: set[str] = set()
#: 2xx answers that passed every check, by operation (each operation that ran is a key).
SUCCESSES: dict[str, int] = {}
#: The last answer of each operation (what an operation that never succeeded got instead).
LAST: dict[str, str] = {}


@schema.parametrize()
def test_api(case: Case, fuzz_app: Litestar) -> None:
    label = case.operation.label
    if label not in RESEEDED:
        RESEEDED.add(label)
        SUCCESSES.setdefault(label, 0)
        with asgi.get_client(APP) as client:
            seed(client, TOKENS["user"])
    steer(case)
    with asgi.get_client(APP) as client:
        prepare(case, client)
    use_real_tokens(case)
    response = case.call()
    if response.status_code == 503:
        # Other test sessions sharing the embedded PostgreSQL may cut every wegent connection
        # of the server (tests/db/test_connection.py, tests/reliability): retry that once.
        response = case.call()
    case.validate_response(response, excluded_checks=skipped_checks(case, response))
    if 200 <= response.status_code < 300:
        SUCCESSES[label] += 1
    LAST[label] = f"{response.status_code} {response.text[:300]}"
    if os.environ.get("FUZZ_TRACE") and os.environ["FUZZ_TRACE"] in label:
        print("TRACE", case.query, case.body, LAST[label], file=sys.stderr)


def test_every_operation_succeeded() -> None:
    """Every operation fuzzed above got a 2xx, so its success answer was checked against the
    document too (generation is deterministic: the same requests on every run). Runs last."""
    if not SUCCESSES:
        pytest.skip("no operation was fuzzed (deselected)")
    never = sorted(label for label, count in SUCCESSES.items() if count == 0)
    assert not never, "never a 2xx:\n" + "\n".join(f"{label}: {LAST[label]}" for label in never)
