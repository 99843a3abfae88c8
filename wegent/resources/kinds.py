"""Per-kind services: only what differs from the generic path (references, stored form)."""

from __future__ import annotations

from typing import Any

from wegent.resources.meta import ResourceRef
from wegent.resources.references import Reference
from wegent.resources.service import CRDService
from wegent.resources.specs import (
    BotSpec,
    GhostSpec,
    ModelSpec,
    ShellSpec,
    SkillSpec,
    TeamSpec,
    WorkspaceSpec,
)


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
    """Models hold secrets; how they are sealed and shown is added with the secrets module."""


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
}
