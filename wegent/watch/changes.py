"""The change log as the watch reads it: its rows, and who is interested in each.

``watch_changes`` holds one row per change of a live object (see the migration that made it):
the object as answered after the change, and what selectors read of it before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from wegent.resources.selectors import Selector

#: The change types of the log, as watch events name them.
TYPES = {"A": "ADDED", "M": "MODIFIED", "D": "DELETED"}
_COLUMNS = "rv, kind, namespace, name, uid::text, change, match::text, old_match::text, body"
#: Changes after one version up to another, oldest first, a page at a time; with the horizon,
#: so that a reader learns in the same snapshot whether the log still holds what it asks for.
READ = (
    f"SELECT {_COLUMNS}, (SELECT horizon FROM watch_state) AS horizon FROM watch_changes "
    "WHERE rv > $1 AND rv <= $2 ORDER BY rv LIMIT $3"
)
HORIZON = "SELECT horizon FROM watch_state"
PAGE = 1000
_match = msgspec.json.Decoder(dict[str, Any])


class Change(NamedTuple):
    """One logged change. ``match``/``old_match``: labels (and a Task's filter columns) after
    and before it; ``old_match`` is None for an ADDED change."""

    version: int
    kind: str
    namespace: str
    name: str
    uid: str
    type: str
    match: dict[str, Any]
    old_match: dict[str, Any] | None
    body: bytes

    @classmethod
    def of(cls, row: Any) -> Change:
        old = row[7]
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            TYPES[row[5]],
            _match.decode(row[6]),
            _match.decode(old) if old is not None else None,
            row[8],
        )


@dataclass(frozen=True)
class Interest:
    """What one watch shows: a kind, in some namespaces (None: every one), through the list's
    selectors and filters."""

    kind: str
    namespaces: frozenset[str] | None
    selector: Selector
    #: Field selector terms on name and namespace: (column, "=" or "<>", value).
    fields: tuple[tuple[str, str, str], ...] = ()
    #: The kind's own list filters: (column, value), compared with the logged columns.
    filters: tuple[tuple[str, str], ...] = ()

    def shows(self, namespace: str, name: str, match: dict[str, Any]) -> bool:
        """Whether an object in this state is in the watched list."""
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        for column, op, value in self.fields:
            given = name if column == "name" else namespace
            if (given == value) != (op == "="):
                return False
        for column, value in self.filters:
            if match.get(column) != value:
                return False
        return self.selector.matches(match.get("labels") or {})

    def event(self, change: Change) -> str | None:
        """The event type this change is to the watch, or None when it does not see it: an
        object that starts to match is ADDED, one that stops matching DELETED (§15)."""
        now = change.type != "DELETED" and self.shows(change.namespace, change.name, change.match)
        before = change.old_match is not None and self.shows(
            change.namespace, change.name, change.old_match
        )
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None
