"""The store of a collector that starts while its server does not answer but its spool has
entries: it counts on from the spool's newest tracker state at once (see ``collector.spool``),
and the store is opened when the server answers.

Until then every call raises ``StoreUnreachable`` (a save goes to the spool, the keeper's and
the alerts' checks wait for the next round, as while a server is away after a start) and a
publication is dropped. The server is tried at most once every ``RETRY_S``; once it answers,
the writer's claim is made and every call goes to the store.
"""

import logging
import threading
import time
from collections.abc import Callable

from traffic.hints import Any
from traffic.store import Store, StoreError, StoreUnreachable

log = logging.getLogger(__name__)

RETRY_S = 10
"""How often a server that does not answer is tried, here and by ``traffic collect`` before
it has a store."""


class LateStore:
    """A store opened by ``open_store`` once its server answers. One call at a time runs on
    it, as ``consistent`` promises (publications excepted: they never wait for a save)."""

    def __init__(self, open_store: Callable[[], Store], site: str, error: StoreError) -> None:
        self.site = site
        self._open_store = open_store
        self._error = error
        self._tried = time.monotonic()
        self._store: Store | None = None
        self._claim = False
        self._lock = threading.RLock()

    def consistent(self) -> Any:
        return self._lock

    def claim_writer(self) -> None:
        """Claim the site when the store opens (now, if its server answers)."""
        with self._lock:
            self._claim = True
            if self._store is not None:
                self._store.claim_writer()

    def publish(self, name: str, document: dict[str, Any]) -> None:
        store = self._store
        if store is not None:
            store.publish(name, document)

    def replaced(self) -> str:
        return self._store.replaced() if self._store is not None else ""

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return getattr(self._opened(), name)(*args, **kwargs)
        call.__name__ = name
        return call

    def _opened(self) -> Store:
        if self._store is not None:
            return self._store
        if time.monotonic() - self._tried < RETRY_S:
            raise StoreUnreachable(str(self._error))
        self._tried = time.monotonic()
        try:
            store = self._open_store()
        except StoreError as error:
            self._error = error
            raise
        if self._claim:
            try:
                store.claim_writer()
            except StoreError as error:
                store.close()
                self._error = error
                raise
        log.info("the store answers again")
        self._store = store
        return store
