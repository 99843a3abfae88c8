"""Tasks (API.md §10): the generic resource path plus a lifecycle.

``PUT …/status`` moves a task along PENDING → RUNNING → COMPLETED | FAILED | CANCELLED (and
RUNNING → RUNNING for progress reports); anything else is 409 naming the current phase.
Moves lock the row, so two racing moves out of RUNNING cannot both win. The spec cannot change
while the task is PENDING or RUNNING.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import msgspec

from wegent import metrics
from wegent.auth.access import Access, Principal, describe
from wegent.errors import Cause, Conflict, Forbidden, invalid
from wegent.resources.claims import ClaimRequest, Executor, Heartbeat, claim_statement, lease_until
from wegent.resources.crd import Caller, CRDService, unit
from wegent.resources.meta import ServerSet, check_depth
from wegent.resources.selectors import parse_selector
from wegent.resources.specs import FreeForm, TaskSpec
from wegent.resources.status import Phase, TaskStatus
from wegent.resources.store import where_clause

FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MOVES: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"RUNNING", "CANCELLED"}),
    "RUNNING": frozenset({"RUNNING", "COMPLETED", "FAILED", "CANCELLED"}),
}


class StatusUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``PUT …/tasks/{name}/status``: the status itself, every field but phase
    optional (absent fields keep their value)."""

    phase: Phase
    progress: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    result: FreeForm | None = None
    errorMessage: Annotated[str, msgspec.Meta(max_length=65536)] | None = None
    #: The lease holder, which a move of a task under a lease must name (API.md §17).
    executor: Executor | None = None

    def __post_init__(self) -> None:
        if self.result is not None and not check_depth(self.result):
            raise ValueError("`result`: Invalid value: nested too deeply")


class WholeStatus(StatusUpdate, kw_only=True, forbid_unknown_fields=True):
    """A Task's status as answered, sent back through the status subresource (API.md §14):
    the times the server sets are accepted and ignored."""

    startedAt: ServerSet = None
    completedAt: ServerSet = None
    leaseExpiresAt: ServerSet = None
    attempt: int | None = None  # set by claims only: accepted and ignored


class TaskWithStatus(msgspec.Struct, kw_only=True):
    """The body of ``PUT …/tasks/{name}/status`` in the Kubernetes family: a whole Task, of
    which only ``status`` is taken (and ``metadata.resourceVersion``, a precondition)."""

    apiVersion: Literal["agent.wecode.io/v1", ""] | None = None
    kind: Literal["Task", ""] | None = None  # "" is unset, as in Kubernetes
    metadata: dict[str, Any] = {}
    spec: Any = None
    status: WholeStatus


_PENDING = msgspec.json.encode(TaskStatus()).decode()
_LOCK = (
    "SELECT id, status::text AS status, resource_version FROM tasks WHERE kind = 'Task' "
    "AND namespace = $1 AND name = $2 AND deleted_at IS NULL FOR UPDATE"
)
_MOVE = (
    "UPDATE tasks SET status = $2::jsonb, "
    "updated_by = $3, updated_at = now() WHERE id = $1 RETURNING body"
)
_ACTIVE_SPEC = (
    "SELECT spec::text FROM tasks WHERE kind = 'Task' AND namespace = $1 AND name = $2 "
    "AND deleted_at IS NULL AND phase IN ('PENDING', 'RUNNING')"
)


_BEAT = (
    "UPDATE tasks SET status = status || jsonb_build_object("
    f"'leaseExpiresAt', {lease_until('$2::int')}, 'progress', $3::int), "
    "updated_by = $4, updated_at = now() WHERE id = $1 RETURNING body"
)


def _oldest_first(row: asyncpg.Record) -> tuple[Any, int]:
    return row["created_at"], row["id"]


def _progress_down(progress: int, was: int) -> Cause:
    return Cause(
        "FieldValueInvalid",
        f"Invalid value: {progress}: progress never goes down (it is {was})",
        "progress",
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def claim_query(
    kind: str, namespaces: list[str] | None, request: ClaimRequest, username: str
) -> tuple[str, list[Any]]:
    """The claim statement of ``request`` over ``namespaces`` (None: every namespace) and its
    arguments, as :meth:`TaskService.claim` runs it for ``username`` (also what the plan test
    and the dispatch benchmark's ceiling run, so they cannot drift from it)."""
    filters = [] if request.team is None else [("team_name", "=", request.team)]
    selector = parse_selector(request.labelSelector or "")
    where, params = where_clause(kind, namespaces, False, filters, selector)
    statement = claim_statement(where, len(params) + 1)
    return statement, [*params, request.executor, request.leaseSeconds, request.max, username]


class TaskService(CRDService[TaskSpec]):
    """Tasks reference a Team (and maybe a Workspace) and follow their lifecycle."""

    def initial_status(self) -> str:
        return _PENDING

    async def check_replace(
        self, conn: asyncpg.Connection, caller: Caller, name: str, spec: TaskSpec
    ) -> None:
        """While PENDING or RUNNING only labels, annotations and displayName may change."""
        active = await conn.fetchval(_ACTIVE_SPEC, caller.namespace, name)
        if active is not None and msgspec.json.decode(active) != msgspec.to_builtins(spec):
            raise invalid(
                self.kind,
                name,
                [
                    Cause(
                        "FieldValueForbidden",
                        "Forbidden: the spec cannot change while the task is PENDING or RUNNING",
                        "spec",
                    )
                ],
            )

    async def move(
        self,
        caller: Caller,
        name: str,
        update: StatusUpdate,
        *,
        if_version: str | None = None,
        dry_run: bool = False,
        cancelling: bool = False,
    ) -> bytes:
        """Apply one lifecycle move, or refuse it (409 with the current phase, 422 on progress;
        409 when ``if_version`` is given and stale; 409 when the task is under a lease and the
        move does not name its holder, unless ``cancelling``: anyone who may write cancels)."""
        precondition = self._precondition(name, if_version)
        async with self._db.acquire() as conn, unit(conn, needed=True, dry_run=dry_run):
            row = await conn.fetchrow(_LOCK, caller.namespace, name)
            if row is None:
                raise self._not_found(name, caller.namespace)
            if precondition is not None and row["resource_version"] != precondition:
                raise self._conflict(name)
            current = msgspec.json.decode(row["status"], type=TaskStatus)
            if not cancelling:
                self._check_holder(name, current, update.executor)
            status = self._moved(name, current, update)
            moved = await conn.fetchrow(
                _MOVE, row["id"], msgspec.json.encode(status).decode(), caller.principal.username
            )
        return moved["body"]  # type: ignore[no-any-return]

    def _moved(self, name: str, current: TaskStatus, update: StatusUpdate) -> TaskStatus:
        if update.phase not in MOVES.get(current.phase, frozenset()):
            raise Conflict(
                f'Task "{name}" is {current.phase}; it cannot move to {update.phase}',
                kind=self.kind,
                name=name,
            )
        progress = update.progress
        if progress is None:
            progress = 100 if update.phase == "COMPLETED" else current.progress
        if progress < current.progress:
            raise invalid(self.kind, name, [_progress_down(progress, current.progress)])
        now = _now()
        running = update.phase == "RUNNING"
        return TaskStatus(
            executor=current.executor,
            attempt=current.attempt,
            leaseExpiresAt=current.leaseExpiresAt if running else msgspec.UNSET,
            phase=update.phase,
            progress=progress,
            result=update.result if update.result is not None else current.result,
            errorMessage=update.errorMessage
            if update.errorMessage is not None
            else current.errorMessage,
            startedAt=current.startedAt or (now if update.phase == "RUNNING" else None),
            completedAt=now if update.phase in FINISHED else None,
        )

    async def cancel(self, caller: Caller, name: str) -> bytes:
        """PENDING or RUNNING → CANCELLED, whoever holds its lease; a finished task is 409."""
        return await self.move(caller, name, StatusUpdate(phase="CANCELLED"), cancelling=True)

    def _check_holder(self, name: str, current: TaskStatus, executor: str | None) -> None:
        """A RUNNING task under an executor's lease moves only by that executor's word."""
        holder = current.executor
        if current.phase != "RUNNING" or holder is msgspec.UNSET or executor == holder:
            return
        said = "names no executor" if executor is None else f'names executor "{executor}"'
        raise Conflict(
            f'Task "{name}" is RUNNING under the lease of executor "{holder}"; this move '
            f"{said} (status.executor must name the lease holder)",
            kind=self.kind,
            name=name,
        )

    async def heartbeat(self, caller: Caller, name: str, beat: Heartbeat) -> bytes:
        """The lease holder extends its lease (and may report progress); 409 when the task is
        not RUNNING under this executor's lease, saying why."""
        async with self._db.acquire() as conn, unit(conn, needed=True, dry_run=False):
            row = await conn.fetchrow(_LOCK, caller.namespace, name)
            if row is None:
                raise self._not_found(name, caller.namespace)
            current = msgspec.json.decode(row["status"], type=TaskStatus)
            self._check_lease(name, current, beat.executor)
            progress = current.progress if beat.progress is None else beat.progress
            if progress < current.progress:
                raise invalid(self.kind, name, [_progress_down(progress, current.progress)])
            beaten = await conn.fetchrow(
                _BEAT, row["id"], beat.leaseSeconds, progress, caller.principal.username
            )
        return beaten["body"]  # type: ignore[no-any-return]

    def _check_lease(self, name: str, current: TaskStatus, executor: str) -> None:
        holder = current.executor
        if current.phase == "RUNNING" and holder == executor:
            return
        if current.phase != "RUNNING":
            why = f"it is {current.phase}"
        elif holder is msgspec.UNSET:
            why = "it runs under no executor's lease"
        else:
            why = f'executor "{holder}" holds its lease now'
        raise Conflict(
            f'Task "{name}": executor "{executor}" holds no lease on it: {why}',
            kind=self.kind,
            name=name,
        )

    async def claim(self, principal: Principal, request: ClaimRequest) -> bytes:
        """Take up to ``request.max`` of the oldest claimable tasks among the namespaces the
        caller may write in (those of ``request.namespaces``: 403 for one it may not), in one
        statement (``wegent.resources.claims``). Answers ``{"items": [Task…]}``."""
        namespaces = await self._access.writable(principal)
        if request.namespaces is not None:
            wanted = sorted({Access.resolve(principal, n) for n in request.namespaces})
            for namespace in wanted:
                if namespaces is not None and namespace not in namespaces:
                    raise Forbidden(
                        f'{describe(principal)} cannot write in namespace "{namespace}"',
                        kind="Namespace",
                        name=namespace,
                    )
            namespaces = wanted
        if namespaces == []:
            return b'{"items":[]}'
        statement, args = claim_query(self.kind, namespaces, request, principal.username)
        async with self._db.acquire() as conn:
            rows = await conn.fetch(statement, *args)
        claimed = sorted((r for r in rows if r["body"] is not None), key=_oldest_first)
        metrics.TASKS_CLAIMED.inc(len(claimed))
        metrics.LEASES_EXPIRED.inc(sum(1 for r in rows if r["lapsed"]))
        return b'{"items":[' + b",".join(r["body"] for r in claimed) + b"]}"
