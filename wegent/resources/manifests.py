"""Batch bodies (API.md §9): a JSON array of manifests or a YAML stream.

YAML is read with a safe loader narrowed to what JSON can hold, so a YAML body means exactly
what the same JSON body would:

- timestamps stay strings (``2026-01-01`` is the string, never a date);
- mapping keys are always strings: a scalar key is taken as written (``1: a`` and ``on: a``
  give the keys ``"1"`` and ``"on"``); a list or mapping as a key is an error;
- ``.inf``/``.nan``, ``!!binary``, ``!!set``, ``!!omap`` and ``!!pairs`` are errors;
- aliases (``*name``) are errors, which rules out "billion laughs" expansion; anchors alone
  are harmless and allowed, and so are inline merge keys (``<<: {a: 1}``);
- duplicate keys: the last one wins, as in the JSON decoder.

Errors name the document (1-based, empty documents count) and the line (1-based, counted in
the whole body). libyaml refuses nesting deeper than 1000 levels, the JSON decoder about as deep.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from wegent.errors import BadRequest, Invalid
from wegent.resources.decode import parse_json, unreadable

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_MANIFESTS = 500
JSON_MEDIA_TYPES = frozenset({"application/json"})
YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})

_TAG = "tag:yaml.org,2002:"
_DROPPED_RESOLVERS = {f"{_TAG}timestamp", f"{_TAG}value"}
_REFUSED_TAGS = ("binary", "set", "omap", "pairs")
# Characters YAML 1.1 forbids in a stream (libyaml's own check, done here to locate them).
_UNACCEPTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def parse_manifests(body: bytes, media_type: str) -> list[object]:
    """The manifests of a batch body, not yet validated. ValueError for an unsupported media
    type (the caller answers 415 before calling); BadRequest for an unreadable body; Invalid
    for more than ``MAX_MANIFESTS``. Media type parameters (``; charset=utf-8``) are ignored."""
    essence = media_type.split(";", 1)[0].strip().lower()
    if essence not in JSON_MEDIA_TYPES | YAML_MEDIA_TYPES:
        raise ValueError(f"unsupported media type {media_type!r}")
    text = _utf8(body)
    items = _json_items(text) if essence in JSON_MEDIA_TYPES else _yaml_items(text)
    if len(items) > MAX_MANIFESTS:
        raise Invalid(f"at most {MAX_MANIFESTS} manifests per request, got {len(items)}")
    return items


def _utf8(body: bytes) -> str:
    """The body as text, without a leading byte order mark."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise unreadable(body, error) from None
    return text.removeprefix("\ufeff")


def _json_items(text: str) -> list[object]:
    """A JSON array of manifests, or one manifest object."""
    value = parse_json(text)
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise BadRequest("the body must be a JSON array of manifests, or one manifest object")
    return value


def _yaml_items(text: str) -> list[object]:
    """The manifests of a YAML stream: empty documents skipped, list documents spread."""
    _check_characters(text)
    items: list[object] = []
    documents = 0
    try:
        for document in yaml.load_all(text, Loader=_Loader):
            documents += 1
            if isinstance(document, list):
                items.extend(document)
            elif document is not None:
                items.append(document)
    except _AliasError:
        raise _alias_error(text) from None
    except yaml.MarkedYAMLError as error:
        raise _yaml_error(documents + 1, error) from None
    except (yaml.YAMLError, RecursionError) as error:
        problem = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise BadRequest(f"invalid YAML in document {documents + 1}: {problem}") from None
    return items


def _yaml_error(document: int, error: yaml.MarkedYAMLError) -> BadRequest:
    mark = error.problem_mark or error.context_mark
    where = f" at line {mark.line + 1}" if mark else ""
    problem = error.problem or error.context or "syntax error"
    return BadRequest(f"invalid YAML in document {document}{where}: {problem}")


def _alias_error(text: str) -> BadRequest:
    """Names the stream's first alias: the loader only knows the node it points to."""
    document = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            document += isinstance(event, yaml.DocumentStartEvent)
            if isinstance(event, yaml.AliasEvent) and event.start_mark:
                where = f"document {document} at line {event.start_mark.line + 1}"
                return BadRequest(f"invalid YAML in {where}: aliases are not allowed")
    except yaml.YAMLError:  # pragma: no cover - the stream parsed up to its first alias
        pass
    return BadRequest("invalid YAML: aliases are not allowed")  # pragma: no cover


def _check_characters(text: str) -> None:
    """Refuse characters YAML forbids here, where their document and line are known exactly
    (libyaml finds them while reading ahead, possibly several documents early)."""
    found = _UNACCEPTABLE.search(text)
    if found is None:
        return
    line = text.count("\n", 0, found.start()) + 1
    document = _document_at(text, found.start())
    problem = f"unacceptable character #x{ord(found.group()):04X}"
    raise BadRequest(f"invalid YAML in document {document} at line {line}: {problem}")


def _document_at(text: str, offset: int) -> int:
    """The 1-based number of the document that ``offset`` falls in."""
    started = 0
    try:
        for event in yaml.parse(text[:offset], Loader=_Loader):
            started += isinstance(event, yaml.DocumentStartEvent)
    except yaml.YAMLError:
        pass
    return max(started, 1)


class _AliasError(ConstructorError):
    """A node reached a second time, hence through an alias."""


class _Loader(_BaseLoader):
    """The safe loader, narrowed to JSON-compatible output and refusing aliases."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_RESOLVERS]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """Refuses a node met a second time: it was reached through an alias."""
        if node in self.constructed_objects or node in self.recursive_objects:
            raise _AliasError(None, None, "aliases are not allowed", node.start_mark)
        return super().construct_object(node, deep)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Like the safe loader's, but every key is the string written in the document."""
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "mapping keys must be strings",
                    key_node.start_mark,
                )
            if key_node in self.constructed_objects:
                raise _AliasError(None, None, "aliases are not allowed", key_node.start_mark)
            self.constructed_objects[key_node] = key_node.value
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


def _timestamp_as_string(loader: _Loader, node: ScalarNode) -> str:
    """An explicit ``!!timestamp`` stays the string it is written as, like an implicit one."""
    return loader.construct_yaml_str(node)


def _finite_float(loader: _Loader, node: ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise ConstructorError(
            None, None, "infinite and NaN numbers are not allowed", node.start_mark
        )
    return value


def _refused(loader: _Loader, node: Node) -> NoReturn:
    tag = node.tag.replace(_TAG, "!!")
    raise ConstructorError(None, None, f"the tag {tag} is not allowed", node.start_mark)


_Loader.add_constructor(f"{_TAG}timestamp", _timestamp_as_string)
_Loader.add_constructor(f"{_TAG}float", _finite_float)
for _name in _REFUSED_TAGS:
    _Loader.add_constructor(f"{_TAG}{_name}", _refused)
