"""The kind registry: one entry defines a kind, and everything else derives from it.

An entry names the kind's plural, table, spec Struct, status type, service class, the fields
that reference other objects, where its spec holds secrets, its list filters, short names and
the columns of its Table. The routes, the services, the OpenAPI documents and the tests take
the kinds from here. Adding a kind means: a spec Struct, an entry here, tests.

The order is the order batch apply uses, referenced kinds first (API.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from wegent.names import NAME_PATTERN
from wegent.resources.crd import CRDService
from wegent.resources.references import RefField
from wegent.resources.secrets import SecretFields
from wegent.resources.specs import (
    BotSpec,
    GhostSpec,
    ModelSpec,
    ShellSpec,
    SkillSpec,
    TaskSpec,
    TeamSpec,
    WorkspaceSpec,
)
from wegent.resources.specs_upstream import (
    CollaborationSpec,
    ConnectorAppSpec,
    DeviceSpec,
    RetrieverSpec,
    TemplateSpec,
)
from wegent.resources.status import PHASES, ResourceStatus, TaskStatus
from wegent.resources.tasks import TaskService


@dataclass(frozen=True)
class Column:
    """A column of the kind's Table (``kubectl get``): a JSONPath into the answered object, as a
    custom resource's ``additionalPrinterColumns``; ``[*]`` takes every item of a list."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""


@dataclass(frozen=True)
class ListFilter:
    """A list parameter of the kind, compared for equality with a column of its table."""

    param: str
    column: str
    description: str
    values: tuple[str, ...] = ()  # the allowed values, when they are a fixed set
    pattern: str | None = None  # otherwise, what a value must match


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    spec: type[msgspec.Struct]
    table: str = "kinds"
    status: type[msgspec.Struct] = ResourceStatus
    service: type[CRDService[Any]] = CRDService
    references: tuple[RefField, ...] = ()
    secrets: SecretFields | None = None
    filters: tuple[ListFilter, ...] = ()
    short_names: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    #: Subresources with a lifecycle of their own (Task: ``status``, ``cancel``).
    lifecycle: bool = False
    #: A boolean spec field that at most one live object of a namespace may set (Device:
    #: ``isDefault``); a unique index (``{table}_one_{kind}_{field}``, lower case) refuses a
    #: second, which is a 409 naming the object that has it.
    exclusive: str | None = None

    @property
    def exclusive_index(self) -> str | None:
        if self.exclusive is None:
            return None
        return f"{self.table}_one_{self.kind}_{self.exclusive}".lower()

    @property
    def singular(self) -> str:
        return self.kind.lower()


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        "Skill",
        "skills",
        SkillSpec,
        short_names=("sk",),
        columns=(Column("Version", ".spec.version"), Column("Author", ".spec.author")),
    ),
    KindInfo(
        "Ghost",
        "ghosts",
        GhostSpec,
        references=(RefField("skills[]", "Skill"),),
        short_names=("gh",),
        columns=(Column("Skills", ".spec.skills[*]"),),
    ),
    KindInfo(
        "Model",
        "models",
        ModelSpec,
        secrets=SecretFields(maps=("modelConfig.env",)),
        short_names=("mo",),
        columns=(Column("Type", ".spec.modelType"), Column("Protocol", ".spec.protocol")),
    ),
    KindInfo(
        "Shell",
        "shells",
        ShellSpec,
        short_names=("sh",),
        columns=(Column("Type", ".spec.shellType"), Column("Base Image", ".spec.baseImage")),
    ),
    KindInfo(
        "Workspace",
        "workspaces",
        WorkspaceSpec,
        short_names=("ws",),
        columns=(
            Column("Repository", ".spec.repository.gitRepo"),
            Column("Branch", ".spec.repository.branchName"),
        ),
    ),
    KindInfo(
        "Bot",
        "bots",
        BotSpec,
        references=(
            RefField("ghostRef", "Ghost"),
            RefField("shellRef", "Shell"),
            RefField("modelRef", "Model"),
            RefField("secondaryModelRef", "Model"),
        ),
        short_names=("bo",),
        columns=(
            Column("Ghost", ".spec.ghostRef.name"),
            Column("Shell", ".spec.shellRef.name"),
            Column("Model", ".spec.modelRef.name"),
        ),
    ),
    KindInfo(
        "Team",
        "teams",
        TeamSpec,
        references=(RefField("members[].botRef", "Bot"),),
        short_names=("te",),
        columns=(
            Column("Members", ".spec.members[*].botRef.name"),
            Column("Collaboration", ".spec.collaborationModel"),
        ),
    ),
    KindInfo(
        "Task",
        "tasks",
        TaskSpec,
        table="tasks",
        status=TaskStatus,
        service=TaskService,
        references=(RefField("teamRef", "Team"), RefField("workspaceRef", "Workspace")),
        filters=(
            ListFilter("phase", "phase", "Only tasks in this phase", values=PHASES),
            ListFilter("team", "team_name", "Only tasks of this Team", pattern=NAME_PATTERN),
        ),
        short_names=("ta",),
        columns=(
            Column("Phase", ".status.phase"),
            Column("Progress", ".status.progress", type="integer"),
            Column("Team", ".spec.teamRef.name"),
        ),
        lifecycle=True,
    ),
    KindInfo(
        "Retriever",
        "retrievers",
        RetrieverSpec,
        secrets=SecretFields(fields=("storageConfig.password", "storageConfig.apiKey")),
        short_names=("rt",),
        columns=(
            Column("Storage", ".spec.storageConfig.type"),
            Column("Index Mode", ".spec.storageConfig.indexStrategy.mode"),
            Column("URL", ".spec.storageConfig.url"),
        ),
    ),
    KindInfo(
        "Device",
        "devices",
        DeviceSpec,
        exclusive="isDefault",
        short_names=("dv",),
        columns=(
            Column("Device ID", ".spec.deviceId"),
            Column("Type", ".spec.deviceType"),
            Column("Default", ".spec.isDefault", type="boolean"),
        ),
    ),
    KindInfo(
        "Template",
        "templates",
        TemplateSpec,
        short_names=("tp",),
        columns=(
            Column("Category", ".spec.category"),
            Column("Display Name", ".spec.displayName"),
        ),
    ),
    KindInfo(
        "ConnectorApp",
        "connectorapps",
        ConnectorAppSpec,
        short_names=("ca",),
        columns=(
            Column("App", ".spec.name"),
            Column("Transport", ".spec.transport"),
            Column("Enabled", ".spec.enabled", type="boolean"),
        ),
    ),
    KindInfo(
        "Collaboration",
        "collaborations",
        CollaborationSpec,
        short_names=("co",),
        columns=(Column("Type", ".spec.type"),),
    ),
)
BY_KIND: dict[str, KindInfo] = {info.kind: info for info in KINDS}
BY_PLURAL: dict[str, KindInfo] = {info.plural: info for info in KINDS}
APPLY_ORDER: dict[str, int] = {info.kind: index for index, info in enumerate(KINDS)}
