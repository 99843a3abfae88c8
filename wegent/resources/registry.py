"""The kind registry: each kind's plural, table and spec. Routes and services derive from it.

Adding a kind means: a spec Struct, an entry here, a service if it has rules of its own, tests.
The order is the order batch apply uses, referenced kinds first (API.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from wegent.resources.specs import SPECS


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    table: str

    @property
    def spec(self) -> type[msgspec.Struct]:
        return SPECS[self.kind]


KINDS: tuple[KindInfo, ...] = (
    KindInfo("Skill", "skills", "kinds"),
    KindInfo("Ghost", "ghosts", "kinds"),
    KindInfo("Model", "models", "kinds"),
    KindInfo("Shell", "shells", "kinds"),
    KindInfo("Workspace", "workspaces", "kinds"),
    KindInfo("Bot", "bots", "kinds"),
    KindInfo("Team", "teams", "kinds"),
    KindInfo("Task", "tasks", "tasks"),
)
BY_KIND: dict[str, KindInfo] = {info.kind: info for info in KINDS}
BY_PLURAL: dict[str, KindInfo] = {info.plural: info for info in KINDS}
APPLY_ORDER: dict[str, int] = {info.kind: index for index, info in enumerate(KINDS)}
