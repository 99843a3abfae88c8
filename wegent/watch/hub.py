"""The hub: one per process, it reads the change log and hands every change to the watches.

One dedicated connection (never a pooled one) per process does all of the watch's database
work: it ``LISTEN``s on ``wegent_watch``, and *polls*: read the sequence's ``last_value``, take a
snapshot, move the watermark (``wegent.watch.watermark``), read the log's new rows up to it and
offer each to the watches of its kind. A poll runs when a notification arrives, when this
process has just answered a write (it then also ``NOTIFY``s the other processes, if the poll
saw another hub connected: a ``NOTIFY`` is a transaction with a commit to flush), every
:data:`BUSY_POLL_S` while the watermark waits for running transactions, and every
:data:`IDLE_POLL_S` otherwise (writes by processes that do not notify, such as the CLI).

Notifications are sent after a write, from here, and not by a trigger inside the writing
transaction: a transaction that notifies holds a database-wide lock from its pre-commit to its
end, which would put every write's commit in one line (docs/decisions.md).

Each watch holds a bounded queue; the hub never waits for a watch. One that falls behind by
more than its bound is dropped: its stream ends, and its client resumes from the last version
it received. When the connection is lost, every stream ends with an ERROR event (503), the hub
reconnects by itself, and clients resume from their last version: the log still holds what
they missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

import asyncpg

from wegent.auth.access import Access, Principal
from wegent.db.engine import Database
from wegent.errors import ApiError, Expired, ServiceUnavailable, TooManyRequests
from wegent.resources.registry import KindInfo
from wegent.settings import Settings
from wegent.watch.changes import PAGE, READ, Change, Filed, Interest
from wegent.watch.stream import Options, Watch
from wegent.watch.wake import wait_set
from wegent.watch.watermark import Watermark

log = logging.getLogger("wegent.watch")

CHANNEL = "wegent_watch"
APPLICATION = "wegent-watch"  # the listener's application_name, for operators
IDLE_POLL_S = 1.0
BUSY_POLL_S = 0.02
MIN_GAP_S = 0.01
HELD_REPORT_S = 5.0
PRUNE_EVERY_S = 30.0
READY_WITHIN_S = 10.0  # at start
RECONNECT_WAIT_S = 3.0  # a watch waits this long for a reconnecting hub, then 503
LAST_VALUE = "SELECT last_value FROM resource_version_seq"
# The transactions of this database that hold a transaction id now (see
# wegent.watch.watermark): every backend's, and prepared ones (which have no backend); and
# whether another process's hub is connected (only then is a NOTIFY worth its commit).
STATE = (
    "SELECT ARRAY(SELECT backend_xid::text::bigint FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_xid IS NOT NULL "
    "UNION ALL SELECT transaction::text::bigint FROM pg_prepared_xacts "
    "WHERE database = current_database()), horizon, access, "
    "EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
    f"AND application_name = '{APPLICATION}' AND pid <> pg_backend_pid()) FROM watch_state"
)
# The oldest changes, once below the watermark and older than the retention, go; the
# horizon moves to the highest one that went, in the same statement.
# Small deletes with a pause between them: a 10,000-row delete writes enough WAL to hold up
# every commit behind it (write stalls of 100-200 ms under load); 2,000 rows every 20 ms still
# remove far more than any write rate adds.
PRUNE_BATCH = 2_000
PRUNE_PAUSE_S = 0.02
PRUNABLE = (
    "SELECT EXISTS (SELECT 1 FROM watch_changes WHERE rv <= $1 "
    "AND at < now() - $2 * interval '1 second')"
)
PRUNE = (
    "WITH cut AS (SELECT max(rv) AS rv FROM (SELECT rv FROM watch_changes WHERE rv <= $1 "
    "AND at < now() - $2 * interval '1 second' ORDER BY rv LIMIT $3) oldest), "
    "gone AS (DELETE FROM watch_changes WHERE rv <= (SELECT rv FROM cut) RETURNING rv) "
    "UPDATE watch_state SET horizon = greatest(horizon, (SELECT max(rv) FROM gone)) "
    "WHERE EXISTS (SELECT 1 FROM gone)"
)
LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class Hub:
    """The process's change reader and its watches (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        access: Access,
        settings: Settings,
    ) -> None:
        self._db = db
        self.access = access
        self.retention_s = settings.watch_retention_s
        self.max_watches = settings.watch_max
        self.buffer = settings.watch_buffer
        self.bookmark_s = settings.watch_bookmark_s
        #: Every change at or below it has been offered to every watch (the watermark).
        self.version = 0
        self._watermark = Watermark()
        self._conn: asyncpg.Connection | None = None
        self._pid = 0
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._wrote = False  # this process answered a write since the last poll
        self._others = True  # another process's hub listens (as of the last poll)
        # By (kind, namespace), None for a watch across namespaces: a change is offered only
        # to the watches of its kind and namespace, and to those across namespaces.
        # Within a key, watches that show the same things share one Interest, which is
        # evaluated once per change for all of them.
        self._watches: dict[tuple[str, str | None], Filed] = {}
        self._waiting: set[Watch] = set()  # watches waiting for the watermark to pass a version
        self._count = 0
        self._access_count: int | None = None
        self._pruned = time.monotonic()
        self._polled = 0.0
        self._pruning: asyncio.Task[None] | None = None
        self._reported = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start polling; return once the watermark is known (or after a few seconds)."""
        self._task = asyncio.create_task(self._run(), name="wegent-watch-hub")
        await wait_set(self._ready, READY_WITHIN_S)

    def end_streams(self) -> None:
        """Shutdown starts: every stream ends plainly (its client resumes elsewhere)."""
        self._end_all(None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        self._end_all(None)
        await self._close()

    async def list_version(self) -> int:
        """A list's resourceVersion: a watch from it misses nothing the list does not show.

        Every change at or below the watermark was committed (or abandoned) before any list
        that starts now takes its snapshot, so the list shows it. That stays true: while the
        hub reconnects, the last watermark is still a safe answer.
        """
        if not self.version:
            await self.ready(READY_WITHIN_S)
        return self.version

    async def ready(self, within: float = RECONNECT_WAIT_S) -> None:
        """Wait (``within`` seconds at most, then 503) for the hub to be reading the log."""
        if not self._ready.is_set():
            await wait_set(self._ready, within)
        if not self._ready.is_set():
            raise ServiceUnavailable("the change log cannot be read now; try again", retry_after=1)

    async def settle(self, within: float = 10.0) -> int:
        """Wait until every version taken so far is settled and offered (tests and tools that
        need "everything written so far"); answers the watermark."""
        async with self._db.acquire() as conn:
            target = int(await conn.fetchval(LAST_VALUE))
        async with asyncio.timeout(within):
            while self.version < target:
                self._wake.set()
                await asyncio.sleep(0.005)
        return self.version

    def wrote(self) -> None:
        """This process answered a write: poll now, and tell the other processes."""
        self._wrote = True
        self._wake.set()

    # -- watches -------------------------------------------------------------------------------

    def open(
        self,
        info: KindInfo,
        interest: Interest,
        principal: Principal,
        namespace: str | None,
        options: Options,
    ) -> Watch:
        """A new watch, registered (see :class:`Watch`)."""
        return Watch(
            self,
            self._db,
            info,
            interest,
            principal,
            namespace,
            options,
            bound=self.buffer,
            bookmark_s=self.bookmark_s,
        )

    def register(self, watch: Watch) -> int:
        """Offer ``watch`` every change above the returned version, from now on."""
        if not self._ready.is_set():
            raise ServiceUnavailable("the change log cannot be read now; try again", retry_after=1)
        if self._count >= self.max_watches:
            raise TooManyRequests("too many watches on this server; try again", retry_after=5)
        self._watches.setdefault(watch.key, Filed()).add(watch.interest, watch)
        self._count += 1
        return self.version

    def unregister(self, watch: Watch) -> None:
        self._waiting.discard(watch)
        filed = self._watches.get(watch.key)
        if filed is not None and filed.remove(watch.interest, watch):
            self._count -= 1
            if not filed.watches:
                del self._watches[watch.key]

    def wait_for_version(self, watch: Watch, waiting: bool) -> None:
        """``watch`` wants (or no longer wants) to be woken when the watermark moves."""
        if waiting:
            self._waiting.add(watch)
        else:
            self._waiting.discard(watch)

    def end(self, watch: Watch, error: ApiError | None) -> None:
        """End one watch's stream: with ``error`` as its last event, or plainly."""
        self.unregister(watch)
        watch.finish(error)

    def _all(self) -> list[Watch]:
        return [
            watch
            for filed in self._watches.values()
            for watches in filed.watches.values()
            for watch in watches
        ]

    def _end_all(self, error: ApiError | None) -> None:
        for watch in self._all():
            self.end(watch, error)

    @property
    def watching(self) -> int:
        return self._count

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._connect()
                backoff = 0.1
                while True:
                    wrote, self._wrote = self._wrote, False
                    await self._poll()
                    if wrote and self._others:  # after the poll: it is for them
                        await self._notify()
                    await self._sleep()
            except LOST as exc:
                log.warning("watch: the change log connection failed (%s); reconnecting", exc)
                self._lost()
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _connect(self) -> None:
        url = self._db.url
        assert url is not None
        options = self._db.connect_options()
        settings = {**options.get("server_settings", {}), "application_name": APPLICATION}
        conn = await asyncpg.connect(url, **{**options, "server_settings": settings})
        await conn.add_listener(CHANNEL, self._notified)
        self._conn = conn
        self._pid = conn.get_server_pid()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await conn.close()

    def _lost(self) -> None:
        """Streams cannot be served without the log: end them all (clients resume), and start
        the watermark again once connected."""
        self._ready.clear()
        self._watermark = Watermark()
        self._end_all(
            ServiceUnavailable(
                "the watch lost its database connection; resume from your last resourceVersion",
                retry_after=1,
            )
        )

    def _notified(self, _conn: Any, pid: int, _channel: str, _payload: str) -> None:
        if pid != self._pid:
            self._wake.set()

    async def _sleep(self) -> None:
        await wait_set(self._wake, BUSY_POLL_S if self._watermark.pending else IDLE_POLL_S)
        # Under a stream of writes, one poll per MIN_GAP_S gathers them all: the database
        # pays a few statements per gap, not per write.
        gap = MIN_GAP_S - (time.monotonic() - self._polled)
        if gap > 0:
            await asyncio.sleep(gap)
        self._wake.clear()
        self._polled = time.monotonic()

    async def _notify(self) -> None:
        async with self._lock:
            assert self._conn is not None
            await self._conn.execute(f"NOTIFY {CHANNEL}")

    async def _poll(self) -> None:
        conn = self._conn
        assert conn is not None
        async with self._lock:
            last = await conn.fetchval(LAST_VALUE)  # first: the proof needs M before S
            running, horizon, access, self._others = await conn.fetchrow(STATE)
        settled = self._watermark.advance(last, frozenset(running))
        self._report_held()
        if not self._ready.is_set():
            if settled:  # the first watermark: history before it is not this hub's to send
                self.version = settled
                self._access_count = access
                self._ready.set()
            return
        if horizon > self.version:  # pruned before this process read it: resume elsewhere
            self._end_all(Expired(f"too old resource version: {self.version} ({horizon})"))
            self.version = max(self.version, horizon)
        if settled > self.version:
            if self._count:
                await self._deliver(conn, settled)
            self.version = settled
            for watch in self._waiting:
                watch.advanced()
        if access != self._access_count:
            self._access_count = access
            await self._recheck()
        if time.monotonic() - self._pruned > PRUNE_EVERY_S and self._pruning is None:
            self._pruned = time.monotonic()
            self._pruning = asyncio.create_task(self._prune(self.version))

    async def _prune(self, below: int) -> None:
        """Delete the log's expired rows in batches until none is left, on a pooled
        connection, beside the polls; a failure is logged and tried again next time."""
        try:
            while True:
                async with self._db.acquire() as conn:
                    status = await conn.execute(PRUNE, below, self.retention_s, PRUNE_BATCH)
                if status != "UPDATE 1" or not await self._more_to_prune(below):
                    return
                await asyncio.sleep(PRUNE_PAUSE_S)
        except LOST as exc:
            log.warning("watch: pruning the change log failed (%s)", exc)
        finally:
            self._pruning = None

    async def _more_to_prune(self, below: int) -> bool:
        async with self._db.acquire() as conn:
            return bool(await conn.fetchval(PRUNABLE, below, self.retention_s))

    def _report_held(self) -> None:
        """A transaction that runs long holds every later change back: say which, every
        :data:`HELD_REPORT_S` while it lasts (operators find it in pg_stat_activity)."""
        age, running = self._watermark.held()
        if age > HELD_REPORT_S and time.monotonic() - self._reported > HELD_REPORT_S:
            self._reported = time.monotonic()
            log.warning(
                "watch: changes held back %.0f s by running transactions %s",
                age,
                ", ".join(str(x % 2**32) for x in sorted(running)),
            )

    async def _deliver(self, conn: asyncpg.Connection, upto: int) -> None:
        after = self.version
        while after < upto:
            async with self._lock:
                rows = await conn.fetch(READ, after, upto, PAGE)
            for row in rows:
                here, across = (
                    self._watches.get((row[1], row[2])),
                    self._watches.get((row[1], None)),
                )
                if not here and not across:
                    continue  # nobody watches this kind in this namespace: not even decoded
                change = Change.of(row)
                for filed in (here, across):
                    if filed is None:
                        continue
                    for interest in filed.concerned(change):
                        event = interest.event(change)
                        if event is not None:
                            for watch in list(filed.watches.get(interest, ())):
                                watch.offer(change, event)
            if len(rows) < PAGE:
                break
            after = rows[-1][0]

    async def _recheck(self) -> None:
        """Users, roles, memberships or API tokens changed: each watch's caller (a user, with
        the token it came with) is looked up again."""
        self.access.forget_roles()
        by_caller: dict[Principal, list[Watch]] = defaultdict(list)
        for watch in self._all():
            by_caller[watch.principal].append(watch)
        for caller, affected in by_caller.items():
            self.access.forget_user(caller.id)
            principal, readable = await self.access.current(caller)
            for watch in affected:
                watch.recheck(principal, readable)
