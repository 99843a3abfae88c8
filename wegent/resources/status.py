"""The ``status`` of objects as answered and stored: plain kinds, and Tasks' lifecycle (§10)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec


class ResourceStatus(msgspec.Struct, kw_only=True):
    """The status of kinds without a lifecycle; ``message`` is always encoded, null included."""

    state: Annotated[
        str,
        msgspec.Meta(description="The object's state, set by the server: Available."),
    ] = "Available"
    message: Annotated[
        str | None, msgspec.Meta(description="A human-readable note on the state, or null.")
    ] = None


Phase = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
PHASES: tuple[str, ...] = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")


class TaskStatus(msgspec.Struct, kw_only=True):
    """A task's lifecycle (§10), as answered and stored."""

    phase: Annotated[
        Phase,
        msgspec.Meta(
            description="Where the task is in its lifecycle: PENDING (created), RUNNING, then "
            "COMPLETED, FAILED or CANCELLED."
        ),
    ] = "PENDING"
    progress: Annotated[
        int,
        msgspec.Meta(
            description="How far the task is, 0 to 100; it never goes down, and a move to "
            "COMPLETED that gives none makes it 100."
        ),
    ] = 0
    result: Annotated[
        dict[str, Any] | None,
        msgspec.Meta(
            description="What the task produced, as reported by whoever runs it, or null."
        ),
    ] = None
    errorMessage: Annotated[
        str | None,
        msgspec.Meta(description="Why the task failed, as reported by whoever runs it, or null."),
    ] = None
    startedAt: Annotated[
        str | None,
        msgspec.Meta(description="When the task first became RUNNING (RFC 3339, UTC), or null."),
    ] = None
    completedAt: Annotated[
        str | None,
        msgspec.Meta(
            description="When the task finished: COMPLETED, FAILED or CANCELLED (RFC 3339, UTC), "
            "or null."
        ),
    ] = None
    executor: Annotated[
        str | msgspec.UnsetType,
        msgspec.Meta(
            description="The executor that claimed the task last (API.md §17); absent until a "
            "claim."
        ),
    ] = msgspec.UNSET
    leaseExpiresAt: Annotated[
        str | msgspec.UnsetType,
        msgspec.Meta(
            description="When the executor's lease ends unless a heartbeat extends it (RFC "
            "3339, UTC); absent when no lease runs."
        ),
    ] = msgspec.UNSET
    attempt: Annotated[
        int | msgspec.UnsetType,
        msgspec.Meta(description="How many times the task was claimed; absent until a claim."),
    ] = msgspec.UNSET
