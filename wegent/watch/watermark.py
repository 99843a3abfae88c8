"""The watermark: the highest resourceVersion below which every change is committed or gone.

A version is taken inside its transaction, so versions do not commit in order: 101 can commit
after 102. A watch that delivered 102 first would lose 101 to a client resuming from 102.
So a watch delivers a change only once no transaction that could still commit a lower version
is running. The proof (docs/watch.md) needs two facts:

1. ``wegent_stamp`` gives the transaction its id *before* it takes a version;
2. a poll reads the sequence's ``last_value`` (M) *before* it reads which transactions of this
   database hold an id (R: ``pg_stat_activity.backend_xid``, and prepared transactions).

Then every version <= M was taken by a transaction that had its id before R was read: when R is
read it has ended or it is in R. So a :class:`Mark` (M, R) is *settled* — every version <= M is
final — as soon as a later reading shows none of R running any more; a transaction leaves that
reading when it ends, which is also when its commit becomes visible to every later snapshot.

(A snapshot's ``xip`` would not do: it lists only transactions below the snapshot's ``xmax``,
one more than the newest *finished* one, so the newest running transaction can be missing.)
"""

from __future__ import annotations

import time
from typing import NamedTuple

#: Settled marks are dropped; unsettled ones are thinned past this many (a long transaction
#: holds every later mark back; keeping fewer only delays the watermark, never breaks it).
MAX_MARKS = 256


class Mark(NamedTuple):
    """Every version <= ``version`` is final once none of ``running`` runs."""

    version: int
    running: frozenset[int]
    at: float  # time.monotonic() when it was made


class Watermark:
    """The settled version, advanced by each poll's (M, snapshot) pair."""

    def __init__(self, start: int = 0) -> None:
        self.version = start
        self._marks: list[Mark] = []

    def held(self) -> tuple[float, frozenset[int]]:
        """How long the oldest unsettled mark has waited, and for which transactions."""
        if not self._marks:
            return 0.0, frozenset()
        oldest = self._marks[0]
        return time.monotonic() - oldest.at, oldest.running

    @property
    def pending(self) -> int:
        """Marks not settled yet: a poll soon will likely move the watermark."""
        return len(self._marks)

    def advance(self, last_value: int, running: frozenset[int]) -> int:
        """Record (M, the transactions running at a snapshot taken after M was read) and
        settle every mark none of whose transactions still runs. Answers the watermark, which
        never goes back."""
        self._marks.append(Mark(last_value, running, time.monotonic()))
        kept: list[Mark] = []
        for mark in self._marks:
            if mark.running.isdisjoint(running):
                self.version = max(self.version, mark.version)
            else:
                kept.append(mark)
        self._marks = [mark for mark in kept if mark.version > self.version]
        if len(self._marks) > MAX_MARKS:
            self._marks = self._marks[::2]
        return self.version
