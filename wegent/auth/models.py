"""Wire types of the auth API: bodies in, users and namespaces out (camelCase)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from wegent.names import NAME_PATTERN
from wegent.names import NAMESPACE_PATTERN as DNS_LABEL

Username = Annotated[str, msgspec.Meta(min_length=2, max_length=63, pattern=DNS_LABEL)]
NamespaceName = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=DNS_LABEL)]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
# An explicit class, not \s: Python's and ECMA-262's \s differ, and OpenAPI patterns are ECMA.
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        pattern=r"^[^@ \t\n\v\f\r]+@[^@ \t\n\v\f\r]+\.[^@ \t\n\v\f\r]+$",
    ),
]
GlobalRole = Literal["admin", "user"]
NamespaceRole = Literal["view", "edit", "admin"]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password
    email: Email | None = None


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``user_name`` is accepted in place of ``username`` for existing Wegent clients."""

    password: Annotated[str, msgspec.Meta(max_length=1024)]
    username: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    user_name: Annotated[str, msgspec.Meta(max_length=255)] | None = None


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    role: GlobalRole | None = None
    isActive: bool | None = None


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A global admin adds a service account (API.md §16): a user with no password, which acts
    only through API tokens an admin makes for it. People register themselves (§11)."""

    username: Username
    serviceAccount: Literal[True]
    email: Email | None = None


class UserOut(msgspec.Struct):
    id: int
    username: str
    email: str | None
    role: str
    isActive: bool
    createdAt: str
    updatedAt: str
    serviceAccount: bool


class UserList(msgspec.Struct):
    items: list[UserOut]
    kind: str = "UserList"
    apiVersion: str = "v1"


class NamespaceAccess(msgspec.Struct):
    name: str
    role: str


class Me(msgspec.Struct):
    id: int
    username: str
    email: str | None
    role: str
    isActive: bool
    namespaces: list[NamespaceAccess]


class NamespaceObjectMeta(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The metadata of a ``Namespace`` manifest: its name. Labels and annotations (kubectl's
    ``--save-config``) are accepted and not kept; server-set fields are ignored."""

    name: NamespaceName | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    creationTimestamp: str | None = None


class NamespaceCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``{"name": ...}`` (API.md §11) or a core ``v1`` ``Namespace`` manifest (§14)."""

    name: NamespaceName | None = None
    apiVersion: Literal["v1"] | None = None
    kind: Literal["Namespace"] | None = None
    metadata: NamespaceObjectMeta | None = None
    spec: dict[str, list[str]] | None = None
    status: dict[str, str] | None = None

    def __post_init__(self) -> None:
        given = self.metadata.name if self.metadata else None
        if (self.name is None) == (given is None):
            raise ValueError("`name`: Required value: give name or metadata.name, not both")
        if given is not None:
            self.name = given

    @property
    def wanted(self) -> str:
        assert self.name is not None  # __post_init__ made sure of it
        return self.name


class NamespaceMeta(msgspec.Struct, kw_only=True):
    name: str
    uid: str
    resourceVersion: str
    creationTimestamp: str


class NamespaceStatus(msgspec.Struct, frozen=True):
    phase: str = "Active"


class NamespaceOut(msgspec.Struct, kw_only=True):
    """A namespace as API.md §11 answers it (name, owner, personal, role, createdAt) and as the
    core ``v1`` ``Namespace`` of §14 (apiVersion, kind, metadata, spec, status)."""

    name: str
    owner: str | None
    personal: bool
    role: str
    createdAt: str
    apiVersion: str = "v1"
    kind: str = "Namespace"
    metadata: NamespaceMeta
    spec: dict[str, list[str]] = {}
    status: NamespaceStatus = NamespaceStatus()


class NamespaceListMeta(msgspec.Struct, omit_defaults=True):
    """``continue`` is present only when there is a next page."""

    continue_: str | None = msgspec.field(default=None, name="continue")


class NamespaceList(msgspec.Struct):
    items: list[NamespaceOut]
    kind: str = "NamespaceList"
    apiVersion: str = "v1"
    metadata: NamespaceListMeta = msgspec.field(default_factory=NamespaceListMeta)


class MemberPut(msgspec.Struct, forbid_unknown_fields=True):
    role: NamespaceRole


class MemberOut(msgspec.Struct):
    namespace: str
    username: str
    role: str


class MemberList(msgspec.Struct):
    items: list[MemberOut]
    kind: str = "MemberList"
    apiVersion: str = "v1"


TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=NAME_PATTERN)]
TokenRole = Literal["view", "edit"]


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An API token to make (API.md §16). ``expiresInDays`` absent: 90 days; null: never.
    ``namespaces``: the only namespaces it may act in (``default``: its user's own);
    ``role``: the most it may do in any of them."""

    name: TokenName
    expiresInDays: Annotated[int, msgspec.Meta(ge=1, le=365)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    namespaces: (
        Annotated[list[NamespaceName], msgspec.Meta(min_length=1, max_length=100)] | None
    ) = None
    role: TokenRole | None = None


class TokenOut(msgspec.Struct):
    """A token as listed: never its secret."""

    name: str
    prefix: str
    createdAt: str
    expiresAt: str | None
    lastUsedAt: str | None
    namespaces: list[str] | None
    role: str | None


class TokenCreated(msgspec.Struct):
    """A token just made: the only answer that carries its secret (``token``)."""

    name: str
    token: str
    prefix: str
    createdAt: str
    expiresAt: str | None
    namespaces: list[str] | None
    role: str | None


class TokenList(msgspec.Struct):
    items: list[TokenOut]
    kind: str = "TokenList"
    apiVersion: str = "v1"
