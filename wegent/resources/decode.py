"""Strict, precise decoding of request bodies into Structs (API.md §1, §12).

The fast path decodes straight into the type, so a valid body costs one msgspec call. Only a body
that fails takes the slow path: it walks the parsed value against the type and collects every
problem it can, each as a :class:`~wegent.errors.Cause` with its full path (``spec.members[2]
.botRef.name``; map keys verbatim in brackets: ``metadata.labels[a b]``), plus the unknown fields,
which ``fieldValidation`` turns into causes (Strict), warnings (Warn) or nothing (Ignore).

Convention for ``__post_init__``: a Struct reports cross-field problems by raising a ValueError
whose message is one or more lines "`relative.path`: message" (``FieldErrors`` in
``wegent.resources.meta`` writes them). The relative path is joined to the Struct's own path, so
"`preloadSkills[1]`: …" raised by the spec becomes a cause on ``spec.preloadSkills[1]``. The
reason follows the Kubernetes message prefix: "Required value" → FieldValueRequired,
"Duplicate value" → FieldValueDuplicate, "Unsupported value" → FieldValueNotSupported,
"Too long" → FieldValueTooLong, "Too many" → FieldValueTooMany, "Forbidden" →
FieldValueForbidden, anything else → FieldValueInvalid. A message without the backtick prefix is
reported on the Struct itself.

Types walked precisely: Structs, ``list``, ``dict``, optionals and ``Annotated`` length bounds;
anything else is a leaf checked by ``msgspec.convert``. Unknown fields are detected on Structs
with ``forbid_unknown_fields`` (the fast path relies on it to never drop a field silently).

Two things the slow path accepts or refuses beyond msgspec's strict typing:

- an integer written with a zero fraction (``5.0``) is an integer, as in JSON Schema; msgspec
  refuses it where an ``int`` is expected, so the walk turns it into ``5`` first;
- a string holding U+0000 (NUL) is refused, with a cause on its field: PostgreSQL cannot store
  it. A body that may hold one (the ``\u0000`` escape in its JSON) takes the slow path, which
  looks at every string (map keys and free-form values included) but not at the fields that
  are accepted and dropped (server-set metadata, ``status``, unknown fields).
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Hashable, Mapping
from typing import (
    Annotated,
    Any,
    Generic,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

import msgspec

from wegent.errors import BadRequest, Cause, Invalid, invalid
from wegent.resources.meta import Metadata, validate_annotations, validate_labels
from wegent.resources.specs import ALIAS_KEY

T = TypeVar("T")

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")

_AT = re.compile(r" - at `(?:key` in `)?\$(?P<path>[^`]*)`$")
_POST_INIT_LINE = re.compile(r"^`(?P<field>[^`]*)`: (?P<message>.*)$")
_REASONS = (
    ("Required value", "FieldValueRequired"),
    ("Duplicate value", "FieldValueDuplicate"),
    ("Unsupported value", "FieldValueNotSupported"),
    ("Too long", "FieldValueTooLong"),
    ("Too many", "FieldValueTooMany"),
    ("Forbidden", "FieldValueForbidden"),
)
NUL_MESSAGE = "Invalid value: must not contain U+0000 (NUL)"
#: The strings without U+0000, as a JSON Schema (ECMA-262) and Python pattern. ``$(?!\n)`` as in
#: the other patterns (a no-op here); it also keeps schemathesis from rewriting the pattern
#: into a bounded repetition, which it cannot generate for long strings.
NO_NUL = r"^[^\u0000]*$(?!\n)"
#: The JSON escape of U+0000: raw control characters are not valid JSON, so a NUL in a string
#: is always written this way. Finding it (or a ``\\u0000`` look-alike) sends a body to the walk.
_NUL_ESCAPE = b"\\u0000"
_NUL_KEY = "\x00"  # stands for a map key holding NUL in ``_Walker.free_form``
_TOO_LONG = re.compile(r"^Expected `str` of length <= \d+$")
_TOO_MANY = re.compile(r"^Expected `(array|object)` of length <= \d+$")


class Decoded(NamedTuple, Generic[T]):
    """The decoded value and one warning per dropped unknown field (Warn mode)."""

    value: T
    warnings: list[str]


def decode(body: bytes | object, type_: type[T], *, field_validation: str = "Warn") -> Decoded[T]:
    """Decode ``body`` (JSON bytes, or an already parsed object) into ``type_``.

    Raises BadRequest (not JSON, bad ``field_validation``) or Invalid (every problem as causes).
    """
    if field_validation not in FIELD_VALIDATION:
        raise BadRequest(
            f"fieldValidation must be one of Strict, Warn, Ignore, not {_quote(field_validation)}"
        )
    try:
        if _may_hold_nul(body):
            raise msgspec.ValidationError("may hold a NUL: take the slow path")
        value: T = _fast(body, type_)
    except msgspec.ValidationError:
        parsed = parse_json(cast(bytes, body)) if _is_bytes(body) else body
        return _slow(parsed, type_, field_validation)
    _check_metadata(value, type_)
    return Decoded(value, [])


def _may_hold_nul(body: object) -> bool:
    """True when a string in ``body`` may hold U+0000 (a cheap search, never a parse)."""
    if _is_bytes(body):
        return _NUL_ESCAPE in (bytes(body) if isinstance(body, memoryview) else body)  # type: ignore[operator]
    try:
        return _NUL_ESCAPE in msgspec.json.encode(body)
    except (TypeError, msgspec.EncodeError, RecursionError):
        return False  # not JSON at all: the walk reports what is wrong with it


def _is_bytes(body: object) -> bool:
    return isinstance(body, bytes | bytearray | memoryview)


@functools.cache
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


def _fast(body: Any, type_: type[T]) -> T:
    """Decode in one call; a ValidationError means "take the slow path"."""
    try:
        if _is_bytes(body):
            result: T = _decoder(cast(Hashable, type_)).decode(body)
            return result
        return msgspec.convert(body, type_)
    except msgspec.ValidationError:
        raise
    except UNREADABLE as exc:
        raise unreadable(body, exc) from None


#: What msgspec raises for bytes that are not JSON it can read: malformed, not UTF-8, or
#: nested deeper than it recurses.
UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def parse_json(body: bytes | bytearray | memoryview | str) -> object:
    """Any JSON value of a request body; a 400 when it cannot be read (see UNREADABLE). Every
    body the API reads as JSON goes through here or :func:`decode`, so none can be a 500."""
    try:
        return msgspec.json.decode(body)
    except UNREADABLE as exc:
        raise unreadable(body, exc) from None


def unreadable(body: object, exc: Exception) -> BadRequest:
    """A body that cannot be parsed at all; msgspec's reason without its path."""
    if isinstance(exc, RecursionError):
        return BadRequest("request body is nested too deeply")
    if isinstance(exc, UnicodeDecodeError) or "Invalid UTF-8" in str(exc):  # msgspec 0.23 says so
        return BadRequest(f"request body is not valid UTF-8 (byte {_bad_utf8_offset(body)})")
    return BadRequest(f"request body is not valid JSON: {_split_error(str(exc))[0]}")


def _bad_utf8_offset(body: object) -> int:
    """Where the body stops being UTF-8 (msgspec reports the offset within one string)."""
    try:
        bytes(body).decode("utf-8")  # type: ignore[call-overload]
    except UnicodeDecodeError as exc:
        return exc.start
    except TypeError:
        pass
    return 0


def _slow(parsed: object, type_: type[T], field_validation: str) -> Decoded[T]:
    if not isinstance(parsed, dict):
        message = "the body must be a JSON object"
        cause = Cause(reason="FieldValueInvalid", message=message, field="")
        raise Invalid(message, kind=getattr(type_, "KIND", None) or None, causes=[cause])
    walker = _Walker(strict=field_validation == "Strict")
    cleaned = walker.walk(parsed, type_, "")
    if walker.causes:
        raise _invalid(walker.causes, parsed, type_)
    try:
        value: T = msgspec.convert(cleaned, type_)
    except msgspec.ValidationError as exc:  # the walk missed something: still a precise cause
        raise _invalid(_causes_from_error(str(exc), ""), parsed, type_) from None
    warnings = [] if field_validation == "Ignore" else [_unknown(p) for p in walker.unknown]
    return Decoded(value, warnings)


def _check_metadata(value: object, type_: type[Any]) -> None:
    """Labels and annotations have per-key rules msgspec cannot express: check them here."""
    metadata = getattr(value, "metadata", None)
    if not isinstance(metadata, Metadata):
        return
    causes = validate_labels(metadata.labels) + validate_annotations(metadata.annotations)
    if causes:
        kind = getattr(value, "kind", None)
        raise _invalid(causes, {"kind": kind, "metadata": {"name": metadata.name}}, type_)


def _invalid(causes: list[Cause], parsed: Mapping[Any, Any], type_: type[Any]) -> Invalid:
    """``{kind} "{name}" is invalid`` when both are known, from the body or the type's KIND."""
    kind = parsed.get("kind")
    if not isinstance(kind, str) or not kind:
        kind = getattr(type_, "KIND", None) or None
    metadata = parsed.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    name = name if isinstance(name, str) and name else None
    return invalid(kind, name, causes)


def _unknown(path: str) -> str:
    return f"unknown field {_quote(path)}"


def _quote(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    if rel.startswith("["):
        return base + rel
    return f"{base}.{rel}" if base else rel


def _reason(message: str) -> str:
    for prefix, reason in _REASONS:
        if message.startswith(prefix):
            return reason
    return "FieldValueInvalid"


def _split_error(message: str) -> tuple[str, str]:
    """msgspec's message without its " - at `$…`" suffix, and the path that suffix named."""
    match = _AT.search(message)
    if match:
        return message[: match.start()], match["path"].lstrip(".")
    return message, ""


def _causes_from_error(message: str, path: str) -> list[Cause]:
    """Causes of a ValidationError raised while building the Struct at ``path``."""
    text, rel = _split_error(message)
    base = _join(path, rel)
    causes: list[Cause] = []
    for line in text.split("\n"):
        match = _POST_INIT_LINE.match(line)
        field, detail = (_join(base, match["field"]), match["message"]) if match else (base, line)
        reason = _leaf_reason(detail) if not match else _reason(detail)
        causes.append(Cause(reason=reason, message=detail, field=field))
    return causes


def _leaf_reason(message: str) -> str:
    if _TOO_LONG.match(message):
        return "FieldValueTooLong"
    if _TOO_MANY.match(message):
        return "FieldValueTooMany"
    return _reason(message)


def _describe(value: object) -> str:
    """A short rendering of a rejected value for NotSupported messages."""
    if isinstance(value, str):
        return _quote(value if len(value) <= 64 else value[:64] + "...")
    if value is None or isinstance(value, bool | int | float):
        return _quote(value)
    return "array" if isinstance(value, list) else "object"


def _unwrap(type_: Any) -> tuple[Any, int | None, int | None]:
    """``Annotated[X, Meta(min_length, max_length)]`` → (X, min, max)."""
    if get_origin(type_) is not Annotated:
        return type_, None, None
    base, *extras = get_args(type_)
    low = high = None
    for meta in extras:
        if isinstance(meta, msgspec.Meta):
            low = meta.min_length if meta.min_length is not None else low
            high = meta.max_length if meta.max_length is not None else high
    return base, low, high


@functools.cache
def aliases_of(cls: type[msgspec.Struct]) -> dict[str, str]:
    """The input aliases of a Struct's fields (``specs.alias``): alias → the field's name."""
    found: dict[str, str] = {}
    for field in msgspec.structs.fields(cls):
        for meta in _metas(field.type):
            name = (meta.extra or {}).get(ALIAS_KEY)
            if isinstance(name, str):
                found[name] = field.encode_name
    return found


def _metas(type_: Any) -> list[msgspec.Meta]:
    """The ``msgspec.Meta`` annotations of a type, looking inside an optional."""
    if get_origin(type_) in (Union, types.UnionType):
        return [meta for option in get_args(type_) for meta in _metas(option)]
    if get_origin(type_) is Annotated:
        return [m for m in get_args(type_)[1:] if isinstance(m, msgspec.Meta)]
    return []


def _has_nul(value: object) -> bool:
    return isinstance(value, str) and "\x00" in value


def _is_struct(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, msgspec.Struct)


class _Walker:
    """One slow-path walk: the cleaned value plus every cause and unknown field found."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.causes: list[Cause] = []
        self.unknown: list[str] = []

    def add(self, reason: str, message: str, field: str) -> None:
        self.causes.append(Cause(reason=reason, message=message, field=field))

    def walk(self, value: object, type_: Any, path: str) -> object:
        """Check ``value`` against ``type_``; return it with unknown fields dropped and integral
        floats where an ``int`` is expected made ints."""
        base, low, high = _unwrap(type_)
        if _has_nul(value) and base is not Any:  # Any: dropped
            self.add("FieldValueInvalid", NUL_MESSAGE, path)
            return value
        if base is int and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema's integer: 5.0 is 5
        origin = get_origin(base)
        if origin is Union or origin is types.UnionType:
            return self.union(value, type_, base, path)
        if _is_struct(base):
            return self.struct(value, base, path)
        if origin is list and isinstance(value, list):
            return self.items(value, get_args(base)[0], low, high, path)
        if origin is dict and isinstance(value, dict):
            return self.mapping(value, get_args(base), low, high, path)
        self.leaf(value, type_, path)
        return value

    def union(self, value: object, type_: Any, base: Any, path: str) -> object:
        # UNSET stands for an absent field: no JSON value is ever one
        options = [t for t in get_args(base) if t is not type(None) and t is not msgspec.UnsetType]
        if value is None and type(None) in get_args(base):
            return value
        if len(options) == 1:
            return self.walk(value, options[0], path)
        self.leaf(value, type_, path)
        return value

    def leaf(self, value: object, type_: Any, path: str) -> None:
        try:
            msgspec.convert(value, type_)
        except msgspec.ValidationError as exc:
            if get_origin(_unwrap(type_)[0]) is Literal:
                allowed = ", ".join(_quote(v) for v in get_args(_unwrap(type_)[0]))
                message = f"Unsupported value: {_describe(value)}: supported values: {allowed}"
                self.add("FieldValueNotSupported", message, path)
            else:
                self.causes.extend(_causes_from_error(str(exc), path))

    def bounds(self, size: int, low: int | None, high: int | None, what: str, path: str) -> bool:
        """Check a container's length; False when it is out of bounds (items not walked)."""
        if high is not None and size > high:
            self.add("FieldValueTooMany", f"Expected `{what}` of length <= {high}", path)
            return False
        if low is not None and size < low:
            self.add("FieldValueInvalid", f"Expected `{what}` of length >= {low}", path)
            return False
        return True

    def items(
        self, value: list[Any], item: Any, low: int | None, high: int | None, path: str
    ) -> object:
        if not self.bounds(len(value), low, high, "array", path):
            return value
        return [self.walk(v, item, f"{path}[{i}]") for i, v in enumerate(value)]

    def mapping(
        self,
        value: dict[Any, Any],
        kv: tuple[Any, ...],
        low: int | None,
        high: int | None,
        path: str,
    ) -> object:
        if not self.bounds(len(value), low, high, "object", path):
            return value
        key_type, value_type = kv
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            if _has_nul(key):
                self.add("FieldValueInvalid", NUL_MESSAGE, f"{path}[{key}]")
            elif key_type is not str or not isinstance(key, str):
                self.leaf(key, key_type, f"{path}[{key}]")
            if value_type is Any:  # free-form: any JSON value, but no NUL anywhere in it
                self.free_form(item, f"{path}[{key}]")
                cleaned[key] = item
            else:
                cleaned[key] = self.walk(item, value_type, f"{path}[{key}]")
        return cleaned

    def free_form(self, value: object, path: str) -> None:
        """A cause for every string holding U+0000 in a free-form value, keys included (in
        document order; iterative, so hostile nesting cannot exhaust the stack)."""
        stack: list[tuple[object, str]] = [(value, path)]
        while stack:
            item, at = stack.pop()
            if _has_nul(item):
                self.add("FieldValueInvalid", NUL_MESSAGE, at)
            elif isinstance(item, dict):
                children = [
                    (_NUL_KEY if _has_nul(key) else child, f"{at}[{key}]")
                    for key, child in item.items()
                ]
                stack.extend(reversed(children))
            elif isinstance(item, list):
                stack.extend(reversed([(child, f"{at}[{i}]") for i, child in enumerate(item)]))

    def struct(self, value: object, cls: type[msgspec.Struct], path: str) -> object:
        if not isinstance(value, dict):
            self.leaf(value, cls, path)
            return value
        before = len(self.causes)
        value, written_as = self.unalias(value, cls, path)
        fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            field = fields.get(key) if isinstance(key, str) else None
            if field is not None:  # checked under the name it was written with
                cleaned[key] = self.walk(item, field.type, _join(path, written_as.get(key, key)))
            elif cls.__struct_config__.forbid_unknown_fields:
                self.unknown_field(_join(path, str(key)))
        for name, field in fields.items():
            if field.required and name not in value:
                self.add("FieldValueRequired", "Required value", _join(path, name))
        if issubclass(cls, Metadata):
            self.metadata_rules(cleaned, path)
        if len(self.causes) == before:
            self.build(cleaned, cls, path)
        return cleaned

    def unalias(
        self, value: dict[Any, Any], cls: type[msgspec.Struct], path: str
    ) -> tuple[dict[Any, Any], dict[str, str]]:
        """Input aliases (``bind_mode`` for ``bindMode``) moved to their field, and the fields
        that were written under an alias; both given, they must be equal. A null alias is as
        if it were absent."""
        aliases = aliases_of(cls)
        if not aliases or not aliases.keys() & value.keys():
            return value, {}
        value = dict(value)
        written_as: dict[str, str] = {}
        for name, field in aliases.items():
            if name not in value:
                continue
            given = value.pop(name)
            if given is None:
                continue
            if value.get(field) is None:
                value[field] = given
                written_as[field] = name
            elif value[field] != given:
                shown = f"{_quote(given)}: must equal {field} ({_quote(value[field])})"
                self.add("FieldValueInvalid", f"Invalid value: {shown}", _join(path, name))
        return value, written_as

    def metadata_rules(self, cleaned: dict[Any, Any], path: str) -> None:
        """Per-key rules of labels and annotations, which msgspec cannot express."""
        for name, check in (("labels", validate_labels), ("annotations", validate_annotations)):
            entries = cleaned.get(name)
            if isinstance(entries, dict):  # entries holding NUL have their cause already
                kept = {k: v for k, v in entries.items() if not (_has_nul(k) or _has_nul(v))}
                self.causes.extend(check(kept, _join(path, name)))

    def unknown_field(self, path: str) -> None:
        self.unknown.append(path)
        if self.strict:
            self.add("FieldValueInvalid", _unknown(path), path)

    def build(self, cleaned: dict[Any, Any], cls: type[msgspec.Struct], path: str) -> None:
        """Run the Struct's own checks (``__post_init__``) once its fields are all valid."""
        try:
            msgspec.convert(cleaned, cls)
        except msgspec.ValidationError as exc:
            self.causes.extend(_causes_from_error(str(exc), path))
