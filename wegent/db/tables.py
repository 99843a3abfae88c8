"""Piccolo tables: the schema of record. Migrations in ``piccolo_migrations/`` follow them.

What Piccolo cannot express (partial unique indexes, GIN indexes, the resource-version sequence,
byte-order collation) lives in raw steps of the migrations.
"""

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class User(Table, tablename="users"):
    """An account. ``role`` is global: ``admin`` or ``user``."""

    id = Serial(primary_key=True)
    username = Varchar(length=63, unique=True)
    email = Varchar(length=254, null=True, default=None)
    password_hash = Text()
    role = Varchar(length=16, default="user")
    is_active = Boolean(default=True)
    failed_logins = Integer(default=0)
    failed_window_start = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Namespace(Table, tablename="namespaces"):
    """A namespace. Personal ones are named after their user; ``public`` has no owner."""

    id = Serial(primary_key=True)
    name = Varchar(length=63, unique=True)
    owner = ForeignKey(references=User, null=True, on_delete=OnDelete.set_null)
    personal = Boolean(default=False)
    created_at = Timestamptz()


class NamespaceMember(Table, tablename="namespace_members"):
    """A user's role in a namespace: ``view``, ``edit`` or ``admin``. Unique per pair."""

    id = Serial(primary_key=True)
    namespace = ForeignKey(references=Namespace, null=False, on_delete=OnDelete.cascade)
    member = ForeignKey(references=User, null=False, on_delete=OnDelete.cascade)
    role = Varchar(length=8)
    created_at = Timestamptz()


class EnvelopeColumns:
    """The Kubernetes envelope shared by ``kinds`` and ``tasks``."""

    id = BigSerial(primary_key=True)
    uid = UUID(unique=True)
    namespace = Varchar(length=63)
    name = Varchar(length=63)
    display_name = Varchar(length=255, null=True, default=None)
    labels = JSONB(default="{}")
    annotations = JSONB(default="{}")
    spec = JSONB(default="{}")
    status = JSONB(default="{}")
    # "Kind/namespace/name" of every object this one references: finds referrers via GIN.
    refs = JSONB(default="[]")
    resource_version = BigInt()
    generation = BigInt(default=1)
    created_by = Varchar(length=63)
    updated_by = Varchar(length=63)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    deleted_at = Timestamptz(null=True, default=None)
    deleted_by = Varchar(length=63, null=True, default=None)


class Kind(EnvelopeColumns, Table, tablename="kinds"):
    """Every resource kind except Task, told apart by ``kind``."""

    kind = Varchar(length=32)


class Task(EnvelopeColumns, Table, tablename="tasks"):
    """Tasks: the envelope plus their lifecycle and team reference as columns, for filtering.

    ``kind`` is always ``Task``; it is a column so that the generic statements serve both tables.
    """

    kind = Varchar(length=32, default="Task")
    phase = Varchar(length=16, default="PENDING")
    progress = Integer(default=0)
    started_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    team_namespace = Varchar(length=63)
    team_name = Varchar(length=63)


TABLES: tuple[type[Table], ...] = (User, Namespace, NamespaceMember, Kind, Task)
