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


def alias(name: str, *, description: str | None = None) -> Meta:
    """``Annotated[T, alias("snake_name", description=...)]``: the field also accepts
    ``snake_name`` on input (``wegent.resources.decode`` moves it; given both, they must be
    equal; the OpenAPI document shows it as a deprecated property). ``description`` is the
    field's, so that the field needs no second ``Meta``."""
    return Meta(extra={ALIAS_KEY: name}, description=description)


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

    systemPrompt: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=262144,
            description="The system prompt that defines the agent's personality, knowledge and "
            "behaviour.",
        ),
    ]
    mcpServers: (
        Annotated[
            FreeForm,
            Meta(
                description="MCP servers the agent can use as tools, by server name (the "
                "standard MCP server configuration: command, args, env, url, headers...)."
            ),
        ]
        | None
    ) = None
    skills: (
        Annotated[
            UniqueNames,
            Meta(
                description="Names of the Skills the agent can load, each a Skill in the same "
                "namespace or in public; no name twice."
            ),
        ]
        | None
    ) = None
    preloadSkills: (
        Annotated[
            NameList,
            alias(
                "preload_skills",
                description="Skills whose prompts are put into the system prompt from the "
                "start; each must also be listed in skills.",
            ),
        ]
        | None
    ) = None

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

    modelConfig: Annotated[
        FreeForm,
        Meta(
            description="How the runtime connects to the model, usually {env: {...}} with the "
            "model name, base URL and API key. Values in env whose key contains KEY, TOKEN, "
            'SECRET or PASSWORD are secrets: stored encrypted and answered as "***".'
        ),
    ]
    modelType: (
        Annotated[
            ModelType,
            Meta(
                description="What the model does: llm (the default), tts, stt, embedding, "
                "rerank, video or image."
            ),
        ]
        | None
    ) = None
    protocol: (
        Annotated[
            Token,
            Meta(
                description="The protocol the model speaks, such as openai or claude; needed "
                "when modelConfig is a custom configuration."
            ),
        ]
        | None
    ) = None
    apiFormat: (
        Annotated[
            Token,
            Meta(
                description="The API format of an OpenAI-compatible model: chat/completions "
                "(the usual one) or responses. Only used when protocol is openai."
            ),
        ]
        | None
    ) = None
    isCustomConfig: (
        Annotated[
            bool,
            Meta(
                description="True when modelConfig was written by the user rather than taken "
                "from a predefined model."
            ),
        ]
        | None
    ) = None
    contextWindow: (
        Annotated[PositiveInt, Meta(description="The model's context window, in tokens (legacy).")]
        | None
    ) = None
    maxOutputTokens: (
        Annotated[
            PositiveInt,
            Meta(description="The most tokens the model writes in one response (legacy)."),
        ]
        | None
    ) = None
    costIndex: Annotated[
        NonNegative | None,
        Meta(
            description="The model's relative usage cost, a number of at least 0; 1 is the "
            "baseline cost."
        ),
    ] = None

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

    shellType: Annotated[
        ShellType,
        alias(
            "runtime",
            description="The agent runtime: Chat, ClaudeCode, Agno or Dify. The input alias "
            "runtime is accepted too.",
        ),
    ]
    supportModel: (
        Annotated[
            list[ShortStr],
            Meta(
                max_length=64,
                description="The models (or model types) this shell supports; informational, "
                "not checked by the server.",
            ),
        ]
        | None
    ) = None
    baseImage: (
        Annotated[
            Url,
            Meta(
                description="The container image the runtime starts from, for shells that run "
                "locally (ClaudeCode, Agno)."
            ),
        ]
        | None
    ) = None
    baseShellRef: (
        Annotated[
            Name,
            Meta(
                description="Name of the public Shell this one is built on, such as "
                "ClaudeCode (a name, not a reference object)."
            ),
        ]
        | None
    ) = None
    requiresWorkspace: (
        Annotated[
            bool,
            Meta(
                description="Whether bots in this shell need a workspace (a git repository). "
                "When absent, local runtimes (ClaudeCode, Agno) do and the others do not."
            ),
        ]
        | None
    ) = None


class BotSpec(Strict):
    """A Ghost run in a Shell, optionally with a Model."""

    ghostRef: Annotated[
        ResourceRef,
        Meta(description="The Ghost that gives the bot its system prompt and tools."),
    ]
    shellRef: Annotated[
        ResourceRef,
        Meta(
            description="The Shell (runtime) the bot runs in; {name: ClaudeCode} finds the "
            "built-in public one."
        ),
    ]
    modelRef: Annotated[
        ResourceRef | None,
        Meta(description="The Model the bot uses, if it is bound to one."),
    ] = None
    secondaryModelRef: Annotated[
        ResourceRef | None,
        Meta(
            description="An LLM Model for auxiliary work (intent recognition, prompt "
            "merging), used when modelRef is a video model."
        ),
    ] = None


class TeamMember(Strict):
    """One bot of a team and how it takes part."""

    botRef: Annotated[ResourceRef, Meta(description="The Bot that takes part in the team.")]
    prompt: (
        Annotated[
            Prompt,
            Meta(description="Instructions for this member of the team only."),
        ]
        | None
    ) = None
    role: (
        Annotated[
            Token,
            Meta(
                description="The member's role, free text; at most one member of a team may "
                "have the role leader."
            ),
        ]
        | None
    ) = None
    requireConfirmation: (
        Annotated[
            bool,
            Meta(
                description="Pipeline mode: whether the user must confirm this stage's result "
                "before the next stage starts. Defaults to false."
            ),
        ]
        | None
    ) = None
    contextPassing: (
        Annotated[
            ContextPassing,
            Meta(
                description="Pipeline mode: what this stage passes to the next one: none (the "
                "default), original_user, previous_bot or original_and_previous."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.requireConfirmation is None:
            self.requireConfirmation = False
        if self.contextPassing is None:
            self.contextPassing = "none"


QuickPhrase = Annotated[str, Meta(max_length=120)]


class TeamSpec(Strict):
    """Bots working together."""

    members: Annotated[
        list[TeamMember],
        Meta(
            min_length=1,
            max_length=64,
            description="The bots of the team (1 to 64) and how each takes part; in pipeline "
            "mode, in the order they run.",
        ),
    ]
    collaborationModel: Annotated[
        CollaborationModel,
        Meta(
            description="How the members work together: solo, pipeline (one after another), "
            "route (one chosen per message), coordinate (a leader coordinates) or collaborate "
            "(all at once)."
        ),
    ]
    description: (
        Annotated[Description, Meta(description="What the team is for, shown to users.")] | None
    ) = None
    icon: (
        Annotated[Url, Meta(description="The team's icon: an icon id or an image URL.")] | None
    ) = None
    bindMode: (
        Annotated[
            BindMode,
            alias(
                "bind_mode",
                description="Where the team is offered, such as chat and code; an empty list "
                "for nowhere. The input alias bind_mode is accepted too.",
            ),
        ]
        | None
    ) = None
    quickPhrases: (
        Annotated[
            list[QuickPhrase],
            Meta(max_length=6),
            alias(
                "quick_phrases",
                description="Up to 6 suggested first messages (at most 120 characters each). "
                "The input alias quick_phrases is accepted too.",
            ),
        ]
        | None
    ) = None
    requiresWorkspace: (
        Annotated[
            bool,
            Meta(
                description="Whether tasks of this team need a workspace (a git repository). "
                "When absent, it follows from the members' shells."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        leaders = [i for i, member in enumerate(self.members) if member.role == "leader"]
        for index in leaders[1:]:
            errors.add(f"members[{index}].role", 'Duplicate value: "leader": at most one leader')
        errors.raise_if_any()


class SkillSpec(Strict):
    """A reusable capability a Ghost can load."""

    description: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=4096,
            description="When the skill should be used, as the description in the front "
            "matter of its SKILL.md says; agents read it to decide to load the skill.",
        ),
    ]
    displayName: (
        Annotated[ShortStr, Meta(description="A friendly name shown while the skill is in use.")]
        | None
    ) = None
    prompt: (
        Annotated[Prompt, Meta(description="The skill's full prompt (the body of its SKILL.md).")]
        | None
    ) = None
    version: (
        Annotated[
            Token,
            Meta(
                description="The skill's version, such as 1.0.0 (semantic versioning recommended)."
            ),
        ]
        | None
    ) = None
    author: (
        Annotated[ShortStr, Meta(description="Who wrote the skill: a person or an organization.")]
        | None
    ) = None
    tags: (
        Annotated[
            list[Annotated[str, Meta(max_length=63)]],
            Meta(
                max_length=64,
                description="Tags to find the skill by, such as python or debugging.",
            ),
        ]
        | None
    ) = None
    bindShells: (
        Annotated[
            list[Name],
            Meta(
                max_length=16,
                description="Names of the shells the skill works with, such as ClaudeCode, "
                "Agno, Dify or Chat; the skill is offered only in the shells listed.",
            ),
        ]
        | None
    ) = None
    mcpServers: (
        Annotated[
            FreeForm,
            Meta(
                description="MCP servers connected while the skill is loaded, whose tools the "
                "agent can then use (the standard MCP server configuration)."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "mcpServers", self.mcpServers)
        errors.raise_if_any()


class Repository(Strict):
    """The git repository a workspace checks out."""

    gitUrl: Annotated[
        Url,
        Meta(
            description="The URL the repository is cloned from, such as "
            "https://github.com/user/repo.git."
        ),
    ]
    gitRepo: Annotated[
        str,
        Meta(max_length=512, description="The repository's path on its host, such as user/repo."),
    ]
    branchName: Annotated[ShortStr, Meta(description="The branch to check out.")]
    gitDomain: Annotated[ShortStr, Meta(description="The git host, such as github.com.")]
    gitRepoId: (
        Annotated[
            int,
            Meta(
                ge=0,
                le=MAX_SAFE_INT,
                description="The repository's numeric id on its git host, when it has one.",
            ),
        ]
        | None
    ) = None


class WorkspaceSpec(Strict):
    repository: Annotated[
        Repository, Meta(description="The git repository and branch the workspace checks out.")
    ]


class TaskSpec(Strict):
    """A piece of work for a Team, optionally in a Workspace."""

    title: Annotated[
        str, Meta(min_length=1, max_length=255, description="A short title for the task.")
    ]
    prompt: Annotated[
        str,
        Meta(min_length=1, max_length=262144, description="What the team is asked to do."),
    ]
    teamRef: Annotated[ResourceRef, Meta(description="The Team that does the task.")]
    workspaceRef: Annotated[
        ResourceRef | None,
        Meta(description="The Workspace (git repository) the task works in, if any."),
    ] = None
    isGroupChat: (
        Annotated[
            bool,
            alias(
                "is_group_chat",
                description="Whether the task is a group chat; false when absent. The input "
                "alias is_group_chat is accepted too.",
            ),
        ]
        | None
    ) = None
    deviceId: (
        Annotated[
            str,
            Meta(min_length=1, max_length=100),
            alias(
                "device_id",
                description="The deviceId of the Device that runs the task. The input alias "
                "device_id is accepted too.",
            ),
        ]
        | None
    ) = None
    maxAttempts: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=100,
                description="How many times an executor's lease may expire before the task "
                "fails instead of being claimed again (API.md §17); 3 when absent.",
            ),
        ]
        | None
    ) = None
