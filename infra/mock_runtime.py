"""Run a Pulumi program under the SDK's mock runtime outside pytest, and record it.

The one module that touches the pulumi SDK's private internals. Pulumi's public mock
support (`set_mocks` with `@pulumi.runtime.test`) waits for nothing outside pytest;
running a whole program and waiting for every registration and output needs the
SDK's own helpers: `_sync_await`, `_ensure_event_loop`, `run_pulumi_func`, the
settings' root resource and outstanding outputs, and an override of `MockMonitor`
that records what the mocks alone do not see (parents, protect flags). Written
against pulumi 3.272 (pyproject.toml pins that range); `missing_internals()` names
each of them that a pulumi release has changed, and `run_under_mocks` refuses to run
with a one-line error instead of failing somewhere inside the SDK.

The mock runtime keeps global state (settings, root stack); each run resets it, so
programs can run many times in one process, each on event loops of its own that are
closed when it ends (`_EventLoops`).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from typing import Any, NamedTuple

import pulumi
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import settings as sdk_settings
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime import sync_await as sdk_sync_await
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from contract.errors import ApicaError
from infra.errors import InfraError

#: The project name of Pulumi.yaml; resources' URNs carry it.
PROJECT = "apica-pagerduty"
_STACK_TYPE = "pulumi:pulumi:Stack"
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_PULUMI_VERSION = version("pulumi")


class MockRuntimeError(InfraError):
    """The installed pulumi SDK lacks an internal the mock runner relies on."""


# -- the private internals, checked ------------------------------------------------


def _accepts_monitor() -> bool:
    return "monitor" in inspect.signature(pulumi.runtime.set_mocks).parameters


def _keeps_its_mocks() -> bool:
    mocks = _Tap(None)  # type: ignore[arg-type]
    return sdk_mocks.MockMonitor(mocks).mocks is mocks


#: Each private thing of the SDK used here -> a check that it is still what we use.
INTERNALS: dict[str, Callable[[], object]] = {
    "pulumi.runtime.sync_await._sync_await": lambda: callable(sdk_sync_await._sync_await),
    "pulumi.runtime.sync_await._ensure_event_loop": lambda: callable(
        sdk_sync_await._ensure_event_loop
    ),
    "pulumi.runtime.stack.run_pulumi_func": lambda: callable(sdk_stack.run_pulumi_func),
    "pulumi.runtime.settings.ROOT.set": lambda: callable(sdk_settings.ROOT.set),
    "pulumi.runtime.settings.SETTINGS.outputs.clear": lambda: callable(
        sdk_settings.SETTINGS.outputs.clear
    ),
    "pulumi.runtime.mocks.MockMonitor.RegisterResource": lambda: callable(
        sdk_mocks.MockMonitor.RegisterResource
    ),
    "pulumi.runtime.mocks.MockMonitor.Invoke": lambda: callable(sdk_mocks.MockMonitor.Invoke),
    "pulumi.runtime.mocks.MockMonitor(mocks).mocks": _keeps_its_mocks,
    "pulumi.runtime.set_mocks(monitor=...)": _accepts_monitor,
}


def missing_internals(checks: Mapping[str, Callable[[], object]] = INTERNALS) -> list[str]:
    """One line per internal that the installed pulumi no longer has as used here."""
    missing = []
    for name, check in checks.items():
        try:
            ok = bool(check())
        except (AttributeError, ImportError, TypeError, ValueError):
            ok = False
        if not ok:
            missing.append(
                f"pulumi {_PULUMI_VERSION} changed {name}, which infra/mock_runtime.py "
                "uses (written for pulumi 3.272): update the module for this release"
            )
    return missing


@cache
def _require_internals() -> None:
    missing = missing_internals()
    if missing:
        raise MockRuntimeError("; ".join(missing))


# -- running -----------------------------------------------------------------------


class Registered(NamedTuple):
    """One registration as the monitor saw it: the SDK's request, the mock's view, the answer."""

    request: Any  # RegisterResourceRequest (protobuf): name, type, parent, protect, custom
    args: MockResourceArgs | None  # None for resources the mocks were not asked about
    urn: str
    id: str


@dataclass(frozen=True)
class MockRun:
    """What a program declared under mocks, in registration order."""

    registrations: tuple[Registered, ...]
    calls: tuple[tuple[MockCallArgs, dict[str, Any]], ...]  # each look-up and its answer
    outputs: Mapping[str, tuple[bool, Any]]  # stack output -> (secret, value)


def run_under_mocks(
    program: Callable[[], object], mocks: Mocks, stack_name: str = "dev"
) -> MockRun:
    """Run `program` under the mock runtime, wait for everything, return what it declared.

    Exceptions raised by the program or inside its applies (e.g. `pulumi.RunError`)
    propagate after the runtime has settled.
    """
    _require_internals()
    monitor = _RecordingMonitor(mocks)
    set_fresh_mocks(monitor.mocks, stack_name, monitor=monitor)
    outputs: dict[str, tuple[bool, Any]] = {}

    async def main() -> None:
        program()
        root = pulumi.runtime.get_root_resource()
        exported: Mapping[str, Any] = getattr(root, "outputs", {})
        for name, value in exported.items():
            # from_input would wrap every nested value of a resolved dict in an Output.
            output = value if isinstance(value, pulumi.Output) else pulumi.Output.from_input(value)
            # Awaiting surfaces errors raised in applies, as `pulumi up` would.
            outputs[name] = (await output.is_secret(), await output.future())

    # The SDK allocates heavily per registration, so the cyclic GC runs often; without
    # this, every full collection re-scans the stack model we already hold (measured:
    # about 10% of a 1,000-service preview). New objects are collected as usual.
    gc.freeze()
    try:
        run_main(main)
    finally:
        gc.unfreeze()
    return MockRun(tuple(monitor.registrations), tuple(monitor.calls), outputs)


def set_fresh_mocks(
    mocks: Mocks, stack_name: str, *, monitor: sdk_mocks.MockMonitor | None = None
) -> None:
    """`pulumi.runtime.set_mocks` with a new root stack and no outputs of an earlier run,
    on new event loops (`run_main` or `close_event_loops` closes them)."""
    # The SDK makes futures on the current loop while it sets up (the root stack).
    _LOOPS.open()
    # set_mocks only creates a root stack when none exists.
    sdk_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack_name, preview=False, monitor=monitor
    )
    sdk_settings.SETTINGS.outputs.clear()


def run_main(main: Callable[[], Awaitable[None]]) -> None:
    """Run `main` in the runtime `set_fresh_mocks` configured; wait for every
    registration; close the event loops."""
    _require_internals()
    try:
        sdk_sync_await._sync_await(sdk_stack.run_pulumi_func(main))
    finally:
        close_event_loops()


def close_event_loops() -> None:
    """Close the loops `set_fresh_mocks` opened (`run_main` does; a test driven by
    `@pulumi.runtime.test` calls this when done)."""
    _LOOPS.close()


class _EventLoops:
    """The event loops of one mock run: this thread's, and one per executor thread.

    The SDK's `_ensure_event_loop` makes a loop on each thread that needs one and never
    closes it. Left to the garbage collector at interpreter exit, a loop can be finalized
    after its own self-pipe socket, and asyncio prints "Exception ignored in:
    BaseEventLoop.__del__ ... Invalid file descriptor: -1" to stderr. So each run's
    loops are made here and closed when it ends, as `asyncio.run` closes its loop.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._thread_loops: list[asyncio.AbstractEventLoop] = []

    def open(self) -> None:
        self.close()
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        _quiet_expected_failures(self._loop)
        # The mock monitor wants a loop on each executor thread: give it one we close.
        # Each run's threads append to that run's own list: a thread the executor starts
        # while `close` settles a failed run must land where `close` looks.
        thread_loops: list[asyncio.AbstractEventLoop] = []
        self._thread_loops = thread_loops
        self._executor = ThreadPoolExecutor(
            thread_name_prefix="pulumi-mocks", initializer=_thread_loop, initargs=(thread_loops,)
        )
        self._loop.set_default_executor(self._executor)

    def close(self) -> None:
        loop, executor, thread_loops = self._loop, self._executor, self._thread_loops
        if loop is None or executor is None:
            return
        self._loop, self._executor, self._thread_loops = None, None, []
        # A failed run leaves outputs waiting on the failure; cancel them, as asyncio.run
        # does, or each prints "Task was destroyed but it is pending!" when collected.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        executor.shutdown(wait=True)  # after this no thread can add a loop
        for thread_loop in thread_loops:
            thread_loop.close()
        asyncio.set_event_loop(None)
        loop.close()


def _thread_loop(loops: list[asyncio.AbstractEventLoop]) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loops.append(loop)  # list.append is atomic


_LOOPS = _EventLoops()


def as_python(value: Any, text: Callable[[str], Any] | None = None) -> Any:
    """Mock inputs as the program wrote them: snake_case keys, whole floats as ints.

    The mocks see camelCase keys and every number as a float; unset (None) values are
    dropped. `text` maps each string (e.g. an invented id to what it refers to).
    """
    if isinstance(value, dict):
        return {
            _CAMEL.sub("_", key).lower(): as_python(item, text)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list | tuple):
        return [as_python(item, text) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and text is not None:
        return text(value)
    return value


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Errors raised on purpose (ours, or the program's RunError) were reported once already.
    if isinstance(context.get("exception"), pulumi.RunError | ApicaError):
        return
    loop.default_exception_handler(context)


def _quiet_expected_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Drop asyncio's "exception was never retrieved" for program errors already raised.

    A failing apply fails every output that depends on it; the runner re-raises the
    error once, and the copies left in other futures would otherwise be printed with
    tracebacks when they are garbage-collected.
    """
    if loop.get_exception_handler() is not _quiet:
        loop.set_exception_handler(_quiet)


class _RecordingMonitor(sdk_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration's request and answer."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(_Tap(mocks))
        self._lock = threading.Lock()
        self.registrations: list[Registered] = []
        self.calls: list[tuple[MockCallArgs, dict[str, Any]]] = []

    def RegisterResource(self, request: Any) -> Any:
        tap: _Tap = self.mocks  # type: ignore[assignment]
        tap.local.args = None
        response = super().RegisterResource(request)
        if request.type != _STACK_TYPE:
            with self._lock:
                self.registrations.append(
                    Registered(request, tap.local.args, response.urn, response.id)
                )
        return response

    def Invoke(self, request: Any) -> Any:
        tap: _Tap = self.mocks  # type: ignore[assignment]
        tap.local.call = None
        response = super().Invoke(request)
        if tap.local.call is not None:
            with self._lock:
                self.calls.append(tap.local.call)
        return response


class _Tap(Mocks):
    """Forwards to the real mocks, keeping the arguments on the calling (executor) thread."""

    def __init__(self, inner: Mocks) -> None:
        self.inner = inner
        self.local = threading.local()

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.local.args = args
        return self.inner.new_resource(args)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        answer = self.inner.call(args)
        result = answer if isinstance(answer, dict) else answer[0]
        self.local.call = (args, result)
        return answer
