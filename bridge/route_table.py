"""The routes in force, re-read when the file changes or on SIGHUP.

Readers take `table.current` once per request: swapping the reference is atomic,
so a reload never drops or half-serves a request. An invalid new file is refused
with a log line naming each problem; the old routes stay in force.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from bridge.metrics import BridgeMetrics
from contract.errors import RoutesFileError
from contract.routes_file import RoutesFile, load_routes_file

log = logging.getLogger("bridge.routes")


class RouteTable:
    def __init__(
        self,
        path: str | os.PathLike[str],
        metrics: BridgeMetrics,
        *,
        logger: logging.Logger = log,
    ) -> None:
        self.path = Path(path)
        self._metrics = metrics
        self._log = logger
        self._current: RoutesFile | None = None
        self._seen: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> RoutesFile:
        routes = self._current
        if routes is None:
            raise RuntimeError("routes not loaded yet: call load() first")
        return routes

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def load(self) -> RoutesFile:
        """The first load: an invalid file raises `RoutesFileError` (serve stops)."""
        with self._lock:
            stamp = self._stamp()
            routes = load_routes_file(self.path)
            self._current, self._seen = routes, stamp
        self._in_force(routes, "loaded")
        return routes

    def reload(self) -> bool:
        """Re-read the file now; True when new routes are in force."""
        with self._lock:
            stamp = self._stamp()
            try:
                routes = load_routes_file(self.path)
            except RoutesFileError as exc:
                self._seen = stamp  # don't re-log the same bad file on every poll
                self._metrics.routes_reloads.labels(result="refused").inc()
                self._log.error(
                    "new routes file refused, the previous routes stay in force",
                    extra={"event": "routes_refused", "path": str(self.path),
                           "problems": exc.problems},
                )
                return False
            self._current, self._seen = routes, stamp
        self._in_force(routes, "reloaded")
        return True

    def _in_force(self, routes: RoutesFile, result: str) -> None:
        self._metrics.routes_reloads.labels(result=result).inc()
        self._log.info(
            f"routes {result}",
            extra={"event": f"routes_{result}", "path": str(self.path),
                   "routes": sorted(routes.routes), "catch_all": routes.catch_all},
        )

    def changed(self) -> bool:
        """Has the file changed (mtime, size or inode: an atomic rename) since last read?"""
        return self._stamp() != self._seen

    def poll(self) -> bool:
        """Reload if the file changed; True when new routes are in force."""
        return self.changed() and self.reload()

    def request_reload(self) -> None:
        """Ask the watcher thread to reload now; safe to call from a signal handler."""
        self._seen = None
        self._wake.set()

    def start(self, interval: float = 2.0) -> None:
        """Watch the file in a daemon thread every `interval` seconds (and on request)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def watch() -> None:
            while not self._stop.is_set():
                self._wake.wait(interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    self.poll()
                except Exception:  # the watcher must outlive any surprise
                    self._log.exception("routes watcher failed", extra={"event": "routes_watch"})

        self._thread = threading.Thread(target=watch, name="routes-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)
