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


class Filed:
    """The watches of one kind and namespace, grouped by what they show, and indexed so that a
    change is checked only against the interests it can concern.

    Each interest whose selector has an equality (``=``, ``in``) requirement is filed under
    that requirement's label pairs: it can show an object only when the object has one of
    them, so a change whose labels (before and after) have none is not checked against it.
    Interests without one are checked against every change.
    """

    def __init__(self) -> None:
        self.watches: dict[Interest, set[Any]] = {}
        self._by_label: dict[tuple[str, str], set[Interest]] = {}
        self._anywhere: set[Interest] = set()

    def add(self, interest: Interest, watch: Any) -> None:
        watches = self.watches.get(interest)
        if watches is None:
            watches = self.watches[interest] = set()
            for pair in _anchor(interest):
                self._by_label.setdefault(pair, set()).add(interest)
            if not _anchor(interest):
                self._anywhere.add(interest)
        watches.add(watch)

    def remove(self, interest: Interest, watch: Any) -> bool:
        """Forget ``watch``; False when it was not filed here."""
        watches = self.watches.get(interest)
        if watches is None or watch not in watches:
            return False
        watches.discard(watch)
        if not watches:
            del self.watches[interest]
            self._anywhere.discard(interest)
            for pair in _anchor(interest):
                filed = self._by_label[pair]
                filed.discard(interest)
                if not filed:
                    del self._by_label[pair]
        return True

    def concerned(self, change: Change) -> set[Interest]:
        """The interests this change may matter to (a superset; each still decides)."""
        found = set(self._anywhere)
        for match in (change.match, change.old_match):
            if match is not None and self._by_label:
                for pair in (match.get("labels") or {}).items():
                    found |= self._by_label.get(pair, set())
        return found


def _anchor(interest: Interest) -> list[tuple[str, str]]:
    """The label pairs of the interest's first equality requirement (empty when none)."""
    for requirement in interest.selector.requirements:
        if requirement.operator in ("=", "in"):
            return [(requirement.key, value) for value in requirement.values]
    return []
