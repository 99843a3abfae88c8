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

    mode: IndexMode
    fixedName: NonEmptyShort | None = None
    rollingStep: Annotated[int, Meta(ge=1, le=MAX_SAFE_INT)] | None = None
    prefix: NonEmptyShort | None = None

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

    type: StorageType
    url: Url
    indexStrategy: IndexStrategy
    username: ShortStr | None = None
    password: Secret | None = None
    apiKey: Secret | None = None
    ext: FreeForm | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "ext", self.ext)
        errors.raise_if_any()


class RetrievalMethod(Strict):
    """One search method; weights are shares of a hybrid score, hence 0-1 (upstream's
    HybridWeights bounds)."""

    enabled: bool | None = None
    defaultWeight: Weight | None = None

    def __post_init__(self) -> None:
        if self.enabled is None:
            self.enabled = True


class RetrieverSpec(Strict):
    """A vector store a knowledge base retrieves from."""

    storageConfig: StorageConfig
    retrievalMethods: (
        Annotated[
            dict[RetrievalMethodName, RetrievalMethod],
            Meta(
                extra_json_schema={"propertyNames": {"enum": list(get_args(RetrievalMethodName))}}
            ),
        ]
        | None
    ) = None
    description: Description | None = None

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

    deviceId: Annotated[str, Meta(min_length=1, max_length=100)]
    displayName: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    deviceType: DeviceType | None = None
    connectionMode: ConnectionMode | None = None
    bindShell: BindShell | None = None
    isDefault: bool | None = None
    capabilities: Tags | None = None
    cloudConfig: FreeForm | None = None
    remoteConfig: FreeForm | None = None

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

    name: Name
    user_id: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    namespace: NamespaceName | None = None


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

    systemPrompt: Annotated[str, Meta(min_length=1, max_length=262144)]
    mcpServers: FreeForm | None = None
    skillRefs: SkillRefs | None = None
    preloadSkillRefs: SkillRefs | None = None

    def __post_init__(self) -> None:
        errors = FieldErrors()
        check_freeform(errors, "mcpServers", self.mcpServers)
        _check_unique_refs(errors, "skillRefs", self.skillRefs or [])
        _check_unique_refs(errors, "preloadSkillRefs", self.preloadSkillRefs or [])
        errors.raise_if_any()


class TemplateBotConfig(Strict):
    """The Bot a template creates; ``agentConfig`` holds upstream's bind_model settings
    (``bind_model``, ``bind_model_type``, ``bind_model_namespace``)."""

    shellName: Name | None = None
    agentConfig: FreeForm | None = None

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

    collaborationModel: CollaborationModel | None = None
    bindMode: BindMode | None = None
    description: Description | None = None

    def __post_init__(self) -> None:
        if self.collaborationModel is None:
            self.collaborationModel = "pipeline"


class TemplateSubscriptionConfig(Strict):
    """How inbox messages are processed; the ranges are upstream's."""

    promptTemplate: Annotated[str, Meta(min_length=1, max_length=262144)]
    retryCount: Annotated[int, Meta(ge=0, le=3)] | None = None
    timeoutSeconds: Annotated[int, Meta(ge=60, le=3600)] | None = None

    def __post_init__(self) -> None:
        if self.retryCount is None:
            self.retryCount = 1
        if self.timeoutSeconds is None:
            self.timeoutSeconds = 600


class TemplateQueueConfig(Strict):
    """The work queue a template creates; ``teamRef`` points it at an existing Team."""

    visibility: QueueVisibility | None = None
    triggerMode: TriggerMode | None = None
    teamRef: ResourceRef | None = None

    def __post_init__(self) -> None:
        if self.visibility is None:
            self.visibility = "private"
        if self.triggerMode is None:
            self.triggerMode = "immediate"


class TemplateResources(Strict):
    """The bundle a template instantiates; every part optional, ``queue`` defaulted as
    upstream does."""

    ghost: TemplateGhostConfig | None = None
    bot: TemplateBotConfig | None = None
    team: TemplateTeamConfig | None = None
    subscription: TemplateSubscriptionConfig | None = None
    queue: TemplateQueueConfig | None = None

    def __post_init__(self) -> None:
        if self.queue is None:
            self.queue = TemplateQueueConfig()


class TemplateSpec(Strict):
    """A preset bundle of resources. Display fields carry upstream's bounds (100, 500)."""

    resources: TemplateResources
    displayName: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Meta(max_length=500)] | None = None
    category: Token | None = None
    icon: Url | None = None  # an emoji or a URL
    tags: Tags | None = None

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

    name: ToolName
    path: Annotated[str, Meta(min_length=1, max_length=2048)]
    description: Annotated[str, Meta(max_length=10000)] | None = None
    method: HttpMethod | None = None
    input_schema: FreeForm | None = None
    argument_locations: (
        Annotated[dict[ShortStr, ArgumentLocation], Meta(max_length=MAX_FREEFORM_KEYS)] | None
    ) = None
    timeout_seconds: Annotated[int, Meta(ge=1, le=120)] | None = None

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

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Annotated[str, Meta(max_length=10000)] | None = None
    iconUrl: Url | None = None
    enabled: bool | None = None
    visibility: Visibility | None = None
    allowedRoles: Annotated[list[Token], Meta(max_length=64)] | None = None
    allowedUsers: Annotated[list[NamespaceName], Meta(max_length=MAX_FREEFORM_KEYS)] | None = None
    authType: AuthType | None = None
    transport: Transport | None = None
    mcpUrl: Url | None = None
    toolAllowlist: Annotated[list[ToolName], Meta(max_length=_MAX_TOOLS)] | None = None
    httpTools: Annotated[list[ConnectorHttpTool], Meta(max_length=_MAX_TOOLS)] | None = None

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

    type: Annotated[str, Meta(min_length=1, max_length=64)]
    config: FreeForm | None = None

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
