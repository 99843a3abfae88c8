"""The ``status`` of objects as answered and stored: plain kinds, and Tasks' lifecycle (§10)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class ResourceStatus(msgspec.Struct, kw_only=True):
    """The status of kinds without a lifecycle; ``message`` is always encoded, null included."""

    state: str = "Available"
    message: str | None = None


Phase = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
PHASES: tuple[str, ...] = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")


class TaskStatus(msgspec.Struct, kw_only=True):
    """A task's lifecycle (§10), as answered and stored."""

    phase: Phase = "PENDING"
    progress: int = 0
    result: dict[str, Any] | None = None
    errorMessage: str | None = None
    startedAt: str | None = None
    completedAt: str | None = None
