"""The routes in force, re-read when the file changes or on SIGHUP.

Readers take `table.current` once per request: swapping the reference is atomic,
so a reload never drops or half-serves a request. An invalid new file is refused
with a log line naming each problem; the old routes stay in force.

A reload request (SIGHUP) is one byte written to a non-blocking pipe that the watcher
thread waits on: a signal handler must never take a lock (one that re-enters
`threading.Event.set` while the interrupted code holds the event's lock deadlocks the
main thread), and a storm of requests merges into one reload because the watcher
drains the pipe before reading the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import weakref
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
        self._stop = threading.Event()
        # Open for the table's whole life: a signal handler may write to it at any time,
        # and a closed (then reused) descriptor would take the byte somewhere else.
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        weakref.finalize(self, _close_both, self._wake_r, self._wake_w)
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
        """Ask the watcher thread to reload now; safe in a signal handler (never blocks).

        Requests made before the watcher reads them merge into one reload.
        """
        with contextlib.suppress(BlockingIOError):  # full: a reload is already requested
            os.write(self._wake_w, b"\0")

    def start(self, interval: float = 2.0) -> None:
        """Watch the file in a daemon thread every `interval` seconds (and on request)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, args=(interval,),
                                        name="routes-watch", daemon=True)
        self._thread.start()

    def _watch(self, interval: float) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                requested = bool(selector.select(interval)) and self._drain()
                if self._stop.is_set():
                    break
                try:
                    if requested:
                        self.reload()
                    else:
                        self.poll()
                except Exception:  # the watcher must outlive any surprise
                    self._log.exception("routes watcher failed", extra={"event": "routes_watch"})

    def _drain(self) -> bool:
        """Empty the wake-up pipe; True when something was in it."""
        found = False
        while True:
            try:
                found = bool(os.read(self._wake_r, 4096)) or found
            except BlockingIOError:
                return found

    def stop(self) -> None:
        self._stop.set()
        self.request_reload()  # wake the watcher; it sees the stop first
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)


def _close_both(*fds: int) -> None:
    for fd in fds:
        os.close(fd)
