"""Decode the Kubernetes protobuf request bodies that kubectl 1.32 sends (API.md §14).

client-go sends built-in types as ``application/vnd.kubernetes.protobuf`` and does not fall back to
JSON when a server answers 415. kubectl 1.32 does so for ``kubectl create namespace`` (core ``v1``
``Namespace``), ``kubectl auth whoami`` (``authentication.k8s.io/v1`` ``SelfSubjectReview``) and
``kubectl auth can-i`` (``authorization.k8s.io/v1`` ``SelfSubjectAccessReview``; ``--list`` sends a
``SelfSubjectRulesReview``). Typed client-go programs may also send ``DeleteOptions`` this way.
:func:`decode` turns such a body into the dict the same object would be as JSON.

The envelope (``k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go``): the four bytes
``k8s\\x00``, then one ``runtime.Unknown`` message: ``typeMeta`` (1: ``apiVersion`` 1, ``kind`` 2),
``raw`` (2: the object's own message), ``contentEncoding`` (3, empty) and ``contentType`` (4,
empty). The answer to such a request may be JSON: client-go's ``Accept`` is
``application/vnd.kubernetes.protobuf,application/json``.

Implementation choice: Google's ``protobuf`` package with a minimal hand-written schema. The
messages below are declared in ``.proto`` syntax with Kubernetes' own field numbers
(``generated.proto`` of ``k8s.io/api`` core/v1, authentication/v1, authorization/v1 and of
``k8s.io/apimachinery`` pkg/runtime and pkg/apis/meta/v1), checked against the descriptors embedded
in the kubectl 1.32 binary itself (docs/notes/kubectl-protocol.md says how). At import they become
a ``FileDescriptorProto`` in a private descriptor pool, so there is no generated code and no
``protoc`` step. The package does the wire parsing (upb, fuzzed upstream); this module declares
the schema and maps a parsed message to Kubernetes' JSON names and shapes. Fields this schema does
not declare are skipped, as unknown fields are by any protobuf reader.

JSON mapping, as Go's ``encoding/json`` would print the same object:

- names are the Kubernetes JSON names (the ``.proto`` field names);
- a scalar equal to its zero value (``""``, ``0``, ``false``) is omitted, as ``omitempty`` does
  (gogo-protobuf writes every non-pointer field even when empty, so presence means little);
- a nested message is an object even when empty (``"spec": {}``);
- ``meta.v1.Time`` is RFC 3339 in UTC with seconds precision (Kubernetes truncates nanoseconds);
  the zero time, which Kubernetes writes as an empty message, is omitted;
- ``int64`` is a Python ``int``; ``map<string, ExtraValue>`` is a map of string lists;
  ``FieldsV1`` (``managedFields[].fieldsV1``) is its raw JSON, parsed.

Every malformed input raises :class:`ProtobufDecodeError` (a ``ValueError``); a well-formed body
of a kind this module does not know raises its subclass :class:`UnsupportedKindError`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

__all__ = [
    "CONTENT_TYPE",
    "MAGIC",
    "ProtobufDecodeError",
    "UnsupportedKindError",
    "decode",
    "is_protobuf",
    "peek_type",
]

CONTENT_TYPE: Final = "application/vnd.kubernetes.protobuf"
MAGIC: Final = b"k8s\x00"


class ProtobufDecodeError(ValueError):
    """The body is not a Kubernetes protobuf object this server can read."""


class UnsupportedKindError(ProtobufDecodeError):
    """A well-formed envelope whose ``apiVersion``/``kind`` this module does not decode."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(
            f"protobuf bodies of {kind or '<no kind>'} ({api_version or '<no apiVersion>'}) are "
            "not supported; send JSON"
        )
        self.api_version = api_version
        self.kind = kind


# --------------------------------------------------------------------------------------------
# The schema, in .proto syntax (proto2). Field numbers are Kubernetes'; names are its JSON names.

_PROTO: Final[dict[str, str]] = {
    # k8s.io/apimachinery/pkg/runtime/generated.proto
    "TypeMeta": "optional string apiVersion = 1; optional string kind = 2;",
    "Unknown": """
        optional TypeMeta typeMeta = 1; optional bytes raw = 2;
        optional string contentEncoding = 3; optional string contentType = 4;""",
    # k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
    "Time": "optional int64 seconds = 1; optional int32 nanos = 2;",
    "ObjectMeta": """
        optional string name = 1; optional string generateName = 2; optional string namespace = 3;
        optional string selfLink = 4; optional string uid = 5; optional string resourceVersion = 6;
        optional int64 generation = 7; optional Time creationTimestamp = 8;
        optional Time deletionTimestamp = 9; optional int64 deletionGracePeriodSeconds = 10;
        map<string, string> labels = 11; map<string, string> annotations = 12;
        repeated OwnerReference ownerReferences = 13; repeated string finalizers = 14;
        repeated ManagedFieldsEntry managedFields = 17;""",
    "OwnerReference": """
        optional string apiVersion = 5; optional string kind = 1; optional string name = 3;
        optional string uid = 4; optional bool controller = 6;
        optional bool blockOwnerDeletion = 7;""",
    "ManagedFieldsEntry": """
        optional string manager = 1; optional string operation = 2; optional string apiVersion = 3;
        optional Time time = 4; optional string fieldsType = 6; optional FieldsV1 fieldsV1 = 7;
        optional string subresource = 8;""",
    "FieldsV1": "optional bytes Raw = 1;",
    "FieldSelectorRequirement": """
        optional string key = 1; optional string operator = 2; repeated string values = 3;""",
    "LabelSelectorRequirement": """
        optional string key = 1; optional string operator = 2; repeated string values = 3;""",
    "Preconditions": "optional string uid = 1; optional string resourceVersion = 2;",
    "DeleteOptions": """
        optional int64 gracePeriodSeconds = 1; optional Preconditions preconditions = 2;
        optional bool orphanDependents = 3; optional string propagationPolicy = 4;
        repeated string dryRun = 5;
        optional bool ignoreStoreReadErrorWithClusterBreakingPotential = 6;""",
    # k8s.io/api/core/v1/generated.proto
    "Namespace": """
        optional ObjectMeta metadata = 1; optional NamespaceSpec spec = 2;
        optional NamespaceStatus status = 3;""",
    "NamespaceSpec": "repeated string finalizers = 1;",
    "NamespaceStatus": "optional string phase = 1; repeated NamespaceCondition conditions = 2;",
    "NamespaceCondition": """
        optional string type = 1; optional string status = 2; optional Time lastTransitionTime = 4;
        optional string reason = 5; optional string message = 6;""",
    # k8s.io/api/authentication/v1/generated.proto
    "SelfSubjectReview": """
        optional ObjectMeta metadata = 1; optional SelfSubjectReviewStatus status = 2;""",
    "SelfSubjectReviewStatus": "optional UserInfo userInfo = 1;",
    "UserInfo": """
        optional string username = 1; optional string uid = 2; repeated string groups = 3;
        map<string, ExtraValue> extra = 4;""",
    "ExtraValue": "repeated string items = 1;",
    # k8s.io/api/authorization/v1/generated.proto
    "SelfSubjectAccessReview": """
        optional ObjectMeta metadata = 1; optional SelfSubjectAccessReviewSpec spec = 2;
        optional SubjectAccessReviewStatus status = 3;""",
    "SelfSubjectAccessReviewSpec": """
        optional ResourceAttributes resourceAttributes = 1;
        optional NonResourceAttributes nonResourceAttributes = 2;""",
    "ResourceAttributes": """
        optional string namespace = 1; optional string verb = 2; optional string group = 3;
        optional string version = 4; optional string resource = 5; optional string subresource = 6;
        optional string name = 7; optional FieldSelectorAttributes fieldSelector = 8;
        optional LabelSelectorAttributes labelSelector = 9;""",
    "FieldSelectorAttributes": """
        optional string rawSelector = 1; repeated FieldSelectorRequirement requirements = 2;""",
    "LabelSelectorAttributes": """
        optional string rawSelector = 1; repeated LabelSelectorRequirement requirements = 2;""",
    "NonResourceAttributes": "optional string path = 1; optional string verb = 2;",
    "SubjectAccessReviewStatus": """
        optional bool allowed = 1; optional bool denied = 4; optional string reason = 2;
        optional string evaluationError = 3;""",
    "SelfSubjectRulesReview": """
        optional ObjectMeta metadata = 1; optional SelfSubjectRulesReviewSpec spec = 2;""",
    "SelfSubjectRulesReviewSpec": "optional string namespace = 1;",
}

# (apiVersion, kind) -> message; "*" matches any apiVersion (DeleteOptions is in every group).
_KINDS: Final[dict[tuple[str, str], str]] = {
    ("v1", "Namespace"): "Namespace",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("*", "DeleteOptions"): "DeleteOptions",
}

_PACKAGE: Final = "wegent.k8s.wire"
_SCALARS: Final[dict[str, descriptor_pb2.FieldDescriptorProto.Type.ValueType]] = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
}
_FIELD_RE: Final = re.compile(
    r"(?:(optional|repeated)\s+(\w+)|map<string,\s*(\w+)>)\s+(\w+)\s*=\s*(\d+)"
)


@dataclass(frozen=True, slots=True)
class _Field:
    number: int
    name: str
    type: str  # a scalar of _SCALARS or a message name
    repeated: bool
    map_value: str | None  # map<string, map_value>


def _parse_schema() -> dict[str, list[_Field]]:
    schema: dict[str, list[_Field]] = {}
    for message, body in _PROTO.items():
        fields = []
        for statement in filter(None, (s.strip() for s in body.split(";"))):
            m = _FIELD_RE.fullmatch(statement)
            if m is None:  # pragma: no cover - a typo in _PROTO fails at import
                raise AssertionError(f"bad field in {message}: {statement!r}")
            label, type_, map_value, name, number = m.groups()
            fields.append(_Field(int(number), name, type_ or "", label == "repeated", map_value))
        schema[message] = fields
    return schema


def _build_classes(schema: dict[str, list[_Field]]) -> dict[str, type[Message]]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="wegent/k8s/wire.proto", package=_PACKAGE, syntax="proto2"
    )
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    message_type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE

    def set_type(fd: descriptor_pb2.FieldDescriptorProto, type_: str) -> None:
        if type_ in _SCALARS:
            fd.type = _SCALARS[type_]
        else:
            fd.type = message_type
            fd.type_name = f".{_PACKAGE}.{type_}"

    for message, fields in schema.items():
        mdp = fdp.message_type.add(name=message)
        for f in fields:
            fd = mdp.field.add(name=f.name, number=f.number, json_name=f.name)
            if f.map_value is not None:
                entry = mdp.nested_type.add(name=f"{f.name[0].upper()}{f.name[1:]}Entry")
                entry.options.map_entry = True
                key = entry.field.add(name="key", number=1, label=optional, json_name="key")
                set_type(key, "string")
                value = entry.field.add(name="value", number=2, label=optional, json_name="value")
                set_type(value, f.map_value)
                fd.label = repeated
                fd.type = message_type
                fd.type_name = f".{_PACKAGE}.{message}.{entry.name}"
            else:
                fd.label = repeated if f.repeated else optional
                set_type(fd, f.type)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in schema
    }


_SCHEMA: Final = _parse_schema()
_CLASSES: Final = _build_classes(_SCHEMA)


# --------------------------------------------------------------------------------------------
# Decoding


def is_protobuf(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names the Kubernetes protobuf media type."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == CONTENT_TYPE


def _parse(message: str, data: bytes) -> Message:
    msg = _CLASSES[message]()
    try:
        msg.ParseFromString(data)
    except UnicodeDecodeError:  # the pure-Python backend checks UTF-8 while parsing
        raise ProtobufDecodeError("a string field is not valid UTF-8") from None
    except (DecodeError, RecursionError) as exc:
        raise ProtobufDecodeError(f"malformed protobuf {message}: {exc}") from None
    return msg


def _envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw) of a ``k8s\\x00`` + ``runtime.Unknown`` body."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ProtobufDecodeError("a protobuf body must be bytes")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufDecodeError("not a Kubernetes protobuf body: it must start with 'k8s\\x00'")
    unknown = _parse("Unknown", body[len(MAGIC) :])
    encoding = _text(unknown.contentEncoding)  # type: ignore[attr-defined]
    if encoding:
        raise ProtobufDecodeError(f"unsupported contentEncoding {encoding!r}")
    content_type = _text(unknown.contentType)  # type: ignore[attr-defined]
    if content_type and content_type != CONTENT_TYPE:
        raise ProtobufDecodeError(f"unsupported contentType {content_type!r}")
    if not unknown.HasField("typeMeta"):
        raise ProtobufDecodeError("the envelope has no typeMeta")
    type_meta = unknown.typeMeta  # type: ignore[attr-defined]
    api_version, kind = _text(type_meta.apiVersion), _text(type_meta.kind)
    if not api_version or not kind:
        raise ProtobufDecodeError("the envelope's typeMeta lacks apiVersion or kind")
    raw: bytes = unknown.raw  # type: ignore[attr-defined]
    return api_version, kind, raw


def peek_type(body: bytes) -> tuple[str, str]:
    """``(apiVersion, kind)`` named by a protobuf body's envelope, without decoding the object."""
    api_version, kind, _ = _envelope(body)
    return api_version, kind


def decode(body: bytes) -> dict[str, Any]:
    """The object of a Kubernetes protobuf request body, as it would be in JSON.

    Raises :class:`ProtobufDecodeError` for anything malformed and :class:`UnsupportedKindError`
    for a well-formed body of a kind this module does not declare.
    """
    api_version, kind, raw = _envelope(body)
    message = _KINDS.get((api_version, kind)) or _KINDS.get(("*", kind))
    if message is None:
        raise UnsupportedKindError(api_version, kind)
    parsed = _parse(message, raw)
    try:
        obj = _to_json(parsed, message)
    except UnicodeDecodeError:
        # upb hands invalid UTF-8 in proto2 strings back as bytes, but raises on map keys
        raise ProtobufDecodeError("a string field is not valid UTF-8") from None
    if not isinstance(obj, dict):  # pragma: no cover - every kind above is an object
        raise ProtobufDecodeError(f"{kind} did not decode to an object")
    return {"apiVersion": api_version, "kind": kind, **obj}


def _text(value: object) -> str:
    """A string field's value; upb hands back bytes for invalid UTF-8 in proto2 strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufDecodeError("a string field is not valid UTF-8") from None
    raise ProtobufDecodeError(f"unexpected string value of type {type(value).__name__}")


def _time(msg: Message) -> str | None:
    # Kubernetes writes the zero time as an empty message and truncates to seconds.
    if not msg.HasField("seconds"):
        return None
    seconds: int = msg.seconds  # type: ignore[attr-defined]
    try:
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ProtobufDecodeError(f"timestamp out of range: {seconds} s") from None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields_v1(msg: Message) -> Any:
    raw: bytes = msg.Raw  # type: ignore[attr-defined]
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtobufDecodeError("managedFields fieldsV1 is not valid JSON") from None


def _scalar(type_: str, value: object) -> Any:
    if type_ == "string":
        return _text(value)
    return value  # bool, int32, int64 (bytes only occurs in FieldsV1, handled there)


def _value(type_: str, value: Any) -> Any:
    return _scalar(type_, value) if type_ in _SCALARS else _to_json(value, type_)


def _to_json(msg: Message, message: str) -> Any:
    if message == "Time":
        return _time(msg)
    if message == "ExtraValue":
        return [_text(v) for v in msg.items]  # type: ignore[attr-defined]
    if message == "FieldsV1":
        return _fields_v1(msg)
    out: dict[str, Any] = {}
    for f in _SCHEMA[message]:
        value = getattr(msg, f.name)
        if f.map_value is not None:
            if value:
                out[f.name] = {_text(k): _value(f.map_value, v) for k, v in value.items()}
        elif f.repeated:
            if value:
                out[f.name] = [_value(f.type, v) for v in value]
        elif msg.HasField(f.name):
            converted = _value(f.type, value)
            if f.type in _SCALARS:
                if converted:  # omit "", 0 and false as Go's omitempty does
                    out[f.name] = converted
            elif converted is not None:  # a zero Time is omitted
                out[f.name] = converted
    return out
