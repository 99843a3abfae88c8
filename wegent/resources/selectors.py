"""Kubernetes label selectors (API.md §7): parsed once, then checked in Python or compiled to SQL.

The SQL uses only JSONB containment (``@>``) and key existence (``?``), the two operators a GIN
``jsonb_ops`` index on the labels column serves, so a selective selector stays cheap on a large
table. User text only ever reaches the database as bound parameters.

Grammar (comma means AND)::

    k=v  k==v  k!=v  k in (a,b)  k notin (a,b)  k  !k

Differences from ``k8s.io/apimachinery`` worth knowing: ``in`` and ``notin`` are keywords only
where an operator is expected (so ``in=x`` selects the label ``in``), and the set-based ``gt``/
``lt`` operators (``>``, ``<``) are not supported. As in Kubernetes, values in a set may be empty
(``k in (a,)`` holds ``a`` and the empty value), but ``k in ()`` is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from wegent.errors import BadRequest
from wegent.resources.meta import label_value_problems, qualified_name_problems

MAX_REQUIREMENTS = 64
MAX_VALUES = 64

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

_SPACE = " \t\n\r\f\v"
_TOKEN = re.compile(
    rf"[{_SPACE}]*(?:(?P<op>==|!=|[,=!()<>])|(?P<word>[^{_SPACE},=!()<>]+))", re.ASCII
)
_QUOTED_MAX = 200


@dataclass(frozen=True, order=True)
class Requirement:
    """One condition on one label key; ``values`` is sorted and free of duplicates."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in ("=", "!="):
            return f"{self.key}{self.operator}{self.values[0]}"
        listed = ",".join(self.values) or ","  # the empty value alone is written "(,)"
        return f"{self.key} {self.operator} ({listed})"

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: ``!=`` and ``notin`` also match objects without the key."""
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!":
            return self.key not in labels
        found = self.key in labels and labels[self.key] in self.values
        return found if self.operator in ("=", "in") else not found

    def sql(self, column: str, bind: Callable[[str], str]) -> str:
        """The condition over JSONB ``column``; ``bind`` records a parameter, gives its ``$n``."""
        if self.operator == "exists":
            return f"{column} ? {bind(self.key)}"
        if self.operator == "!":
            return f"NOT ({column} ? {bind(self.key)})"
        tests = [f"{column} @> {bind(_pair(self.key, v))}::jsonb" for v in self.values]
        if self.operator == "=":
            return tests[0]
        if self.operator == "!=":
            return f"NOT ({tests[0]})"
        either = " OR ".join(tests)
        return f"({either})" if self.operator == "in" else f"NOT ({either})"


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements, sorted and free of duplicates; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @property
    def canonical(self) -> str:
        """One spelling per meaning (``==`` is ``=``, sets sorted), to bind paging tokens to."""
        return ",".join(str(r) for r in self.requirements)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """What :meth:`sql` selects, evaluated on one object's labels."""
        return all(r.matches(labels) for r in self.requirements)

    def sql(self, column: str, first_param: int) -> tuple[str, list[str]]:
        """A boolean SQL expression over JSONB ``column`` (a non-null object, trusted SQL text)
        and its parameters, numbered from ``$first_param``; wrapped in parentheses when it has
        several terms, so it can be combined with other conditions as is."""
        if first_param < 1:
            raise ValueError("SQL parameters are numbered from 1")
        params: list[str] = []

        def bind(value: str) -> str:
            params.append(value)
            return f"${first_param + len(params) - 1}"

        terms = [r.sql(column, bind) for r in self.requirements]
        if not terms:
            return "TRUE", []
        return (terms[0] if len(terms) == 1 else f"({' AND '.join(terms)})"), params


def parse_selector(text: str) -> Selector:
    """Parse a ``labelSelector``; any problem is a BadRequest naming its character offset."""
    if not text:
        return EVERYTHING  # most lists: no parser to build
    requirements = _Parser(text).parse()
    return Selector(tuple(sorted(set(requirements))))


EVERYTHING = Selector()


def _pair(key: str, value: str) -> str:
    return json.dumps({key: value}, separators=(",", ":"))


def _quote(text: str) -> str:
    """Quoted for a message: escaped (ASCII only) and cut short, since it echoes user input."""
    if len(text) > _QUOTED_MAX:
        return json.dumps(text[:_QUOTED_MAX])[:-1] + '..."'
    return json.dumps(text)


class _Token(NamedTuple):
    kind: str  # an operator's own text, "word" or "end"
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while (match := _TOKEN.match(text, pos)) and match.end() > pos:
        kind = "word" if match["word"] else match["op"]
        start = match.start("word") if match["word"] else match.start("op")
        tokens.append(_Token(kind, match["word"] or match["op"], start))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the token list; every error points at a token's offset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def error(self, problem: str, pos: int) -> BadRequest:
        return BadRequest(f"invalid labelSelector {_quote(self.text)}: {problem} at position {pos}")

    def expected(self, what: str, token: _Token) -> BadRequest:
        return self.error(f"expected {what}", token.pos)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if self.peek().kind == "end":
            return requirements
        while True:
            if len(requirements) == MAX_REQUIREMENTS:
                raise self.error(
                    f"too many requirements (at most {MAX_REQUIREMENTS})", self.peek().pos
                )
            requirements.append(self.requirement())
            token = self.take()
            if token.kind == "end":
                return requirements
            if token.kind != ",":
                raise self.expected('"," or end of input', token)

    def requirement(self) -> Requirement:
        if self.peek().kind == "!":
            self.take()
            return Requirement(self.key(), "!")
        key = self.key()
        op = self.peek()
        if op.kind in ("=", "==", "!="):
            self.take()
            return Requirement(key, "!=" if op.kind == "!=" else "=", (self.value(),))
        if op.kind == "word" and op.text in ("in", "notin"):
            self.take()
            return Requirement(key, "in" if op.text == "in" else "notin", self.values())
        if op.kind in (",", "end"):
            return Requirement(key, "exists")
        raise self.expected('"=", "==", "!=", "in", "notin", "," or end of input', op)

    def key(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise self.expected("a label key", token)
        if problems := qualified_name_problems(token.text):
            raise self.error(
                f"invalid label key {_quote(token.text)}: {'; '.join(problems)}", token.pos
            )
        return token.text

    def value(self) -> str:
        """A value after ``=``, ``==`` or ``!=``; nothing before a comma or the end is empty."""
        if self.peek().kind in (",", "end"):
            return ""
        return self.word_value()

    def word_value(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise self.expected("a label value", token)
        if problems := label_value_problems(token.text):
            raise self.error(
                f"invalid label value {_quote(token.text)}: {'; '.join(problems)}", token.pos
            )
        return token.text

    def values(self) -> tuple[str, ...]:
        """``(a,b)``; as in Kubernetes an empty item between delimiters is the empty value."""
        if (opening := self.take()).kind != "(":
            raise self.expected('"("', opening)
        if self.peek().kind == ")":
            raise self.expected("a label value", self.peek())
        values: list[str] = []
        while True:
            if len(values) == MAX_VALUES:
                raise self.error(f"too many values (at most {MAX_VALUES})", self.peek().pos)
            values.append("" if self.peek().kind in (",", ")") else self.word_value())
            token = self.take()
            if token.kind == ")":
                return tuple(sorted(set(values)))
            if token.kind != ",":
                raise self.expected('")"' if token.kind == "end" else '"," or ")"', token)
