"""`apica-pd serve`: assemble the bridge from its config and run it until signalled.

Start order: credentials (the ASM one too when reconciliation or enrichment is on),
then the socket (a supervisor's, or the one `bridge.listen_socket.bind_early` bound
before the settings were loaded, or bound now; port 0 picks a free one), then routes
(an invalid first file stops here), store (the outbox), worker, app; a `listening` log
line gives the real address once uvicorn is about to serve. The socket comes first
because the bridge restarts after a crash with webhooks arriving, and ASM does not
retry one refused: from the bind on, connections wait in the kernel's backlog until
the app answers them, so they are late, not lost. The modules only the app needs
(uvicorn, Starlette, the store, the sender) are imported after the bind for the same
reason. SIGHUP re-reads the routes; SIGINT/SIGTERM stop uvicorn, whose lifespan stops
the worker, the maintenance catch-up, reconciliation and the routes watcher; the store
is closed last. Nothing pending is lost on any stop: it stays in the store.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bridge.config import BridgeConfig, build_authenticator
from bridge.errors import ConfigError, StoreError
from bridge.listen_socket import EarlySocket, InheritedSocket, bind

if TYPE_CHECKING:  # ASM's client (requests) is imported only when the bridge uses it
    from bridge.asm_api import AsmClient
    from bridge.asm_config import AsmApiSettings, AsmCredential
    from bridge.enrichment import Enricher
    from bridge.http_limits import HttpLimits
    from bridge.intake.auth import Authenticator

log = logging.getLogger("bridge.serve")

#: The longest one reconciliation round may spend on ASM's API (retries included).
MAX_ROUND_SECONDS = 30.0


def run(config: BridgeConfig, env: Mapping[str, str] | None = None,
        early: EarlySocket | None = None) -> int:
    """Serve until SIGINT/SIGTERM; returns the process exit code. `early`: the socket
    `bridge.listen_socket.bind_early` bound before `config` was loaded."""
    env = os.environ if env is None else env
    sock = None if early is None else early.take(config.listen_host, config.listen_port)
    try:
        auth = build_authenticator(config, env, log)
        asm = asm_access(config, env)
    except ConfigError as exc:
        if sock is not None:
            sock.close()
        log.error("cannot start: %s", exc, extra={"event": "start_failed"})
        return 2
    if sock is None:
        try:
            sock = bind(config.listen_host, config.listen_port)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", config.listen_host, config.listen_port,
                      exc.strerror, extra={"event": "start_failed"})
            return 2
    try:
        return _serve(config, auth, asm, sock, inherited=isinstance(early, InheritedSocket))
    finally:
        sock.close()


def _serve(config: BridgeConfig, auth: Authenticator,
           asm: tuple[AsmApiSettings, AsmCredential] | None, sock: socket.socket, *,
           inherited: bool = False) -> int:
    import uvicorn
    from prometheus_client import CollectorRegistry

    from bridge.app import Hook, create_app
    from bridge.delivery.pacing import Pacing
    from bridge.delivery.sender import DEFAULT_TIMEOUT, Sender
    from bridge.delivery.worker import Worker
    from bridge.http_limits import uvicorn_options
    from bridge.intake.pipeline import Intake
    from bridge.maintenance import CatchUp
    from bridge.metrics import BridgeMetrics
    from bridge.route_table import RouteTable
    from bridge.store.location import open_store, store_errors
    from contract.errors import RoutesFileError

    metrics = BridgeMetrics(CollectorRegistry())
    table = RouteTable(config.routes_file, metrics)
    try:
        table.load()
    except RoutesFileError as exc:
        log.error("cannot start: %s", exc, extra={"event": "start_failed"})
        return 2

    location = config.store
    try:
        store = open_store(location)
    except StoreError as exc:  # its message names the store (a URL without its password)
        log.error("cannot start: outbox %s", exc, extra={"event": "start_failed"})
        return 2
    except store_errors() as exc:
        log.error("cannot start: outbox in %s: %s", location.shown, exc,
                  extra={"event": "start_failed"})
        return 2
    if store.migrated and store.migrated[0] != store.migrated[1]:
        log.info("outbox schema upgraded", extra={
            "event": "store_migrated", "store": location.shown,
            "from_version": store.migrated[0], "to_version": store.migrated[1]})
    sender = Sender(config.events_url, timeout=(DEFAULT_TIMEOUT[0], config.events_timeout))
    enricher: Enricher | None = None
    client: AsmClient | None = None
    try:
        metrics.watch_outbox(store.stats, store.route_problems)
        worker = Worker(store, sender, lambda: table.current, metrics=metrics,
                        pacing=Pacing(limit=config.events_per_key))
        if asm is not None and config.asm_enrich:
            from bridge.asm_api import AsmDeadlineClient
            from bridge.enrichment import Enricher

            enricher = Enricher(
                AsmDeadlineClient(*asm, deadline=config.asm_enrich_deadline),
                asm_base_url=config.asm_base_url, deadline=config.asm_enrich_deadline,
                metrics=metrics)
        intake = Intake(store, asm_base_url=config.asm_base_url, enricher=enricher,
                        metrics=metrics)
        hooks = [
            Hook("routes-watch", lambda: table.start(config.reload_interval), table.stop),
            Hook("worker", worker.start, worker.stop),
        ]
        catch_up = CatchUp(store, lambda: table.current, intake.accept, metrics=metrics)
        hooks.append(Hook("maintenance", catch_up.start, catch_up.stop))
        if asm is not None and config.asm_reconcile:
            from bridge.asm_api import AsmClient
            from bridge.reconcile import Reconciler

            settings, credential = asm
            client = AsmClient(settings, credential,
                               budget=min(max(config.asm_reconcile_interval, settings.timeout),
                                          MAX_ROUND_SECONDS))
            reconciler = Reconciler(client, lambda: table.current, store.open_keys, intake.accept,
                                    interval=config.asm_reconcile_interval,
                                    severities=config.asm_reconcile_severities, metrics=metrics)
            hooks.append(Hook("reconcile", reconciler.start, reconciler.stop))
        if asm is not None:
            log.info("ASM's API in use", extra={
                "event": "asm_in_use", "api": asm[0].host, "credential": repr(asm[1]),
                "reconcile": config.asm_reconcile, "enrich": config.asm_enrich,
                "interval": config.asm_reconcile_interval})
        # Last: what start-up made (modules, models, the app: 45,000 objects) lives as
        # long as the process. Frozen, the collector never walks it again; a full
        # collection walked them all, about 10 ms here, inside whichever webhook was due.
        hooks.append(Hook("gc-freeze", gc.freeze, lambda: None))
        app = create_app(
            routes=table,
            accept=intake.accept_webhook,
            auth=auth,
            metrics=metrics,
            body_limit=config.body_limit,
            store_ready=store.writable,
            route_problems=store.route_problems,
            record_unclaimed=store.record_unclaimed,
            hooks=hooks,
        )
        # uvicorn handles SIGINT/SIGTERM while it runs and re-raises them afterwards
        # with the handlers it found: ours end `run` normally, so the store is closed.
        previous = {
            signal.SIGHUP: signal.signal(signal.SIGHUP, lambda *_: table.request_reload()),
            signal.SIGINT: signal.signal(signal.SIGINT, _stop),
            signal.SIGTERM: signal.signal(signal.SIGTERM, _stop),
        }
        try:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info(
                "listening",
                extra={"event": "listening", "host": host, "port": port,
                       "url": f"http://{shown}:{port}", "routes_file": str(config.routes_file),
                       "store": location.shown, "events_url": config.events_url,
                       # inherited: the supervisor's (socket activation); host/port
                       # settings do not apply then.
                       "socket": "inherited" if inherited else "bound"},
            )
            server = uvicorn.Server(uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=10,
                **uvicorn_options(http_limits(config),
                                  on_refused=lambda reason: metrics.refused.labels(reason).inc()),
            ))
            server.run(sockets=[sock])
        except _Stop:
            pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    finally:
        sender.close()
        if enricher is not None:
            enricher.close()
        if client is not None:
            client.close()
        store.close()
    log.info("stopped", extra={"event": "stopped"})
    return 0


def asm_access(config: BridgeConfig, env: Mapping[str, str]
               ) -> tuple[AsmApiSettings, AsmCredential] | None:
    """ASM's API settings and the credential, when reconciliation or enrichment is on."""
    if not (config.asm_reconcile or config.asm_enrich):
        return None
    from bridge.asm_config import load_asm_credential, load_asm_settings

    try:
        return load_asm_settings(env), load_asm_credential(env)
    except ConfigError as exc:
        wanted = " and ".join(name for name, on in (
            ("APICA_PD_ASM_RECONCILE", config.asm_reconcile),
            ("APICA_PD_ASM_ENRICH", config.asm_enrich)) if on)
        raise ConfigError(f"{wanted} needs ASM's API: {exc}") from None


def http_limits(config: BridgeConfig) -> HttpLimits:
    """What a client may send or hold before it is refused (`bridge.http_limits`)."""
    from bridge.http_limits import HttpLimits

    return HttpLimits(
        header_bytes=config.header_limit, header_count=config.header_count_limit,
        idle_timeout=config.idle_timeout, header_timeout=config.header_timeout,
        body_timeout=config.body_timeout, connections=config.connection_limit,
    )


class _Stop(BaseException):
    """SIGINT/SIGTERM outside uvicorn's own handling (before start, after shutdown)."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop(signum)
