"""Field selectors (API.md §14): ``metadata.name`` and ``metadata.namespace`` compared with
``=``, ``==`` or ``!=``, comma meaning AND, as the Kubernetes API server takes them for a
custom resource. Any other field is a 400 naming it. Values may use the Kubernetes escapes
(``\\,``, ``\\=``, ``\\\\``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from wegent.errors import BadRequest

#: The fields a selector may name, and the column each one is compared with.
FIELDS = {"metadata.name": "name", "metadata.namespace": "namespace"}
MAX_TERMS = 16
_TERM = re.compile(r"(?P<field>[^=!]*)(?P<op>==|=|!=)(?P<value>.*)", re.S)


@dataclass(frozen=True)
class FieldSelector:
    """Parsed terms: (column, SQL operator, value), and the selector in one canonical form."""

    terms: tuple[tuple[str, str, str], ...]

    @property
    def canonical(self) -> str:
        return ",".join(f"{column}{op}{value}" for column, op, value in sorted(self.terms))


NO_FIELDS = FieldSelector(())


def parse_field_selector(text: str) -> FieldSelector:
    """A selector as Kubernetes writes it; BadRequest when malformed or naming another field."""
    if not text:
        return NO_FIELDS
    terms = []
    for part in _split(text):
        if not part:
            continue
        match = _TERM.fullmatch(part)
        if match is None:
            raise BadRequest(f'invalid field selector "{text[:200]}": "{part}" has no operator')
        field = match["field"].strip()
        column = FIELDS.get(field)
        if column is None:
            raise BadRequest(
                f'field label not supported: "{field[:100]}": a field selector may name '
                "metadata.name and metadata.namespace"
            )
        op = "<>" if match["op"] == "!=" else "="
        terms.append((column, op, _unescape(match["value"].strip())))
    if len(terms) > MAX_TERMS:
        raise BadRequest(f"a field selector has at most {MAX_TERMS} terms")
    return FieldSelector(tuple(terms))


def _split(text: str) -> list[str]:
    """Split at commas that are not escaped."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise BadRequest(f'invalid field selector "{text[:200]}": it ends with a backslash')
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
