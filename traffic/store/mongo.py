"""The store in MongoDB, for many sites in one database (``store.url = "mongodb://..."``).

Every document has a ``site``; every query names it. Deltas go to ``intervals`` (unique on
site, key and start, so a replay adds nothing) and, in the same transaction, their buckets to
``rollups`` with ``$inc`` on (site, key, resolution, bucket), with the tracker state and the
types of new keys: MongoDB must be a replica set (a single node is enough) for transactions.
The arithmetic (spreading a delta over buckets, covering a range) is ``traffic.store.rollup``'s,
shared with SQLite, so both backends agree on every byte.

Every key that ever had rollups is named in ``counted`` (site, key), so ``known_keys`` does
not read the rollups; every read of counts asks for one key at a time, by equality on the
leading fields of an index and a range on the last one (SecantusDB scans a whole site for a
``$in`` on ``key``).

Events, alert marks and the outbox of messages are collections of their own; retention is
the collector's daily prune. One collector writes each site: it claims the site in ``writers``
and keeps the claim fresh with every save.
"""

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from traffic.counters import CounterState, Delta
from traffic.hints import Any
from traffic.periods import DAY_MS, FIVE_MIN_MS, HOUR_MS
from traffic.store import (
    ALERT_EVENT_KINDS,
    TABLES,
    AlertCounts,
    Chunk,
    Delivery,
    Event,
    GaugeSample,
    Key,
    StoreError,
    StoreUnreachable,
)
from traffic.store.rollup import (
    RESOLUTION_CODES,
    RollupIncrements,
    cover,
    gauge_rows,
    gauge_value,
    raw_share,
)

INDEXES = {
    "intervals": [("site", 1), ("key", 1), ("start", 1)],
    "rollups": [("site", 1), ("key", 1), ("resolution", 1), ("bucket", 1)],
    "tracker": [("site", 1), ("key", 1)],
    "keys": [("site", 1), ("key", 1)],
    "meta": [("site", 1), ("name", 1)],
    "status": [("site", 1), ("name", 1)],
    "gauges": [("site", 1), ("key", 1), ("name", 1), ("bucket", 1)],
    "alert_marks": [("site", 1), ("mark", 1)],
    "counted": [("site", 1), ("key", 1)],
}
"""The unique index of each collection, made at start."""
COUNTED_COMPLETE = "complete"
"""The ``_id`` of the document in ``counted`` that says it names every key of the rollups
(written once its backfill from an older database's rollups is done)."""
COARSEST_FIRST = sorted(RESOLUTION_CODES.values(), reverse=True)
COARSER = {"5min": "hour", "hour": "day", "day": "month"}
"""The resolution whose first bucket is where ``first_bucket`` starts looking for each."""
SEARCH_STEP_MS = {"5min": FIVE_MIN_MS, "hour": HOUR_MS, "day": DAY_MS}
SEARCH_WINDOW_MAX = 1024
"""The longest window ``first_bucket`` reads at once, in buckets: when it starts looking far
too early (a reader that does not know the retention), many empty windows cost less than
one holding months of buckets."""
PRUNE_SLACK_MS = 2 * DAY_MS
"""How much older than its retention a bucket may be: the collector prunes once a day."""
MASK = "********"
NOTIFY_TARGETS_META = "alerts.notify_targets"
WRITER_FRESH_MS = 15 * 60_000
"""A writer's claim older than this (not renewed for a quarter of an hour) may be taken over."""
CLAIM_RENEW_MS = 60_000
TRANSACTION_S = 10
PUBLISH_S = 2
"""How long a publication waits for the server: it is made from the collector's poll."""
PING_S = 5
"""How long the ping before a transaction waits for the server: within the transaction's time
limit, a server that is away would be waited for all of ``TRANSACTION_S``; a server that is
merely slow (a busy box) must not look away."""
PUBLISH_PAUSE_MS = 60_000
"""After a publication fails, the next ones are dropped for this long (unless a save succeeds
first): a poll every 5 seconds must not wait for a server that does not answer."""
DELIVERY_FIELDS = ("_id", "created", "rule", "mark", "target", "title", "body", "attempts",
                   "next_at", "sending_since", "fingerprint")


class MongoStore:
    """The store in one MongoDB database, scoped to one site."""

    def __init__(self, url: str, tz: ZoneInfo, retention: Mapping[str, float],
                 create: bool = True, site: str = "home") -> None:
        self.tz = tz
        self.retention = dict(retention)
        self.site = site
        self.url = url
        self._lock = threading.RLock()
        self._writer: str | None = None
        """This process's claim on the site (``claim_writer``), once made."""
        self._claim_seen = 0
        self._publish_paused_until = 0
        self._counted: set[str] = set()
        """Keys this store has named in ``counted`` (never removed from it)."""
        self.client: Any = _client(url, create)
        self.db = self.client.get_default_database("traffic")

    def consistent(self) -> Any:
        return self._lock

    def add(self, deltas: Iterable[Delta], tracker_state: Mapping[str, CounterState],
            gauges: Iterable[GaugeSample] = (), keys: Iterable[Key] = ()) -> int:
        rows = [d for d in deltas if d.rx or d.tx]
        keys, gauges = list(keys), list(gauges)
        with self._lock:
            counted: set[str] = set()
            added = self._in_transaction(
                lambda session: self._add(session, rows, tracker_state, keys, gauges, counted))
            self._counted |= counted
        self._publish_paused_until = 0
        return added

    def _in_transaction(self, work: Any) -> Any:
        """``work(session)`` in one transaction, retried on a passing conflict for at most
        ``TRANSACTION_S`` (pymongo would retry for two minutes, holding the store meanwhile),
        after a ping that fails in ``PING_S`` when the server is away."""
        import pymongo

        with pymongo.timeout(PING_S):
            self.client.admin.command("ping")
        with pymongo.timeout(TRANSACTION_S), self.client.start_session() as session:
            return session.with_transaction(work)

    def _add(self, session: Any, rows: list[Delta], tracker_state: Mapping[str, CounterState],
             keys: list[Key], gauges: list[GaugeSample], counted: set[str]) -> int:
        """The transaction of ``add``; ``counted`` gets the keys it names in ``counted``."""
        from pymongo import ReplaceOne, UpdateOne

        site = self.site
        new = self._not_stored(session, rows)
        if new:
            self.db.intervals.insert_many(
                [{"site": site, "key": d.key, "start": d.start, "end": d.end, "rx": d.rx,
                  "tx": d.tx} for d in new], session=session)
            increments = RollupIncrements(self.tz)
            increments.add(new)
            self.db.rollups.bulk_write(
                [UpdateOne({"site": site, "key": key, "resolution": code, "bucket": bucket},
                           {"$inc": {"rx": rx, "tx": tx}}, upsert=True)
                 for key, code, bucket, rx, tx in increments.rows()], session=session)
            counted.update(self._count_keys({d.key for d in new}, session))
        if tracker_state:
            self.db.tracker.bulk_write(
                [ReplaceOne({"site": site, "key": key},
                            {"site": site, "key": key, "life": s.life, "at": s.at, "rx": s.rx,
                             "tx": s.tx, "held": s.held}, upsert=True)
                 for key, s in tracker_state.items()], session=session)
        self._set_keys(keys, session)
        if gauges:
            self.db.gauges.bulk_write(
                [UpdateOne({"site": site, "key": key, "name": name, "bucket": bucket},
                           {"$inc": {"sum": total, "count": count},
                            **({"$set": {"text": text}} if text is not None else {})},
                           upsert=True)
                 for key, name, bucket, total, count, text in gauge_rows(gauges)],
                session=session)
        if self._writer is not None:
            self._renew_claim(session)
        return sum(d.rx + d.tx for d in new)

    def _count_keys(self, keys: Iterable[str], session: Any) -> set[str]:
        """Name ``keys`` in ``counted`` (those this store has not named there yet)."""
        from pymongo import UpdateOne

        fresh = set(keys) - self._counted
        if fresh:
            self.db.counted.bulk_write(
                [UpdateOne({"site": self.site, "key": key},
                           {"$setOnInsert": {"site": self.site, "key": key}}, upsert=True)
                 for key in sorted(fresh)], session=session)
        return fresh

    def _not_stored(self, session: Any, rows: list[Delta]) -> list[Delta]:
        """The deltas whose interval is not stored yet: a replay adds nothing."""
        starts: dict[str, list[int]] = {}
        for delta in rows:
            starts.setdefault(delta.key, []).append(delta.start)
        found = {(key, doc["start"]) for key, chosen in starts.items()
                 for doc in self.db.intervals.find(
                     {"site": self.site, "key": key,
                      "start": {"$gte": min(chosen), "$lte": max(chosen)}},
                     {"start": 1, "_id": 0}, session=session)}
        new, seen = [], set()
        for delta in rows:
            if (delta.key, delta.start) not in found and (delta.key, delta.start) not in seen:
                seen.add((delta.key, delta.start))
                new.append(delta)
        return new

    def key_types(self) -> list[Key]:
        with self._lock:
            return [Key(doc["key"], doc["source"], doc["name"], doc["role"]) for doc in
                    self.db.keys.find({"site": self.site}).sort("key", 1)]

    def set_keys(self, keys: Iterable[Key]) -> None:
        with self._lock:
            self._set_keys(list(keys), None)

    def _set_keys(self, keys: list[Key], session: Any) -> None:
        from pymongo import ReplaceOne

        if keys:
            self.db.keys.bulk_write(
                [ReplaceOne({"site": self.site, "key": k.key},
                            {"site": self.site, "key": k.key, "source": k.source,
                             "name": k.name, "role": k.role}, upsert=True) for k in keys],
                session=session)

    def sites(self) -> list[str]:
        with self._lock:
            found = set(self.db.tracker.distinct("site")) | set(self.db.rollups.distinct("site"))
            return sorted(found | set(self.db.events.distinct("site")))

    def tracker_state(self) -> dict[str, CounterState]:
        with self._lock:
            return {doc["key"]: CounterState(doc["life"], doc["at"], doc["rx"], doc["tx"],
                                             doc.get("held", 0))
                    for doc in self.db.tracker.find({"site": self.site})}

    def known_keys(self) -> list[str]:
        """The keys of the tracker and those with rollups (of any resolution)."""
        with self._lock:
            tracked = {doc["key"] for doc in self.db.tracker.find(
                {"site": self.site}, {"key": 1, "_id": 0})}
            if not _counted_complete(self.url, self.db):
                return sorted(tracked | set(self.db.rollups.distinct("key", {"site": self.site})))
            counted = {doc["key"] for doc in self.db.counted.find(
                {"site": self.site}, {"key": 1, "_id": 0})}
            return sorted(tracked | {key for key in counted - tracked if self._has_rollups(key)})

    def _has_rollups(self, key: str) -> bool:
        """Whether ``key`` has rollups left (retention may have removed them all)."""
        return any(self.db.rollups.find_one(
            {"site": self.site, "key": key, "resolution": code}, {"_id": 1}) is not None
            for code in COARSEST_FIRST)

    def _keys(self, keys: Iterable[str] | None) -> list[str]:
        """The given keys once each, or all known: every read asks for one key at a time."""
        return self.known_keys() if keys is None else list(dict.fromkeys(keys))

    def series(self, resolution: str, start: int, end: int,
               keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
        with self._lock:
            sums: dict[int, list[int]] = {}
            for key in self._keys(keys):
                for doc in self.db.rollups.find(
                        {"site": self.site, "key": key, "resolution": RESOLUTION_CODES[resolution],
                         "bucket": {"$gte": start, "$lt": end}},
                        {"bucket": 1, "rx": 1, "tx": 1, "_id": 0}):
                    both = sums.setdefault(doc["bucket"], [0, 0])
                    both[0] += doc["rx"]
                    both[1] += doc["tx"]
            return [(bucket, rx, tx) for bucket, (rx, tx) in sorted(sums.items())]

    def totals(self, start: int, end: int, keys: Iterable[str] | None = None) -> tuple[int, int]:
        with self._lock:
            chosen = self._keys(keys)
            rx = tx = 0
            for resolution, first, last in cover(start, end, self.tz):
                for key in chosen:
                    if resolution == "raw":
                        part = raw_share(self._overlapping(key, first, last), first, last)
                    else:
                        part = self._sum(key, RESOLUTION_CODES[resolution], first, last)
                    rx += part[0]
                    tx += part[1]
            return rx, tx

    def _overlapping(self, key: str, first: int, last: int) -> list[tuple[int, int, int, int]]:
        """The intervals of ``key`` that overlap ``[first, last)``: those that end after
        ``first`` (by the (site, key, end) index) when fewer are newer than ``first`` than
        older than ``last`` (as ``retention.raw`` tells), else those that start before
        ``last``. An interval may be of any length, so neither bound is enough alone."""
        keep = self.retention.get("raw", 0) * 1000
        now = _now()
        if not keep or now - first <= last - (now - keep):
            query, keeps = {"end": {"$gt": first}}, (lambda doc: doc["start"] < last)
        else:
            query, keeps = {"start": {"$lt": last}}, (lambda doc: doc["end"] > first)
        return [(doc["start"], doc["end"], doc["rx"], doc["tx"])
                for doc in self.db.intervals.find(
                    {"site": self.site, "key": key, **query},
                    {"start": 1, "end": 1, "rx": 1, "tx": 1, "_id": 0})
                if keeps(doc)]

    def _sum(self, key: str, code: int, first: int, last: int) -> tuple[int, int]:
        rows = list(self.db.rollups.aggregate([
            {"$match": {"site": self.site, "key": key, "resolution": code,
                        "bucket": {"$gte": first, "$lt": last}}},
            {"$group": {"_id": None, "rx": {"$sum": "$rx"}, "tx": {"$sum": "$tx"}}}]))
        return (rows[0]["rx"], rows[0]["tx"]) if rows else (0, 0)

    def first_bucket(self, resolution: str) -> int | None:
        with self._lock:
            firsts = [self._first_bucket(key, resolution) for key in self.known_keys()]
            return min((first for first in firsts if first is not None), default=None)

    def _first_bucket(self, key: str, resolution: str) -> int | None:
        """The first bucket of ``key``, by range queries on the (site, key, resolution,
        bucket) index that each read a few buckets: a server that does not stop a sorted walk
        at the first (SecantusDB) would read every bucket of the resolution.

        It looks from a guess: the first bucket of the next coarser resolution, or the oldest
        that ``retention`` keeps if later. Buckets before the guess (another retention) are
        read at once; else windows after it, each twice as long (up to
        ``SEARCH_WINDOW_MAX`` buckets), until one holds a bucket."""
        query = {"site": self.site, "key": key, "resolution": RESOLUTION_CODES[resolution]}

        def least(bucket: dict[str, int]) -> int | None:
            return min((doc["bucket"] for doc in self.db.rollups.find(
                {**query, "bucket": bucket}, {"bucket": 1, "_id": 0})), default=None)

        guess = self._first_bucket(key, COARSER[resolution]) if resolution in COARSER else None
        if guess is None:
            found = self.db.rollups.find_one(query, {"bucket": 1, "_id": 0},
                                             sort=[("bucket", 1)])
            return found["bucket"] if found else None
        keep = self.retention.get(resolution, 0) * 1000
        if keep:
            guess = max(guess, int(_now() - keep - PRUNE_SLACK_MS))
        before = least({"$lt": guess})
        if before is not None:
            return before
        step, horizon = SEARCH_STEP_MS[resolution], _now() + DAY_MS
        longest = step * SEARCH_WINDOW_MAX
        while guess < horizon:
            found = least({"$gte": guess, "$lt": guess + step})
            if found is not None:
                return found
            guess, step = guess + step, min(step * 2, longest)
        return least({"$gte": guess})

    def last_sample_at(self) -> int | None:
        with self._lock:
            found = self.db.tracker.find_one({"site": self.site}, sort=[("at", -1)])
            return found["at"] if found else None

    def add_events(self, events: Iterable[Event]) -> None:
        documents = [self._event(event) for event in events]
        with self._lock:
            if documents:
                self.db.events.insert_many(documents)

    def events(self, since: int = 0, until: int | None = None, limit: int = 100,
               kinds: Iterable[str] | None = None) -> list[Event]:
        query: dict[str, Any] = {"site": self.site, "at": {"$gte": since, "$lt": until or 2**62}}
        if kinds is not None:
            query["kind"] = {"$in": list(kinds)}
        with self._lock:
            return [Event(doc["at"], doc["kind"], doc["detail"], doc.get("duration_ms"))
                    for doc in self.db.events.find(query).sort([("at", -1), ("_id", -1)])
                    .limit(limit)]

    def get_meta(self, name: str) -> str | None:
        with self._lock:
            found = self.db.meta.find_one({"site": self.site, "name": name})
            return found["value"] if found else None

    def set_meta(self, name: str, value: str) -> None:
        with self._lock:
            self.db.meta.replace_one({"site": self.site, "name": name},
                                     {"site": self.site, "name": name, "value": value},
                                     upsert=True)

    def publish(self, name: str, document: dict[str, Any]) -> None:
        """A document per site and name in ``status``; not under the store's lock. While the
        server cannot be reached nothing is published: a publication that fails (or takes
        more than ``PUBLISH_S``) drops the next ones for ``PUBLISH_PAUSE_MS``, or until a save
        succeeds."""
        import pymongo
        from pymongo.errors import PyMongoError

        if _now() < self._publish_paused_until:
            return
        try:
            with pymongo.timeout(PUBLISH_S):
                self.db.status.replace_one(
                    {"site": self.site, "name": name},
                    {"site": self.site, "name": name, "document": document}, upsert=True)
                if self._writer is not None and _now() - self._claim_seen > CLAIM_RENEW_MS:
                    self.db.writers.update_one({"_id": self.site, "writer": self._writer},
                                               {"$set": {"seen": _now()}})
                    self._claim_seen = _now()
        except PyMongoError:
            self._publish_paused_until = _now() + PUBLISH_PAUSE_MS

    def published(self, name: str) -> Any:
        found = self.db.status.find_one({"site": self.site, "name": name})
        return found["document"] if found else None

    def gauge_series(self, key: str, name: str, start: int, end: int
                     ) -> list[tuple[int, float | str]]:
        with self._lock:
            return [(doc["bucket"], gauge_value(doc["sum"], doc["count"], doc.get("text")))
                    for doc in self.db.gauges.find(
                        {"site": self.site, "key": key, "name": name,
                         "bucket": {"$gte": start, "$lt": end}}).sort("bucket", 1)]

    def gauge_names(self) -> list[tuple[str, str]]:
        with self._lock:
            rows = self.db.gauges.aggregate([
                {"$match": {"site": self.site}},
                {"$group": {"_id": {"key": "$key", "name": "$name"}}}])
            return sorted((row["_id"]["key"], row["_id"]["name"]) for row in rows)

    def alert_counts(self) -> AlertCounts:
        with self._lock:
            rows = self.db.events.aggregate([
                {"$match": {"site": self.site, "kind": {"$in": list(ALERT_EVENT_KINDS)}}},
                {"$group": {"_id": {"kind": "$kind", "rule": "$detail.rule"},
                            "count": {"$sum": 1}}}])
            counts = {(row["_id"]["kind"], str(row["_id"].get("rule") or "")): row["count"]
                      for row in rows}
            return AlertCounts(counts, self.db.outbox.count_documents({"site": self.site}))

    def raise_alert(self, mark: str, event: Event,
                    deliveries: Iterable[tuple[int, str, str]]) -> bool:
        deliveries = list(deliveries)

        def raise_once(session: Any) -> bool:
            marks = self.db.alert_marks
            if marks.find_one({"site": self.site, "mark": mark}, session=session):
                return False
            marks.insert_one({"site": self.site, "mark": mark, "at": event.at},
                             session=session)
            self.db.events.insert_one(self._event(event), session=session)
            fingerprints = self._fingerprints(session)
            for target, title, body in deliveries:
                self.db.outbox.insert_one({
                    "_id": self._next_id(session), "site": self.site, "created": event.at,
                    "rule": event.detail.get("rule", event.kind), "mark": mark,
                    "target": target, "title": title, "body": body, "attempts": 0,
                    "next_at": event.at, "sending_since": None,
                    "fingerprint": fingerprints[target] if target < len(fingerprints)
                    else None}, session=session)
            return True

        with self._lock:
            return self._in_transaction(raise_once)

    def _fingerprints(self, session: Any = None) -> list[str]:
        import json

        found = self.db.meta.find_one({"site": self.site, "name": NOTIFY_TARGETS_META},
                                      session=session)
        return json.loads(found["value"]) if found else []

    def _next_id(self, session: Any) -> int:
        """A delivery's number: one counter for the database, so numbers never repeat."""
        from pymongo import ReturnDocument

        counter = self.db.counters.find_one_and_update(
            {"_id": "outbox"}, {"$inc": {"next": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER, session=session)
        return int(counter["next"])

    def has_alert_mark(self, mark: str) -> bool:
        with self._lock:
            return self.db.alert_marks.find_one({"site": self.site, "mark": mark}) is not None

    def due_deliveries(self, now: int, limit: int = 20) -> list[Delivery]:
        with self._lock:
            return [_delivery(doc) for doc in self.db.outbox.find(
                {"site": self.site, "next_at": {"$lte": now}}).sort(
                    [("next_at", 1), ("_id", 1)]).limit(limit)]

    def pending_deliveries(self) -> list[Delivery]:
        with self._lock:
            return [_delivery(doc) for doc in self.db.outbox.find({"site": self.site}).sort(
                [("next_at", 1), ("_id", 1)])]

    def set_notify_targets(self, fingerprints: Sequence[str]) -> None:
        import json

        listed = list(fingerprints)

        def keep(session: Any) -> None:
            self.db.meta.replace_one(
                {"site": self.site, "name": NOTIFY_TARGETS_META},
                {"site": self.site, "name": NOTIFY_TARGETS_META, "value": json.dumps(listed)},
                upsert=True, session=session)
            for doc in self.db.outbox.find({"site": self.site, "fingerprint": None},
                                           session=session):
                if doc["target"] < len(listed):
                    self.db.outbox.update_one({"_id": doc["_id"]}, {"$set": {
                        "fingerprint": listed[doc["target"]]}}, session=session)

        with self._lock:
            self._in_transaction(keep)

    def delivery_started(self, delivery_id: int, now: int) -> None:
        with self._lock:
            self.db.outbox.update_one({"_id": delivery_id}, {"$set": {"sending_since": now}})

    def delivery_ended(self, delivery_id: int, event: Event, retry_at: int | None = None,
                       hold_until: int | None = None) -> None:
        def end(session: Any) -> None:
            outbox = self.db.outbox
            if hold_until is not None:
                ended = outbox.find_one({"_id": delivery_id}, session=session)
                if ended is not None and ended.get("fingerprint") is not None:
                    outbox.update_many(
                        {"site": self.site, "fingerprint": ended.get("fingerprint"),
                         "_id": {"$ne": delivery_id}, "sending_since": None,
                         "next_at": {"$lt": hold_until}},
                        {"$set": {"next_at": hold_until}}, session=session)
            if retry_at is None:
                outbox.delete_one({"_id": delivery_id}, session=session)
            else:
                outbox.update_one({"_id": delivery_id}, {
                    "$inc": {"attempts": 1},
                    "$set": {"next_at": retry_at, "sending_since": None}}, session=session)
            self.db.events.insert_one(self._event(event), session=session)

        with self._lock:
            self._in_transaction(end)

    def _event(self, event: Event) -> dict[str, Any]:
        return {"site": self.site, "at": event.at, "kind": event.kind, "detail": event.detail,
                "duration_ms": event.duration_ms}

    def prune(self, now: int) -> int:
        """Drop what the retention settings no longer keep, of this site."""
        removed = 0
        site = self.site
        with self._lock:
            for collection, field, setting, extra in (
                    ("intervals", "start", "raw", {}), ("gauges", "bucket", "gauges", {}),
                    ("events", "at", "events", {}),
                    *(("rollups", "bucket", resolution, {"resolution": code})
                      for resolution, code in RESOLUTION_CODES.items())):
                keep = self.retention.get(setting, 0)
                if keep:
                    removed += self.db[collection].delete_many(
                        {"site": site, **extra,
                         field: {"$lt": now - int(keep * 1000)}}).deleted_count
        return removed

    def count_rows(self, table: str) -> int:
        with self._lock:
            return self.db[_table(table)].count_documents({"site": self.site})

    def export_rows(self, table: str, after: Any = None, size: int = 5000) -> Iterator[Chunk]:
        """One cursor in the order of ``_id`` (an ObjectId, or a delivery's number): a
        chunk's ``after`` is its last ``_id``, an ObjectId as its hex string."""
        from bson import ObjectId
        from pymongo.errors import PyMongoError

        columns = TABLES[table]
        query: dict[str, Any] = {"site": self.site}
        if after is not None:
            query["_id"] = {"$gt": ObjectId(after) if isinstance(after, str) else after}
        try:
            rows: list[tuple[Any, ...]] = []
            for doc in self.db[table].find(query, dict.fromkeys(columns, 1)).sort(
                    "_id", 1).batch_size(size):
                rows.append(tuple(doc.get(name, EXPORT_DEFAULTS.get(name)) for name in columns))
                if len(rows) == size:
                    yield Chunk(rows, _position(doc["_id"]))
                    rows = []
            if rows:
                yield Chunk(rows, _position(doc["_id"]))
        except PyMongoError as error:
            raise StoreError(f"store.url: {masked_url(self.url)}: "
                             f"{str(error).splitlines()[0]}") from None

    def import_rows(self, table: str, rows: Sequence[tuple[Any, ...]],
                    meta: Mapping[str, str] | None = None) -> None:
        """Inserted at once; should a row be there already (a chunk copied again), the chunk
        is written again row by row, each replacing its own."""
        from pymongo.errors import BulkWriteError, DuplicateKeyError

        with self._lock:
            try:
                self._in_transaction(lambda session: self._import(session, table, rows, meta,
                                                                  replace=False))
            except (BulkWriteError, DuplicateKeyError):
                self._in_transaction(lambda session: self._import(session, table, rows, meta,
                                                                  replace=True))

    def _import(self, session: Any, table: str, rows: Sequence[tuple[Any, ...]],
                meta: Mapping[str, str] | None, replace: bool) -> None:
        from pymongo import ReplaceOne

        collection = self.db[_table(table)]
        docs = [{"site": self.site, **dict(zip(TABLES[table], row, strict=True))}
                for row in rows]
        if table == "outbox":
            for doc in docs:
                if not collection.find_one({"site": self.site, "mark": doc["mark"],
                                            "target": doc["target"]}, session=session):
                    collection.insert_one({"_id": self._next_id(session), **doc},
                                          session=session)
        elif docs and (table == "events" or not replace):
            collection.insert_many(docs, session=session)
            if table == "rollups":
                self._count_keys({doc["key"] for doc in docs}, session)
        elif docs:
            unique = [name for name, _ in INDEXES[table]]
            collection.bulk_write([ReplaceOne({name: doc[name] for name in unique}, doc,
                                              upsert=True) for doc in docs], session=session)
            if table == "rollups":
                self._count_keys({doc["key"] for doc in docs}, session)
        for name, value in (meta or {}).items():
            self.db.meta.replace_one({"site": self.site, "name": name},
                                     {"site": self.site, "name": name, "value": value},
                                     upsert=True, session=session)
        if self._writer is not None:
            self._renew_claim(session)

    def claim_writer(self) -> None:
        """Become the site's only collector: a claim in ``writers``, renewed by every save and
        every publication (each poll, at most once a minute) and given up on close. A claim is
        taken over when its collector is gone: a process of this host that is not running any
        more, or a claim not renewed for ``WRITER_FRESH_MS``."""
        import os
        import socket

        from pymongo.errors import DuplicateKeyError

        host = socket.gethostname()
        me = f"{host} pid {os.getpid()}"
        now = _now()
        with self._lock:
            found = self.db.writers.find_one({"_id": self.site})
            takeable: list[dict[str, Any]] = [{"writer": me},
                                              {"seen": {"$lt": now - WRITER_FRESH_MS}}]
            if found and not _running(found["writer"], host):
                takeable.append({"writer": found["writer"]})
            try:
                self.db.writers.update_one({"_id": self.site, "$or": takeable},
                                           {"$set": {"writer": me, "seen": now}}, upsert=True)
            except DuplicateKeyError:  # the claim is another's, and alive
                holder = (self.db.writers.find_one({"_id": self.site}) or {}).get("writer")
                raise StoreError(f"store.url: another collector ({holder}) is already "
                                 f"writing site {self.site!r} to "
                                 f"{masked_url(self.url)}") from None
            self._writer, self._claim_seen = me, now

    def _renew_claim(self, session: Any = None) -> None:
        """Keep this collector's claim fresh; raises StoreError when another has taken it
        over (this one must stop writing, or both would count the same bytes)."""
        now = _now()
        renewed = self.db.writers.update_one({"_id": self.site, "writer": self._writer},
                                             {"$set": {"seen": now}}, session=session)
        if renewed.matched_count == 0:
            raise StoreError(f"store.url: another collector took over site {self.site!r} in "
                             f"{masked_url(self.url)}; this one stops writing to it")
        self._claim_seen = now

    def replaced(self) -> str:
        """A database is not a file that can be deleted under the collector: never."""
        return ""

    def reopen(self) -> None:
        """Nothing to do: see ``replaced``."""

    def close(self) -> None:
        """Give up the claim; the client stays, shared by the stores of this process."""
        import contextlib

        from pymongo.errors import PyMongoError

        if self._writer is not None:
            # if the server is away, the claim goes stale, or this host's next collector
            # takes it over
            with contextlib.suppress(PyMongoError):
                self.db.writers.delete_one({"_id": self.site, "writer": self._writer})
            self._writer = None


def _unavailable_as_store_error(method: Any) -> Any:
    """A call that fails on the server raises ``StoreError`` in one line (the web app answers
    503, the collector keeps what it counted), the URL's password masked."""
    def call(self: MongoStore, *args: Any, **kwargs: Any) -> Any:
        from pymongo.errors import PyMongoError

        try:
            return method(self, *args, **kwargs)
        except PyMongoError as error:
            raise StoreError(f"store.url: {masked_url(self.url)}: "
                             f"{str(error).splitlines()[0]}") from None

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


for _name in ("add", "raise_alert", "set_notify_targets", "delivery_ended", "key_types",
              "set_keys", "sites", "tracker_state", "known_keys", "series",
              "totals", "first_bucket", "last_sample_at", "add_events", "events", "get_meta",
              "set_meta", "published", "gauge_series", "gauge_names", "alert_counts",
              "has_alert_mark", "due_deliveries", "pending_deliveries", "delivery_started",
              "prune", "claim_writer", "count_rows", "import_rows"):
    setattr(MongoStore, _name, _unavailable_as_store_error(getattr(MongoStore, _name)))


_clients: dict[str, Any] = {}
"""One client per URL and process: a web worker opens a store at every request, and a client
holds a pool of connections and watches the servers."""
_indexed: set[str] = set()
"""The URLs whose indexes this process has made."""
_complete: set[str] = set()
"""The URLs whose ``counted`` this process has seen complete."""
_clients_lock = threading.Lock()


def _client(url: str, create: bool) -> Any:
    """The process's client for ``url``, checked once: a replica set (or a mongos in front of
    one), and the indexes made when the store may be created (readers need no more than the
    right to read)."""
    from pymongo import MongoClient
    from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

    with _clients_lock:
        client = _clients.get(url)
        if client is not None and (not create or url in _indexed):
            return client
        try:
            client = client or MongoClient(url, serverSelectionTimeoutMS=2000, tz_aware=False)
            hello = _hello(client)
            if not hello.get("setName") and hello.get("msg") != "isdbgrid":
                client.close()
                raise StoreError(
                    f"store.url: {masked_url(url)} is a standalone MongoDB server; Traffic "
                    "saves counts and tracker state in one transaction, which needs a replica "
                    "set: start mongod with --replSet rs0 and run rs.initiate() once (a single "
                    "node is enough; see the manual's \"Many sites in one MongoDB\")")
            if create:
                _make_indexes(client.get_default_database("traffic"))
                _indexed.add(url)
        except (PyMongoError, ValueError) as error:
            if client is not None:
                client.close()
            dns = isinstance(error, ConfigurationError) and "DNS" in str(error)
            kind = StoreUnreachable if isinstance(error, ConnectionFailure) or dns else StoreError
            raise kind(f"store.url: cannot use {masked_url(url)}: "
                       f"{str(error).splitlines()[0]}") from None
        _clients[url] = client
        return client


def _make_indexes(db: Any) -> None:
    for name, fields in INDEXES.items():
        db[name].create_index(fields, unique=True)
    db.intervals.create_index([("site", 1), ("key", 1), ("end", 1)])
    db.events.create_index([("site", 1), ("at", -1)])
    db.events.create_index([("site", 1), ("kind", 1), ("at", -1)])
    db.outbox.create_index([("site", 1), ("next_at", 1)])
    _fill_counted(db)


def _fill_counted(db: Any) -> None:
    """Name in ``counted`` the keys of the rollups, once: a database written before
    ``counted`` was kept has rollups of keys it does not name."""
    from pymongo import UpdateOne

    if db.counted.find_one({"_id": COUNTED_COMPLETE}) is not None:
        return
    pairs = db.rollups.aggregate([{"$group": {"_id": {"site": "$site", "key": "$key"}}}])
    named = [UpdateOne(row["_id"], {"$setOnInsert": row["_id"]}, upsert=True) for row in pairs]
    if named:
        db.counted.bulk_write(named)
    db.counted.update_one({"_id": COUNTED_COMPLETE}, {"$set": {"site": None, "key": None}},
                          upsert=True)


def _counted_complete(url: str, db: Any) -> bool:
    """Whether ``counted`` names every key of the rollups (asked of the server until it
    does: a reader may start before the collector has filled it)."""
    if url in _complete:
        return True
    if db.counted.find_one({"_id": COUNTED_COMPLETE}, {"_id": 1}) is None:
        return False
    _complete.add(url)
    return True


def _hello(client: Any) -> dict[str, Any]:
    """The server's ``hello``, or ``isMaster`` from a MongoDB 4.4 before 4.4.2."""
    from pymongo.errors import OperationFailure

    try:
        return client.admin.command("hello")
    except OperationFailure:
        return client.admin.command("isMaster")


def _running(writer: str, host: str) -> bool:
    """Whether the collector that made a claim (``HOST pid PID``) may still be running: a
    process of another host is taken to be; one of this host is looked up."""
    import os

    claimed_host, _, pid = writer.rpartition(" pid ")
    if claimed_host != host or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


EXPORT_DEFAULTS = {"held": 0}
"""Fields that older documents may lack, as their readers take them."""


def _table(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"no table {table!r} in a store")
    return table


def _position(document_id: Any) -> Any:
    """``_id`` as JSON keeps it: an ObjectId as its hex string, a delivery's number as is."""
    return document_id if isinstance(document_id, int) else str(document_id)


def _delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(*(doc.get(name) for name in DELIVERY_FIELDS))


def _now() -> int:
    from traffic.periods import now_ms

    return now_ms()


def masked_url(url: str) -> str:
    """``url`` with its password hidden: ``mongodb://user:********@host/db``."""
    scheme, separator, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    credentials, at, host = authority.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{separator}{user}:{MASK}{at}{host}{slash}{path}"
