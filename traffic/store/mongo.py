"""The store in MongoDB, for many sites in one database (``store.url = "mongodb://..."``).

Every document has a ``site``; every query names it. Deltas go to ``intervals`` (unique on
site, key and start, so a replay adds nothing) and, in the same transaction, their buckets to
``rollups`` with ``$inc`` on (site, key, resolution, bucket), with the tracker state and the
types of new keys: MongoDB must be a replica set (a single node is enough) for transactions.
The arithmetic (spreading a delta over buckets, covering a range) is ``traffic.store.rollup``'s,
shared with SQLite, so both backends agree on every byte.

This first part holds the counting core: counts, tracker state, key types, sites, meta,
events and status documents. The alerts' marks and outbox, gauges, retention and the writer's
claim follow; until then ``open_store`` does not offer it.
"""

from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo

from traffic.counters import CounterState, Delta
from traffic.hints import Any
from traffic.store import Event, GaugeSample, Key, StoreError
from traffic.store.rollup import RESOLUTION_CODES, RollupIncrements, cover, raw_share

INDEXES = {
    "intervals": [("site", 1), ("key", 1), ("start", 1)],
    "rollups": [("site", 1), ("key", 1), ("resolution", 1), ("bucket", 1)],
    "tracker": [("site", 1), ("key", 1)],
    "keys": [("site", 1), ("key", 1)],
    "meta": [("site", 1), ("name", 1)],
    "status": [("site", 1), ("name", 1)],
}
"""The unique index of each collection, made at start."""
MASK = "********"


class MongoStore:
    """The store in one MongoDB database, scoped to one site."""

    def __init__(self, url: str, tz: ZoneInfo, retention: Mapping[str, float],
                 create: bool = True, site: str = "home") -> None:
        import threading

        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        self.tz = tz
        self.retention = dict(retention)
        self.site = site
        self._lock = threading.RLock()
        self.client: Any = MongoClient(url, serverSelectionTimeoutMS=2000, tz_aware=False)
        try:
            self.db = self.client.get_default_database("traffic")
            hello = self.client.admin.command("hello")
            if not hello.get("setName"):
                raise StoreError(
                    f"store.url: {masked_url(url)} is a standalone MongoDB server; Traffic "
                    "saves counts and tracker state in one transaction, which needs a replica "
                    "set: start mongod with --replSet rs0 and run rs.initiate() once (a single "
                    "node is enough; see the manual's \"Many sites in one MongoDB\")")
            for name, fields in INDEXES.items():
                self.db[name].create_index(fields, unique=True)
            self.db.events.create_index([("site", 1), ("at", -1)])
        except PyMongoError as error:
            self.client.close()
            raise StoreError(f"store.url: cannot use {masked_url(url)}: "
                             f"{str(error).splitlines()[0]}") from None
        except StoreError:
            self.client.close()
            raise

    def consistent(self) -> Any:
        return self._lock

    def add(self, deltas: Iterable[Delta], tracker_state: Mapping[str, CounterState],
            gauges: Iterable[GaugeSample] = (), keys: Iterable[Key] = ()) -> int:
        rows = [d for d in deltas if d.rx or d.tx]
        keys = list(keys)
        with self._lock, self.client.start_session() as session:
            return session.with_transaction(
                lambda s: self._add(s, rows, tracker_state, keys))

    def _add(self, session: Any, rows: list[Delta], tracker_state: Mapping[str, CounterState],
             keys: list[Key]) -> int:
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
        if tracker_state:
            self.db.tracker.bulk_write(
                [ReplaceOne({"site": site, "key": key},
                            {"site": site, "key": key, "life": s.life, "at": s.at, "rx": s.rx,
                             "tx": s.tx, "held": s.held}, upsert=True)
                 for key, s in tracker_state.items()], session=session)
        self._set_keys(keys, session)
        return sum(d.rx + d.tx for d in new)

    def _not_stored(self, session: Any, rows: list[Delta]) -> list[Delta]:
        """The deltas whose interval is not stored yet: a replay adds nothing."""
        if not rows:
            return []
        found = {(doc["key"], doc["start"]) for doc in self.db.intervals.find(
            {"site": self.site, "key": {"$in": sorted({d.key for d in rows})},
             "start": {"$in": sorted({d.start for d in rows})}},
            {"key": 1, "start": 1, "_id": 0}, session=session)}
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
        with self._lock:
            return sorted(set(self.db.tracker.distinct("key", {"site": self.site}))
                          | set(self.db.rollups.distinct("key", {"site": self.site})))

    def _keys(self, keys: Iterable[str] | None) -> list[str]:
        return self.known_keys() if keys is None else list(keys)

    def series(self, resolution: str, start: int, end: int,
               keys: Iterable[str] | None = None) -> list[tuple[int, int, int]]:
        with self._lock:
            rows = self.db.rollups.aggregate([
                {"$match": {"site": self.site, "key": {"$in": self._keys(keys)},
                            "resolution": RESOLUTION_CODES[resolution],
                            "bucket": {"$gte": start, "$lt": end}}},
                {"$group": {"_id": "$bucket", "rx": {"$sum": "$rx"}, "tx": {"$sum": "$tx"}}},
                {"$sort": {"_id": 1}}])
            return [(row["_id"], row["rx"], row["tx"]) for row in rows]

    def totals(self, start: int, end: int, keys: Iterable[str] | None = None) -> tuple[int, int]:
        with self._lock:
            chosen = self._keys(keys)
            rx = tx = 0
            for resolution, first, last in cover(start, end, self.tz):
                if resolution == "raw":
                    part = raw_share([(doc["start"], doc["end"], doc["rx"], doc["tx"])
                                      for doc in self.db.intervals.find(
                                          {"site": self.site, "key": {"$in": chosen},
                                           "start": {"$lt": last}, "end": {"$gt": first}})],
                                     first, last)
                else:
                    part = self._sum(chosen, RESOLUTION_CODES[resolution], first, last)
                rx += part[0]
                tx += part[1]
            return rx, tx

    def _sum(self, keys: list[str], code: int, first: int, last: int) -> tuple[int, int]:
        rows = list(self.db.rollups.aggregate([
            {"$match": {"site": self.site, "key": {"$in": keys}, "resolution": code,
                        "bucket": {"$gte": first, "$lt": last}}},
            {"$group": {"_id": None, "rx": {"$sum": "$rx"}, "tx": {"$sum": "$tx"}}}]))
        return (rows[0]["rx"], rows[0]["tx"]) if rows else (0, 0)

    def first_bucket(self, resolution: str) -> int | None:
        with self._lock:
            found = self.db.rollups.find_one(
                {"site": self.site, "resolution": RESOLUTION_CODES[resolution]},
                sort=[("bucket", 1)])
            return found["bucket"] if found else None

    def last_sample_at(self) -> int | None:
        with self._lock:
            found = self.db.tracker.find_one({"site": self.site}, sort=[("at", -1)])
            return found["at"] if found else None

    def add_events(self, events: Iterable[Event]) -> None:
        documents = [{"site": self.site, "at": e.at, "kind": e.kind, "detail": e.detail,
                      "duration_ms": e.duration_ms} for e in events]
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
        """A document per site and name in ``status``; not under the store's lock."""
        self.db.status.replace_one({"site": self.site, "name": name},
                                   {"site": self.site, "name": name, "document": document},
                                   upsert=True)

    def published(self, name: str) -> Any:
        found = self.db.status.find_one({"site": self.site, "name": name})
        return found["document"] if found else None

    def close(self) -> None:
        self.client.close()


def masked_url(url: str) -> str:
    """``url`` with its password hidden: ``mongodb://user:********@host/db``."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{separator}{user}:{MASK}{at}{host}"
