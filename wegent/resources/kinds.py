"""Per-kind services: only what differs from the generic path (references, stored form)."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from wegent.resources.meta import ResourceRef
from wegent.resources.references import Reference
from wegent.resources.secrets import (
    MASK,
    SecretBox,
    is_secret_key,
    open_model_spec,
    seal_model_spec,
)
from wegent.resources.service import Caller, CRDService
from wegent.resources.specs import (
    BotSpec,
    GhostSpec,
    ModelSpec,
    ShellSpec,
    SkillSpec,
    TeamSpec,
    WorkspaceSpec,
)
from wegent.resources.tasks import TaskService


class SkillService(CRDService[SkillSpec]):
    """Skills reference nothing."""


class GhostService(CRDService[GhostSpec]):
    """A Ghost's skills are Skill names, found in its namespace or ``public``."""

    def references(self, spec: GhostSpec) -> list[Reference]:
        return [
            Reference(f"spec.skills[{i}]", "Skill", ResourceRef(name=skill), write_back=False)
            for i, skill in enumerate(spec.skills or [])
        ]


class ModelService(CRDService[ModelSpec]):
    """Secrets in ``spec.modelConfig.env`` are sealed at rest and masked on the way out (§8)."""

    async def stored_spec(
        self, conn: asyncpg.Connection, caller: Caller, name: str, spec: ModelSpec
    ) -> str:
        sent: dict[str, Any] = msgspec.to_builtins(spec)
        stored_text = await conn.fetchval(self.sql.stored_spec, self.kind, caller.namespace, name)
        stored = msgspec.json.decode(stored_text) if stored_text else None
        unchanged = _keep_unchanged(sent, stored, self.deps.box)
        sealed = seal_model_spec(unchanged, stored, self.deps.box, name=name)
        return msgspec.json.encode(sealed).decode()

    def present_spec(self, stored: str, reveal: bool) -> bytes | None:
        opened = open_model_spec(msgspec.json.decode(stored), self.deps.box, reveal=reveal)
        return msgspec.json.encode(opened)


def _keep_unchanged(
    sent: dict[str, Any], stored: dict[str, Any] | None, box: SecretBox
) -> dict[str, Any]:
    """A secret sent again in plain text, equal to the stored one, keeps its sealed form, so an
    unchanged write stays a no-op (same resourceVersion) instead of re-encrypting."""
    env = (sent.get("modelConfig") or {}).get("env")
    stored_env = ((stored or {}).get("modelConfig") or {}).get("env")
    if not isinstance(env, dict) or not isinstance(stored_env, dict):
        return sent
    shown = open_model_spec(stored or {}, box, reveal=True)["modelConfig"]["env"]
    kept = {
        key: MASK
        if is_secret_key(key) and isinstance(value, str) and shown.get(key) == value
        else value
        for key, value in env.items()
    }
    return {**sent, "modelConfig": {**sent["modelConfig"], "env": kept}}


class ShellService(CRDService[ShellSpec]):
    """Shells reference nothing."""


class WorkspaceService(CRDService[WorkspaceSpec]):
    """Workspaces reference nothing."""


class BotService(CRDService[BotSpec]):
    """A Bot is a Ghost run in a Shell, with up to two Models."""

    def references(self, spec: BotSpec) -> list[Reference]:
        found = [
            Reference("spec.ghostRef", "Ghost", spec.ghostRef),
            Reference("spec.shellRef", "Shell", spec.shellRef),
        ]
        if spec.modelRef is not None:
            found.append(Reference("spec.modelRef", "Model", spec.modelRef))
        if spec.secondaryModelRef is not None:
            found.append(Reference("spec.secondaryModelRef", "Model", spec.secondaryModelRef))
        return found


class TeamService(CRDService[TeamSpec]):
    """A Team references each member's Bot."""

    def references(self, spec: TeamSpec) -> list[Reference]:
        return [
            Reference(f"spec.members[{i}].botRef", "Bot", member.botRef)
            for i, member in enumerate(spec.members)
        ]


SERVICES: dict[str, type[CRDService[Any]]] = {
    "Skill": SkillService,
    "Ghost": GhostService,
    "Model": ModelService,
    "Shell": ShellService,
    "Workspace": WorkspaceService,
    "Bot": BotService,
    "Team": TeamService,
    "Task": TaskService,
}
