"""The dependency container: the service objects of one app, built once from its settings
and database, and handed to every handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wegent.auth.access import Access
from wegent.auth.api_tokens import ApiTokens
from wegent.auth.namespaces import Namespaces
from wegent.auth.passwords import Passwords
from wegent.auth.policy import PolicyGuard
from wegent.auth.tokens import TokenIssuer
from wegent.auth.users import Users
from wegent.db.engine import Database
from wegent.paging import Pager
from wegent.resources.batch import Batch
from wegent.resources.crd import CRDService, ServiceDeps
from wegent.resources.references import References
from wegent.resources.registry import KINDS
from wegent.resources.secrets import SecretBox
from wegent.settings import Settings
from wegent.watch.hub import Hub


@dataclass(frozen=True)
class Services:
    """Everything a handler may call; handlers receive it by dependency injection."""

    settings: Settings
    db: Database
    tokens: TokenIssuer
    access: Access
    api_tokens: ApiTokens
    users: Users
    namespaces: Namespaces
    guard: PolicyGuard
    resources: dict[str, CRDService[Any]]
    batch: Batch
    watch: Hub

    @classmethod
    def build(cls, settings: Settings, db: Database) -> Services:
        tokens = TokenIssuer(settings.jwt_secret, settings.token_lifetime_minutes)
        access = Access(db, settings.user_cache_ttl_s)
        api_tokens = ApiTokens(db, access, settings.user_cache_ttl_s)
        passwords = Passwords(settings.argon2_profile)
        users = Users(db, passwords, tokens, access, settings.allow_registration)
        pager = Pager(settings.secret_key)
        watch = Hub(db, access, settings)
        deps = ServiceDeps(
            db=db,
            access=access,
            references=References(access),
            pager=pager,
            box=SecretBox(settings.secret_key),
            list_budget=settings.list_budget_bytes,
            list_version=watch.list_version,
        )
        resources = {info.kind: info.service(info, deps) for info in KINDS}
        return cls(
            settings=settings,
            db=db,
            tokens=tokens,
            access=access,
            api_tokens=api_tokens,
            users=users,
            namespaces=Namespaces(db, access, pager, settings.max_namespaces_per_user),
            guard=PolicyGuard(tokens, api_tokens, access),
            resources=resources,
            batch=Batch(db, resources),
            watch=watch,
        )
