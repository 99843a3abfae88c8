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

from wegent.errors import Cause, Conflict, invalid
from wegent.resources.crd import Caller, CRDService, unit
from wegent.resources.meta import ServerSet, check_depth
from wegent.resources.specs import FreeForm, TaskSpec
from wegent.resources.status import Phase, TaskStatus

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

    def __post_init__(self) -> None:
        if self.result is not None and not check_depth(self.result):
            raise ValueError("`result`: Invalid value: nested too deeply")


class WholeStatus(StatusUpdate, kw_only=True, forbid_unknown_fields=True):
    """A Task's status as answered, sent back through the status subresource (API.md §14):
    the times the server sets are accepted and ignored."""

    startedAt: ServerSet = None
    completedAt: ServerSet = None


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    ) -> bytes:
        """Apply one lifecycle move, or refuse it (409 with the current phase, 422 on progress;
        409 when ``if_version`` is given and stale)."""
        precondition = self._precondition(name, if_version)
        async with self._db.acquire() as conn, unit(conn, needed=True, dry_run=dry_run):
            row = await conn.fetchrow(_LOCK, caller.namespace, name)
            if row is None:
                raise self._not_found(name, caller.namespace)
            if precondition is not None and row["resource_version"] != precondition:
                raise self._conflict(name)
            current = msgspec.json.decode(row["status"], type=TaskStatus)
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
            raise invalid(
                self.kind,
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {progress}: progress never goes down "
                        f"(it is {current.progress})",
                        "progress",
                    )
                ],
            )
        now = _now()
        return TaskStatus(
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
        """PENDING or RUNNING → CANCELLED; a finished task is 409."""
        return await self.move(caller, name, StatusUpdate(phase="CANCELLED"))
