"""Metadata of every resource (API.md §1): names, labels, annotations, input and output forms.

Field names are camelCase on the wire, so they are written in camelCase here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from wegent.errors import Cause
from wegent.names import NAME_PATTERN, NAMESPACE_PATTERN, RESOURCE_VERSION_PATTERN

API_VERSION = "agent.wecode.io/v1"

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN, min_length=1, max_length=63)]
NamespaceName = Annotated[str, msgspec.Meta(pattern=NAMESPACE_PATTERN, min_length=1, max_length=63)]

MAX_LABELS = 64
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_FREEFORM_KEYS = 256
MAX_FREEFORM_DEPTH = 16

# The same rules as regular expressions (ECMA-262 and Python alike), for the OpenAPI document:
# a key is ``[prefix/]name`` (prefix a DNS subdomain of at most 253, name at most 63), a value
# empty or a name. ``$(?!\n)``: Python's ``$`` also matches before a final newline.
_NAME_PART = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
_PREFIX_PART = r"(?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_PATTERN = rf"^({_PREFIX_PART}/)?{_NAME_PART}$(?!\n)"
LABEL_VALUE_PATTERN = rf"^({_NAME_PART})?$(?!\n)"

_VALID_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)  # the common case in one match per entry
_VALID_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_CHARS = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


class ResourceRef(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A reference to another resource; no namespace means the referring object's (§4)."""

    name: Annotated[Name, msgspec.Meta(description="Name of the referenced object.")]
    namespace: (
        Annotated[
            NamespaceName,
            msgspec.Meta(
                description="Namespace of the referenced object; default is your personal "
                "namespace. When omitted (or default), the referring object's namespace is "
                "searched, then public; answers show where it was found."
            ),
        ]
        | None
    ) = None


class FieldErrors:
    """Collects cross-field problems in a ``__post_init__`` and raises them as one ValueError.

    Each problem is one line "`relative.path[i]`: message" (see ``wegent.resources.decode``),
    so that decoding can report every problem on its exact field.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.lines.append(f"`{field}`: {message.replace(chr(10), ' ')}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise ValueError("\n".join(self.lines))


def check_depth(value: object, max_depth: int = MAX_FREEFORM_DEPTH) -> bool:
    """True unless dicts/lists are nested more than ``max_depth`` levels (iterative: no recursion
    limit to hit on hostile input)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def check_freeform(errors: FieldErrors, field: str, value: object) -> None:
    """Free-form objects are bounded in keys by their type and in depth here."""
    if value is not None and not check_depth(value):
        errors.add(field, f"Invalid value: nested more than {MAX_FREEFORM_DEPTH} levels deep")


def qualified_name_problems(key: str) -> list[str]:
    """What is wrong with a label or annotation key ``[prefix/]name``; empty when it is valid."""
    prefix, slash, name = key.rpartition("/")
    problems: list[str] = []
    if slash:
        if not prefix:
            problems.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            problems.append("prefix part must be no more than 253 characters")
        elif not _DNS_SUBDOMAIN.fullmatch(prefix):
            problems.append(
                "prefix part must be a lowercase DNS subdomain: lower case alphanumeric "
                "characters, '-' or '.', starting and ending with an alphanumeric character"
            )
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.fullmatch(name):
        problems.append(f"name part {_NAME_CHARS}")
    return problems


def label_value_problems(value: str) -> list[str]:
    """What is wrong with a label value; empty when it is valid (the empty value is valid)."""
    if len(value) > 63:
        return ["value must be no more than 63 characters"]
    if value and not _QUALIFIED_NAME.fullmatch(value):
        return [f"value must be empty or {_NAME_CHARS.removeprefix('must ')}"]
    return []


def _entry_cause(field: str, key: str, problems: list[tuple[str, str]]) -> Cause:
    """One cause for a map entry: each problem is (the offending text, what is wrong with it)."""
    message = "; ".join(f"Invalid value: {_quote(text)}: {problem}" for text, problem in problems)
    return Cause(reason="FieldValueInvalid", message=message, field=f"{field}[{key}]")


def _quote(text: str) -> str:
    return msgspec.json.encode(text).decode()


def validate_labels(labels: Mapping[Any, Any], field: str = "metadata.labels") -> list[Cause]:
    """One cause per bad entry (§1). Non-string entries are left to type checking."""
    causes: list[Cause] = []
    if len(labels) > MAX_LABELS:
        message = f"Too many: {len(labels)}: must have at most {MAX_LABELS} items"
        causes.append(Cause(reason="FieldValueTooMany", message=message, field=field))
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        if _VALID_LABEL_KEY.match(key) and _VALID_LABEL_VALUE.match(value):
            continue
        problems = [(key, p) for p in qualified_name_problems(key)]
        problems += [(value, p) for p in label_value_problems(value)]
        if problems:
            causes.append(_entry_cause(field, key, problems))
    return causes


def validate_annotations(
    annotations: Mapping[Any, Any], field: str = "metadata.annotations"
) -> list[Cause]:
    """One cause per bad key, and one for the whole map when it is larger than 256 KiB."""
    causes: list[Cause] = []
    size = 0
    for key, value in annotations.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        size += len(key.encode()) + len(value.encode())
        if _VALID_LABEL_KEY.match(key):
            continue
        problems = [(key, p) for p in qualified_name_problems(key)]
        if problems:
            causes.append(_entry_cause(field, key, problems))
    if size > MAX_ANNOTATIONS_BYTES:
        message = f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"
        causes.append(Cause(reason="FieldValueTooLong", message=message, field=field))
    return causes


# Documented here (OpenAPI), checked by validate_labels/validate_annotations and the service.
ResourceVersion = Annotated[
    str, msgspec.Meta(max_length=32, extra_json_schema={"pattern": RESOURCE_VERSION_PATTERN})
]
LabelValue = Annotated[
    str, msgspec.Meta(extra_json_schema={"maxLength": 63, "pattern": LABEL_VALUE_PATTERN})
]
Labels = Annotated[
    dict[str, LabelValue],
    msgspec.Meta(
        extra_json_schema={
            "maxProperties": MAX_LABELS,
            "propertyNames": {"pattern": LABEL_KEY_PATTERN},
        }
    ),
]
Annotations = Annotated[
    dict[str, str],
    msgspec.Meta(
        description=(
            "Free-form string metadata for tools and people, not used to select objects; keys "
            f"as for labels, at most {MAX_ANNOTATIONS_BYTES} bytes in all (keys and values, "
            "UTF-8)."
        ),
        extra_json_schema={"propertyNames": {"pattern": LABEL_KEY_PATTERN}},
    ),
]
ServerSet = Annotated[Any, msgspec.Meta(description="Server-set; accepted on input and ignored.")]


GenerateName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$(?!\n)",
        min_length=1,
        max_length=253,
        description=(
            "On create without a name, a prefix the server makes a unique name from: the "
            "prefix (cut to 58 characters) and 5 random lowercase alphanumerics."
        ),
    ),
]


class Metadata(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Metadata as a client sends it. Server-set fields are accepted and dropped (mass
    assignment): they decode into ``ignored_*`` attributes that ``__post_init__`` clears."""

    name: (
        Annotated[
            Name,
            msgspec.Meta(
                description="The object's name, unique among objects of its kind in its "
                "namespace: 1-63 letters, digits, '-', '_' or '.', starting and ending with a "
                "letter or digit (case-sensitive). Cannot be changed."
            ),
        ]
        | None
    ) = None
    generateName: GenerateName | None = None
    namespace: (
        Annotated[
            NamespaceName,
            msgspec.Meta(
                description="The namespace the object lives in; if given, it must be the "
                "namespace of the URL (default: your personal namespace)."
            ),
        ]
        | None
    ) = None
    displayName: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=255, description="A human-readable name shown in user interfaces."
            ),
        ]
        | None
    ) = None
    labels: Annotated[
        Labels,
        msgspec.Meta(
            description="Key-value pairs to organize and select objects (labelSelector): at "
            "most 64, keys [prefix/]name, values at most 63 characters."
        ),
    ] = {}
    annotations: Annotations = {}
    resourceVersion: (
        Annotated[
            ResourceVersion,
            msgspec.Meta(
                description="On replace or patch, the resourceVersion you read: the write fails "
                'with 409 Conflict if the object changed since. Omit it (or "") to write '
                "unconditionally; may not be set on create."
            ),
        ]
        | None
    ) = None
    ignored_uid: Annotated[
        ServerSet,
        msgspec.Meta(description="Set by the server (a unique id); accepted and ignored."),
    ] = msgspec.field(default=None, name="uid")
    ignored_generation: Annotated[
        ServerSet,
        msgspec.Meta(
            description="Set by the server (a counter of spec changes); accepted and ignored."
        ),
    ] = msgspec.field(default=None, name="generation")
    ignored_creationTimestamp: Annotated[
        ServerSet,
        msgspec.Meta(description="Set by the server (when it was created); accepted and ignored."),
    ] = msgspec.field(default=None, name="creationTimestamp")
    ignored_updateTimestamp: Annotated[
        ServerSet,
        msgspec.Meta(
            description="Set by the server (when it was last written); accepted and ignored."
        ),
    ] = msgspec.field(default=None, name="updateTimestamp")
    ignored_deletionTimestamp: Annotated[
        ServerSet,
        msgspec.Meta(
            description="Set by the server (when it was put in the trash); accepted and ignored."
        ),
    ] = msgspec.field(default=None, name="deletionTimestamp")
    ignored_createdBy: Annotated[
        ServerSet,
        msgspec.Meta(description="Set by the server (who created it); accepted and ignored."),
    ] = msgspec.field(default=None, name="createdBy")
    ignored_updatedBy: Annotated[
        ServerSet,
        msgspec.Meta(description="Set by the server (who last wrote it); accepted and ignored."),
    ] = msgspec.field(default=None, name="updatedBy")

    def __post_init__(self) -> None:
        for field in IGNORED_METADATA_FIELDS:
            setattr(self, field, None)


IGNORED_METADATA_FIELDS = tuple(
    f.name for f in msgspec.structs.fields(Metadata) if f.name.startswith("ignored_")
)


class ObjectMeta(msgspec.Struct, kw_only=True):
    """Metadata as the server answers it; every field is present (nulls included)."""

    name: Annotated[
        str,
        msgspec.Meta(
            description="The object's name, unique among objects of its kind in its namespace."
        ),
    ]
    namespace: Annotated[str, msgspec.Meta(description="The namespace the object lives in.")]
    displayName: Annotated[
        str | None, msgspec.Meta(description="A human-readable name, or null.")
    ] = None
    labels: Annotated[
        dict[str, str],
        msgspec.Meta(description="Key-value pairs to organize and select objects (labelSelector)."),
    ] = {}
    annotations: Annotated[
        dict[str, str],
        msgspec.Meta(description="Free-form string metadata for tools and people."),
    ] = {}
    uid: Annotated[
        str,
        msgspec.Meta(
            description="A unique id the server gives the object, new on every create (a "
            "re-created object has another)."
        ),
    ]
    resourceVersion: Annotated[
        str,
        msgspec.Meta(
            description="An opaque version that changes on every write; send it back on "
            "replace or patch to fail with 409 Conflict if the object changed meanwhile."
        ),
    ]
    generation: Annotated[
        int,
        msgspec.Meta(description="Starts at 1 and grows by 1 on every change of the spec."),
    ]
    creationTimestamp: Annotated[
        str, msgspec.Meta(description="When the object was created (RFC 3339, UTC).")
    ]
    updateTimestamp: Annotated[
        str, msgspec.Meta(description="When the object was last written (RFC 3339, UTC).")
    ]
    deletionTimestamp: Annotated[
        str | None,
        msgspec.Meta(
            description="When the object was deleted (RFC 3339, UTC): set only on objects in "
            "the trash (?deleted=true), else null."
        ),
    ] = None
    createdBy: Annotated[str, msgspec.Meta(description="The username of who created the object.")]
    updatedBy: Annotated[
        str, msgspec.Meta(description="The username of who last wrote the object.")
    ]
