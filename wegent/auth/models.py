"""Wire types of the auth API: bodies in, users and namespaces out (camelCase)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

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


class UserOut(msgspec.Struct):
    id: int
    username: str
    email: str | None
    role: str
    isActive: bool
    createdAt: str
    updatedAt: str


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


class NamespaceCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: NamespaceName


class NamespaceOut(msgspec.Struct):
    name: str
    owner: str | None
    personal: bool
    role: str
    createdAt: str


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
