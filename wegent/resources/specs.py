"""One spec Struct per kind (API.md §2). Every string, list and map is bounded.

Cross-field rules live in ``__post_init__`` and report through :class:`FieldErrors`, whose
"`relative.path`: message" lines ``wegent.resources.decode`` turns into causes on the exact field.
Optional fields default to ``None`` and are omitted on encode; fields with a documented default
are filled in by ``__post_init__`` so that they always appear. An input alias (``runtime``,
``bind_mode``, upstream's snake_case names: API.md §2) is declared once, on its field, with
:func:`alias`; decoding takes it in place of the field, and answers use the field's name.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from wegent.resources.meta import (
    MAX_FREEFORM_KEYS,
    FieldErrors,
    Name,
    ResourceRef,
    check_freeform,
)

ShortStr = Annotated[str, Meta(max_length=255)]
Token = Annotated[str, Meta(max_length=64)]
Url = Annotated[str, Meta(max_length=2048)]
Prompt = Annotated[str, Meta(max_length=262144)]
Description = Annotated[str, Meta(max_length=4096)]
FreeForm = Annotated[dict[str, Any], Meta(max_length=MAX_FREEFORM_KEYS)]
NameList = Annotated[list[Name], Meta(max_length=64)]
MAX_SAFE_INT = 2**53 - 1  # the largest integer every JSON client (JavaScript too) reads exactly
PositiveInt = Annotated[int, Meta(ge=1, le=MAX_SAFE_INT)]
NonNegative = Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)] | Annotated[float, Meta(ge=0)]

ModelType = Literal["llm", "tts", "stt", "embedding", "rerank", "video", "image"]
ShellType = Literal["Chat", "ClaudeCode", "Agno", "Dify"]
ContextPassing = Literal["none", "original_user", "previous_bot", "original_and_previous"]
CollaborationModel = Literal["solo", "pipeline", "route", "coordinate", "collaborate"]
BindMode = Annotated[list[Token], Meta(max_length=16)]
# Documented here (OpenAPI), checked in ``__post_init__``.
UniqueNames = Annotated[NameList, Meta(extra_json_schema={"uniqueItems": True})]


ALIAS_KEY = "alias"


def alias(name: str) -> Meta:
    """``Annotated[T, alias("snake_name")]``: the field also accepts ``snake_name`` on input
    (``wegent.resources.decode`` moves it; given both, they must be equal; the OpenAPI document
    shows it as a deprecated property)."""
    return Meta(extra={ALIAS_KEY: name})


T = TypeVar("T")


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Base of every spec Struct: unknown fields refused, absent optionals omitted."""


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


def check_unique(errors: FieldErrors, field: str, items: list[str] | None) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items or []):
        if item in seen:
            errors.add(f"{field}[{index}]", f"Duplicate value: {_json(item)}")
        seen.add(item)


class GhostSpec(Strict):
    """A system prompt plus the tools (MCP servers, skills) a bot starts with."""

    systemPrompt: Annotated[str, Meta(min_length=1, max_length=262144)]
    mcpServers: FreeForm | None = None
    skills: UniqueNames | None = None
    preloadSkills: Annotated[NameList, alias("preload_skills")] | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "mcpServers", self.mcpServers)
        check_unique(errors, "skills", self.skills)
        skills = set(self.skills or [])
        for index, skill in enumerate(self.preloadSkills or []):
            if skill not in skills:
                errors.add(
                    f"preloadSkills[{index}]", f"Invalid value: {_json(skill)}: not one of skills"
                )
        errors.raise_if_any()


class ModelSpec(Strict):
    """Connection settings of a model; ``modelConfig.env`` may hold secrets (§8)."""

    modelConfig: FreeForm
    modelType: ModelType | None = None
    protocol: Token | None = None
    apiFormat: Token | None = None
    isCustomConfig: bool | None = None
    contextWindow: PositiveInt | None = None
    maxOutputTokens: PositiveInt | None = None
    costIndex: NonNegative | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "modelConfig", self.modelConfig)
        if self.modelType is None:
            self.modelType = "llm"
        if isinstance(self.costIndex, float) and not math.isfinite(self.costIndex):
            errors.add("costIndex", "Invalid value: must be a finite number")
        errors.raise_if_any()


class ShellSpec(Strict):
    """The runtime a bot runs in."""

    shellType: Annotated[ShellType, alias("runtime")]
    supportModel: Annotated[list[ShortStr], Meta(max_length=64)] | None = None
    baseImage: Url | None = None
    baseShellRef: Name | None = None
    requiresWorkspace: bool | None = None


class BotSpec(Strict):
    """A Ghost run in a Shell, optionally with a Model."""

    ghostRef: ResourceRef
    shellRef: ResourceRef
    modelRef: ResourceRef | None = None
    secondaryModelRef: ResourceRef | None = None


class TeamMember(Strict):
    """One bot of a team and how it takes part."""

    botRef: ResourceRef
    prompt: Prompt | None = None
    role: Token | None = None
    requireConfirmation: bool | None = None
    contextPassing: ContextPassing | None = None

    def __post_init__(self) -> None:
        if self.requireConfirmation is None:
            self.requireConfirmation = False
        if self.contextPassing is None:
            self.contextPassing = "none"


QuickPhrase = Annotated[str, Meta(max_length=120)]


class TeamSpec(Strict):
    """Bots working together."""

    members: Annotated[list[TeamMember], Meta(min_length=1, max_length=64)]
    collaborationModel: CollaborationModel
    description: Description | None = None
    icon: Url | None = None
    bindMode: Annotated[BindMode, alias("bind_mode")] | None = None
    quickPhrases: (
        Annotated[list[QuickPhrase], Meta(max_length=6), alias("quick_phrases")] | None
    ) = None
    requiresWorkspace: bool | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        leaders = [i for i, member in enumerate(self.members) if member.role == "leader"]
        for index in leaders[1:]:
            errors.add(f"members[{index}].role", 'Duplicate value: "leader": at most one leader')
        errors.raise_if_any()


class SkillSpec(Strict):
    """A reusable capability a Ghost can load."""

    description: Annotated[str, Meta(min_length=1, max_length=4096)]
    displayName: ShortStr | None = None
    prompt: Prompt | None = None
    version: Token | None = None
    author: ShortStr | None = None
    tags: Annotated[list[Annotated[str, Meta(max_length=63)]], Meta(max_length=64)] | None = None
    bindShells: Annotated[list[Name], Meta(max_length=16)] | None = None
    mcpServers: FreeForm | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "mcpServers", self.mcpServers)
        errors.raise_if_any()


class Repository(Strict):
    """The git repository a workspace checks out."""

    gitUrl: Url
    gitRepo: Annotated[str, Meta(max_length=512)]
    branchName: ShortStr
    gitDomain: ShortStr
    gitRepoId: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)] | None = None


class WorkspaceSpec(Strict):
    repository: Repository


class TaskSpec(Strict):
    """A piece of work for a Team, optionally in a Workspace."""

    title: Annotated[str, Meta(min_length=1, max_length=255)]
    prompt: Annotated[str, Meta(min_length=1, max_length=262144)]
    teamRef: ResourceRef
    workspaceRef: ResourceRef | None = None
    isGroupChat: Annotated[bool, alias("is_group_chat")] | None = None
    deviceId: Annotated[str, Meta(min_length=1, max_length=100), alias("device_id")] | None = None
