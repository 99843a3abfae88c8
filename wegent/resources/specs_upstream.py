"""Spec Structs of the five kinds whose shapes come from upstream Wegent (API.md §2).

Field names are the ones upstream writes into its stored JSON (``backend/app/schemas/kind.py``,
``template.py``, ``connector.py`` and ``docs/en/wegent/reference/yaml-specification.md`` in
wecode-ai/Wegent), so that a manifest exported from upstream decodes here unchanged. That is
camelCase almost everywhere; the few nested snake_case names (a Template skill reference's
``user_id``, a ConnectorApp HTTP tool's ``input_schema``, ``argument_locations``,
``timeout_seconds``) are kept because upstream reads and writes exactly those keys.

The conventions are those of ``wegent.resources.specs``: every string, list and map is bounded
(upstream's own bound where it has one, so that whatever upstream accepts fits); rules across
fields are checked in ``__post_init__`` and reported through :class:`FieldErrors`; optional
fields default to ``None`` and are omitted on encode; a field upstream fills with a default is
filled here by ``__post_init__``, so that answers carry what upstream would have stored.
``docs/notes/upstream-kinds.md`` lists every field, its bound and what was left out.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from wegent.names import NAME_PATTERN
from wegent.resources.meta import (
    MAX_FREEFORM_KEYS,
    FieldErrors,
    Name,
    NamespaceName,
    ResourceRef,
    check_freeform,
)
from wegent.resources.specs import (
    MAX_SAFE_INT,
    BindMode,
    CollaborationModel,
    Description,
    FreeForm,
    ShortStr,
    Strict,
    Token,
    Url,
)

NonEmptyShort = Annotated[str, Meta(min_length=1, max_length=255)]
# A password or API key: far longer than any real one, and "***" (§8) always fits.
Secret = Annotated[str, Meta(max_length=4096)]
Tags = Annotated[list[Annotated[str, Meta(max_length=63)]], Meta(max_length=64)]
Weight = Annotated[float, Meta(ge=0.0, le=1.0)]


def _quote(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _describe(value: object) -> str:
    """A short rendering of a rejected free-form value, as decoding renders one."""
    if isinstance(value, str):
        return _quote(value if len(value) <= 64 else value[:64] + "...")
    if value is None or isinstance(value, bool | int | float):
        return _quote(value)
    return "array" if isinstance(value, list) else "object"


# --- Retriever ------------------------------------------------------------------------------

StorageType = Literal["elasticsearch", "qdrant"]
IndexMode = Literal["fixed", "rolling", "per_dataset", "per_user"]
# Upstream's map is open, but only these three are ever read (KnowledgeBase retrieval_mode).
RetrievalMethodName = Literal["vector", "keyword", "hybrid"]


class IndexStrategy(Strict):
    """How a retriever names its indices. Names are index names: at most 255 bytes in
    Elasticsearch, hence ShortStr."""

    mode: Annotated[
        IndexMode,
        Meta(
            description="How index names are chosen: fixed (always the index fixedName), rolling "
            "(rollingStep knowledge bases per index), per_dataset (one per knowledge base) or "
            "per_user (one per user)."
        ),
    ]
    fixedName: (
        Annotated[
            NonEmptyShort,
            Meta(description='The index used in mode fixed; required when mode is "fixed".'),
        ]
        | None
    ) = None
    rollingStep: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_SAFE_INT,
                description="In mode rolling, how many knowledge bases share one index (10 when "
                "absent).",
            ),
        ]
        | None
    ) = None
    prefix: (
        Annotated[
            NonEmptyShort,
            Meta(
                description="The start of index names in modes rolling, per_dataset and "
                "per_user (wegent when absent)."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        # Upstream only fails when the first document is indexed; a write is the better time.
        # rollingStep and prefix have run-time defaults upstream (10, "wegent"), so they stay
        # optional.
        errors = FieldErrors()
        if self.mode == "fixed" and self.fixedName is None:
            errors.add("fixedName", 'Required value: mode is "fixed"')
        errors.raise_if_any()


class StorageConfig(Strict):
    """Where a retriever's vectors live. ``password`` and ``apiKey`` are secrets (§8)."""

    type: Annotated[StorageType, Meta(description="The vector store: elasticsearch or qdrant.")]
    url: Annotated[Url, Meta(description="The URL the vector store is reached at.")]
    indexStrategy: Annotated[
        IndexStrategy, Meta(description="How the indices in the store are named.")
    ]
    username: (
        Annotated[ShortStr, Meta(description="The username to connect with, if any.")] | None
    ) = None
    password: (
        Annotated[
            Secret,
            Meta(
                description="The password to connect with. A secret: stored encrypted and "
                'answered as "***" unless revealed (?reveal=true).'
            ),
        ]
        | None
    ) = None
    apiKey: (
        Annotated[
            Secret,
            Meta(
                description="An API key to connect with, instead of username and password. A "
                'secret: stored encrypted and answered as "***" unless revealed.'
            ),
        ]
        | None
    ) = None
    ext: (
        Annotated[FreeForm, Meta(description="Further settings specific to the vector store.")]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "ext", self.ext)
        errors.raise_if_any()


class RetrievalMethod(Strict):
    """One search method; weights are shares of a hybrid score, hence 0-1 (upstream's
    HybridWeights bounds)."""

    enabled: (
        Annotated[bool, Meta(description="Whether the method may be used; true when absent.")]
        | None
    ) = None
    defaultWeight: (
        Annotated[
            Weight,
            Meta(description="The method's default share of a hybrid search score, 0 to 1."),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.enabled is None:
            self.enabled = True


class RetrieverSpec(Strict):
    """A vector store a knowledge base retrieves from."""

    storageConfig: Annotated[
        StorageConfig,
        Meta(description="The vector store: what it is, where, and how to connect to it."),
    ]
    retrievalMethods: (
        Annotated[
            dict[RetrievalMethodName, RetrievalMethod],
            Meta(
                extra_json_schema={"propertyNames": {"enum": list(get_args(RetrievalMethodName))}},
                description="The search methods offered, by name: vector, keyword, hybrid. When "
                "absent, all three, with default weights 0.7 (vector) and 0.3 (keyword).",
            ),
        ]
        | None
    ) = None
    description: (
        Annotated[Description, Meta(description="What the retriever is for, shown to users.")]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.retrievalMethods is None:  # upstream's default_factory
            self.retrievalMethods = {
                "vector": RetrievalMethod(enabled=True, defaultWeight=0.7),
                "keyword": RetrievalMethod(enabled=True, defaultWeight=0.3),
                "hybrid": RetrievalMethod(enabled=True),
            }


# --- Device ---------------------------------------------------------------------------------

DeviceType = Literal["local", "app", "cloud", "remote"]
ConnectionMode = Literal["websocket"]
BindShell = Literal["claudecode", "openclaw"]


class DeviceSpec(Strict):
    """A machine that runs tasks. Upstream caps device ids and names at 100 (its column
    widths); the defaults filled in are the ones upstream reports for a device without them."""

    deviceId: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            description="The device's unique id, which the device makes itself (such as a "
            "MAC address or a UUID) and registers and reports with.",
        ),
    ]
    displayName: (
        Annotated[
            str,
            Meta(min_length=1, max_length=100, description="A human-readable name for the device."),
        ]
        | None
    ) = None
    deviceType: (
        Annotated[
            DeviceType,
            Meta(
                description="What the device is: local (the default), app, cloud, or remote (a "
                "container or host the user manages)."
            ),
        ]
        | None
    ) = None
    connectionMode: (
        Annotated[
            ConnectionMode,
            Meta(description="How the device connects to the server: websocket (the default)."),
        ]
        | None
    ) = None
    bindShell: (
        Annotated[
            BindShell,
            Meta(
                description="The agent runtime on the device: claudecode (the default) or openclaw."
            ),
        ]
        | None
    ) = None
    isDefault: (
        Annotated[
            bool,
            Meta(
                description="Whether this is the default device; a namespace has at most one "
                "live default (409 Conflict otherwise). False when absent."
            ),
        ]
        | None
    ) = None
    capabilities: (
        Annotated[Tags, Meta(description="Capability tags, such as gpu or high-memory.")] | None
    ) = None
    cloudConfig: (
        Annotated[
            FreeForm,
            Meta(description="Settings of a cloud device (deviceType cloud only)."),
        ]
        | None
    ) = None
    remoteConfig: (
        Annotated[
            FreeForm,
            Meta(
                description="Settings of a remote device (deviceType remote only); no secrets "
                "belong here."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "cloudConfig", self.cloudConfig)
        check_freeform(errors, "remoteConfig", self.remoteConfig)
        errors.raise_if_any()
        if self.deviceType is None:
            self.deviceType = "local"
        if self.connectionMode is None:
            self.connectionMode = "websocket"
        if self.bindShell is None:
            self.bindShell = "claudecode"
        if self.isDefault is None:
            self.isDefault = False


# --- Template -------------------------------------------------------------------------------

# The values of the WorkQueue a template creates: anything else fails only at instantiation.
QueueVisibility = Literal["private", "public", "group_visible", "invite_only"]
TriggerMode = Literal["immediate", "manual", "scheduled", "condition_based"]


class TemplateSkillRef(Strict):
    """A skill by owner as well as name: upstream names can repeat across owners. ``user_id``
    keeps upstream's snake_case key (0 means a public skill)."""

    name: Annotated[Name, Meta(description="The Skill's name.")]
    user_id: Annotated[
        int,
        Meta(
            ge=0,
            le=MAX_SAFE_INT,
            description="The id of the user who owns the skill; 0 for a public skill.",
        ),
    ]
    namespace: Annotated[NamespaceName, Meta(description="The Skill's namespace.")] | None = None


SkillRefs = Annotated[list[TemplateSkillRef], Meta(max_length=64)]


def _check_unique_refs(errors: FieldErrors, field: str, refs: list[TemplateSkillRef]) -> None:
    """Upstream refuses a repeated skill name when it instantiates; refuse it on write."""
    seen: set[str] = set()
    for index, ref in enumerate(refs):
        if ref.name in seen:
            errors.add(f"{field}[{index}].name", f"Duplicate value: {_quote(ref.name)}")
        seen.add(ref.name)


class TemplateGhostConfig(Strict):
    """The Ghost a template creates."""

    systemPrompt: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=262144,
            description="The system prompt of the Ghost the template creates.",
        ),
    ]
    mcpServers: (
        Annotated[
            FreeForm,
            Meta(
                description="MCP servers the Ghost can use as tools, by server name (the "
                "standard MCP server configuration)."
            ),
        ]
        | None
    ) = None
    skillRefs: (
        Annotated[
            SkillRefs,
            Meta(description="Skills the Ghost can load, each by name and owner; no name twice."),
        ]
        | None
    ) = None
    preloadSkillRefs: (
        Annotated[
            SkillRefs,
            Meta(
                description="Skills whose prompts are put into the Ghost's system prompt from "
                "the start; no name twice."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "mcpServers", self.mcpServers)
        _check_unique_refs(errors, "skillRefs", self.skillRefs or [])
        _check_unique_refs(errors, "preloadSkillRefs", self.preloadSkillRefs or [])
        errors.raise_if_any()


class TemplateBotConfig(Strict):
    """The Bot a template creates; ``agentConfig`` holds upstream's bind_model settings
    (``bind_model``, ``bind_model_type``, ``bind_model_namespace``)."""

    shellName: (
        Annotated[
            Name,
            Meta(
                description="The name of the Shell the Bot runs in, such as ClaudeCode; Chat "
                "when absent."
            ),
        ]
        | None
    ) = None
    agentConfig: (
        Annotated[
            FreeForm,
            Meta(
                description="The Bot's model binding: bind_model, bind_model_type and "
                "bind_model_namespace (the key namespace is refused)."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "agentConfig", self.agentConfig)
        if self.agentConfig is not None and "namespace" in self.agentConfig:
            # Upstream refuses the legacy key on write rather than guess what it meant.
            errors.add("agentConfig.namespace", "Forbidden: use bind_model_namespace")
        errors.raise_if_any()
        if self.shellName is None:
            self.shellName = "Chat"


class TemplateTeamConfig(Strict):
    """The Team a template creates; its values must be valid for a Team."""

    collaborationModel: (
        Annotated[
            CollaborationModel,
            Meta(
                description="How the Team's members work together, as in a Team: solo, "
                "pipeline (the default), route, coordinate or collaborate."
            ),
        ]
        | None
    ) = None
    bindMode: (
        Annotated[BindMode, Meta(description="Where the Team is offered, such as chat and code.")]
        | None
    ) = None
    description: (
        Annotated[Description, Meta(description="What the Team is for, shown to users.")] | None
    ) = None

    def __post_init__(self) -> None:
        if self.collaborationModel is None:
            self.collaborationModel = "pipeline"


class TemplateSubscriptionConfig(Strict):
    """How inbox messages are processed; the ranges are upstream's."""

    promptTemplate: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=262144,
            description="The prompt each inbox message is processed with.",
        ),
    ]
    retryCount: (
        Annotated[
            int,
            Meta(
                ge=0, le=3, description="How often a failed run is retried, 0 to 3; 1 when absent."
            ),
        ]
        | None
    ) = None
    timeoutSeconds: (
        Annotated[
            int,
            Meta(
                ge=60,
                le=3600,
                description="How long one run may take, 60 to 3600 seconds; 600 when absent.",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.retryCount is None:
            self.retryCount = 1
        if self.timeoutSeconds is None:
            self.timeoutSeconds = 600


class TemplateQueueConfig(Strict):
    """The work queue a template creates; ``teamRef`` points it at an existing Team."""

    visibility: (
        Annotated[
            QueueVisibility,
            Meta(
                description="Who can see the work queue: private (the default), public, "
                "group_visible or invite_only."
            ),
        ]
        | None
    ) = None
    triggerMode: (
        Annotated[
            TriggerMode,
            Meta(
                description="When queued messages are processed: immediate (the default), "
                "manual, scheduled or condition_based."
            ),
        ]
        | None
    ) = None
    teamRef: Annotated[
        ResourceRef | None,
        Meta(
            description="An existing Team that processes the queue's messages; not checked "
            "when the template is written."
        ),
    ] = None

    def __post_init__(self) -> None:
        if self.visibility is None:
            self.visibility = "private"
        if self.triggerMode is None:
            self.triggerMode = "immediate"


class TemplateResources(Strict):
    """The bundle a template instantiates; every part optional, ``queue`` defaulted as
    upstream does."""

    ghost: Annotated[
        TemplateGhostConfig | None, Meta(description="The Ghost the template creates.")
    ] = None
    bot: Annotated[TemplateBotConfig | None, Meta(description="The Bot the template creates.")] = (
        None
    )
    team: Annotated[
        TemplateTeamConfig | None, Meta(description="The Team the template creates.")
    ] = None
    subscription: Annotated[
        TemplateSubscriptionConfig | None,
        Meta(description="The subscription that processes the queue's inbox messages."),
    ] = None
    queue: Annotated[
        TemplateQueueConfig | None,
        Meta(description="The work queue the template creates; its defaults when absent."),
    ] = None

    def __post_init__(self) -> None:
        if self.queue is None:
            self.queue = TemplateQueueConfig()


class TemplateSpec(Strict):
    """A preset bundle of resources. Display fields carry upstream's bounds (100, 500)."""

    resources: Annotated[
        TemplateResources,
        Meta(description="The resources the template creates when it is instantiated."),
    ]
    displayName: (
        Annotated[
            str,
            Meta(min_length=1, max_length=100, description="The template's name shown to users."),
        ]
        | None
    ) = None
    description: (
        Annotated[
            str,
            Meta(max_length=500, description="What the template is for, shown to users."),
        ]
        | None
    ) = None
    category: (
        Annotated[Token, Meta(description="The template's category; inbox when absent.")] | None
    ) = None
    icon: (
        Annotated[Url, Meta(description="The template's icon: an emoji or an image URL.")] | None
    ) = None
    tags: Annotated[Tags, Meta(description="Tags to filter templates by.")] | None = None

    def __post_init__(self) -> None:
        if self.category is None:
            self.category = "inbox"


# --- ConnectorApp ---------------------------------------------------------------------------

Visibility = Literal["all", "roles"]
AuthType = Literal["none"]  # the only one upstream supports now
Transport = Literal["streamable-http", "sse", "http"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ArgumentLocation = Literal["path", "query", "body"]

TOOL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$(?!\n)"
ToolName = Annotated[str, Meta(min_length=1, max_length=100, pattern=TOOL_NAME_PATTERN)]
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
_MAX_TOOLS = 100


def _http_url_problem(value: str) -> str | None:
    """Upstream's rule for the MCP URL: http(s), a host, no credentials in it."""
    try:
        parsed = urlsplit(value)
        host = parsed.hostname
        credentials = parsed.username is not None or parsed.password is not None
    except ValueError:
        return "must be a valid URL"
    if parsed.scheme not in ("http", "https") or not host:
        return "must be an http or https URL with a host"
    if credentials:
        return "must not contain credentials"
    return None


class ConnectorHttpTool(Strict):
    """One HTTP operation offered as an MCP tool. Keys are snake_case as upstream stores them;
    bounds and rules are upstream's, except the JSON Schema meta-validation of
    ``input_schema``, which needs a validator this service does not carry."""

    name: Annotated[
        ToolName,
        Meta(
            description="The tool's name, unique in the app: a letter or digit, then letters, "
            "digits, '_', '.' or '-'."
        ),
    ]
    path: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=2048,
            description="The path the tool calls, below mcpUrl: it starts with / and may hold "
            "{placeholders}, each a required property of input_schema.",
        ),
    ]
    description: (
        Annotated[
            str, Meta(max_length=10000, description="What the tool does, shown to the agent.")
        ]
        | None
    ) = None
    method: (
        Annotated[
            HttpMethod,
            Meta(description="The HTTP method: GET, POST (the default), PUT, PATCH or DELETE."),
        ]
        | None
    ) = None
    input_schema: (
        Annotated[
            FreeForm,
            Meta(
                description="A JSON Schema of the tool's arguments: an object schema (type "
                "object) with properties and required."
            ),
        ]
        | None
    ) = None
    argument_locations: (
        Annotated[
            dict[ShortStr, ArgumentLocation],
            Meta(
                max_length=MAX_FREEFORM_KEYS,
                description="Where each argument goes, by input_schema property: path, query "
                "or body. A path argument needs its {placeholder} in path.",
            ),
        ]
        | None
    ) = None
    timeout_seconds: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=120,
                description="How long a call may take, 1 to 120 seconds; 30 when absent.",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "input_schema", self.input_schema)
        self._check_path(errors)
        properties, required = self._schema(errors)
        if properties is not None:
            self._check_arguments(errors, properties, required)
        errors.raise_if_any()
        if self.method is None:
            self.method = "POST"
        if self.timeout_seconds is None:
            self.timeout_seconds = 30

    def _check_path(self, errors: FieldErrors) -> None:
        try:
            parsed = urlsplit(self.path)
            relative = not (parsed.scheme or parsed.netloc or parsed.query or parsed.fragment)
        except ValueError:
            relative = False
        if not (relative and self.path.startswith("/")):
            errors.add(
                "path",
                f"Invalid value: {_quote(self.path)}: must be an absolute path "
                "(starting with /, no scheme, host, query or fragment)",
            )

    def _schema(self, errors: FieldErrors) -> tuple[dict[str, Any] | None, list[Any]]:
        """The schema's properties and required names; None when the schema is unusable."""
        schema = self.input_schema or {}
        if (kind := schema.get("type", "object")) != "object":
            message = f'Unsupported value: {_describe(kind)}: supported values: "object"'
            errors.add("input_schema.type", message)
            return None, []
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            errors.add("input_schema.properties", "Invalid value: must be an object")
            return None, []
        required = schema.get("required", [])
        if not isinstance(required, list):
            errors.add("input_schema.required", "Invalid value: must be an array")
            return None, []
        return properties, required

    def _check_arguments(
        self, errors: FieldErrors, properties: dict[str, Any], required: list[Any]
    ) -> None:
        locations = self.argument_locations or {}
        for name, location in locations.items():
            if name not in properties:
                errors.add(
                    f"argument_locations[{name}]",
                    f"Invalid value: {_quote(name)}: not a property of input_schema",
                )
            elif location == "path" and "{" + name + "}" not in self.path:
                errors.add(
                    f"argument_locations[{name}]",
                    f"Invalid value: {_quote(name)}: a path argument needs the placeholder "
                    f"{_quote('{' + name + '}')} in path",
                )
        for placeholder in dict.fromkeys(_PLACEHOLDER.findall(self.path)):
            if placeholder not in properties or placeholder not in required:
                errors.add(
                    "path",
                    f"Invalid value: {_quote(placeholder)}: a path placeholder must be a "
                    "required property of input_schema",
                )


class ConnectorAppSpec(Strict):
    """An external app offered to users as MCP tools. ``allowedUsers`` is API.md's (usernames);
    the other fields and bounds are upstream's."""

    name: Annotated[
        str, Meta(min_length=1, max_length=200, description="The app's name shown to users.")
    ]
    description: (
        Annotated[str, Meta(max_length=10000, description="What the app offers, shown to users.")]
        | None
    ) = None
    iconUrl: Annotated[Url, Meta(description="The URL of the app's icon.")] | None = None
    enabled: (
        Annotated[
            bool,
            Meta(
                description="Whether the app is offered; disabled apps are hidden. True when "
                "absent."
            ),
        ]
        | None
    ) = None
    visibility: (
        Annotated[
            Visibility,
            Meta(
                description="Who can use the app: all (the default), or roles: only users with "
                "one of allowedRoles."
            ),
        ]
        | None
    ) = None
    allowedRoles: (
        Annotated[
            list[Token],
            Meta(
                max_length=64,
                description="The user roles that may use the app; required when visibility "
                'is "roles".',
            ),
        ]
        | None
    ) = None
    allowedUsers: (
        Annotated[
            list[NamespaceName],
            Meta(
                max_length=MAX_FREEFORM_KEYS,
                description="Usernames of the users allowed to use the app.",
            ),
        ]
        | None
    ) = None
    authType: (
        Annotated[
            AuthType,
            Meta(description="How users authenticate to the app: none, the only type supported."),
        ]
        | None
    ) = None
    transport: (
        Annotated[
            Transport,
            Meta(
                description="How the app is reached: streamable-http (the default) or sse for an "
                "MCP server, or http for a plain HTTP API described by httpTools."
            ),
        ]
        | None
    ) = None
    mcpUrl: (
        Annotated[
            Url,
            Meta(
                description="The MCP endpoint, or with transport http the base URL of the API: "
                "http or https, with a host and no credentials."
            ),
        ]
        | None
    ) = None
    toolAllowlist: (
        Annotated[
            list[ToolName],
            Meta(
                max_length=_MAX_TOOLS,
                description="The names of the tools that may be discovered and called; with "
                "transport http, each must name one of httpTools.",
            ),
        ]
        | None
    ) = None
    httpTools: (
        Annotated[
            list[ConnectorHttpTool],
            Meta(
                max_length=_MAX_TOOLS,
                description="HTTP operations offered as MCP tools, names unique: required with "
                "transport http and refused otherwise.",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.enabled is None:
            self.enabled = True
        if self.visibility is None:
            self.visibility = "all"
        if self.authType is None:
            self.authType = "none"
        if self.transport is None:
            self.transport = "streamable-http"
        errors = FieldErrors()
        if self.visibility == "roles" and not self.allowedRoles:
            errors.add("allowedRoles", 'Required value: visibility is "roles"')
        if self.mcpUrl is not None and (problem := _http_url_problem(self.mcpUrl)):
            errors.add("mcpUrl", f"Invalid value: {_quote(self.mcpUrl)}: {problem}")
        self._check_tools(errors)
        errors.raise_if_any()

    def _check_tools(self, errors: FieldErrors) -> None:
        tools = self.httpTools or []
        if self.transport != "http":
            if tools:
                errors.add("httpTools", 'Forbidden: only for transport "http"')
            return
        if not tools:
            errors.add("httpTools", 'Required value: transport is "http"')
        names = [tool.name for tool in tools]
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                errors.add(f"httpTools[{index}].name", f"Duplicate value: {_quote(name)}")
            seen.add(name)
        for index, name in enumerate(self.toolAllowlist or []):
            if name not in seen:
                errors.add(
                    f"toolAllowlist[{index}]",
                    f"Invalid value: {_quote(name)}: not the name of one of httpTools",
                )


# --- Collaboration --------------------------------------------------------------------------

MAX_STEPS = 64
MAX_PARTICIPANTS = 64
_NAME = re.compile(NAME_PATTERN)
_BOT_NAME = (
    "must be a Bot name: 1-63 characters of A-Z, a-z, 0-9, '-', '_' or '.', "
    "starting and ending with a letter or digit"
)


class CollaborationSpec(Strict):
    """How the bots of a team take turns.

    ``config`` is either the workflow form ``{steps: [{name, participants: [Bot names]}]}`` or
    any other object. msgspec cannot say "this Struct or any object" (a union may hold only one
    object-like type), and a Struct would drop or refuse the keys of the free-form case, so
    ``config`` is a bounded free-form object and ``__post_init__`` checks ``steps`` when it is
    there, reporting each problem on its exact path (``config.steps[1].participants[0]``).
    Other keys, beside ``steps`` or inside a step, stay free-form: fieldValidation cannot apply
    to them, since a Warn would have to drop them, which a free-form value cannot express.
    """

    type: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=64,
            description="The kind of collaboration, such as workflow.",
        ),
    ]
    config: (
        Annotated[
            FreeForm,
            Meta(
                description="The collaboration's settings: for a workflow, {steps: [{name, "
                "participants: [Bot names]}]}; any other object otherwise."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "config", self.config)
        if self.config is not None and "steps" in self.config:
            _check_steps(errors, "config.steps", self.config["steps"])
        errors.raise_if_any()


def _check_steps(errors: FieldErrors, field: str, steps: object) -> None:
    if not isinstance(steps, list):
        errors.add(field, "Invalid value: must be an array of {name, participants}")
        return
    if not steps:
        errors.add(field, "Invalid value: must have at least 1 item")
    if len(steps) > MAX_STEPS:
        errors.add(field, f"Too many: {len(steps)}: must have at most {MAX_STEPS} items")
        return
    for index, step in enumerate(steps):
        at = f"{field}[{index}]"
        if not isinstance(step, dict):
            errors.add(at, "Invalid value: must be an object with name and participants")
            continue
        _check_step_name(errors, f"{at}.name", step)
        _check_participants(errors, f"{at}.participants", step)


def _check_step_name(errors: FieldErrors, field: str, step: dict[str, Any]) -> None:
    if "name" not in step:
        errors.add(field, "Required value")
    elif not isinstance(step["name"], str) or not step["name"]:
        errors.add(field, "Invalid value: must be a non-empty string")
    elif len(step["name"]) > 255:
        errors.add(field, "Too long: must have at most 255 characters")


def _check_participants(errors: FieldErrors, field: str, step: dict[str, Any]) -> None:
    if "participants" not in step:
        errors.add(field, "Required value")
        return
    participants = step["participants"]
    if not isinstance(participants, list):
        errors.add(field, "Invalid value: must be an array of Bot names")
        return
    if not participants:
        errors.add(field, "Invalid value: must have at least 1 item")
    if len(participants) > MAX_PARTICIPANTS:
        message = f"Too many: {len(participants)}: must have at most {MAX_PARTICIPANTS} items"
        errors.add(field, message)
        return
    seen: set[str] = set()
    for index, name in enumerate(participants):
        if not (isinstance(name, str) and len(name) <= 63 and _NAME.match(name)):
            errors.add(f"{field}[{index}]", f"Invalid value: {_describe(name)}: {_BOT_NAME}")
        elif name in seen:
            errors.add(f"{field}[{index}]", f"Duplicate value: {_quote(name)}")
        else:
            seen.add(name)
