"""Every backend offers the whole `Store` interface, with the same signatures."""

from __future__ import annotations

import inspect

import pytest

from bridge.store.base import Store
from bridge.store.sqlite import SqliteStore

INTERFACE = sorted(
    name for name, member in vars(Store).items()
    if callable(member) and (not name.startswith("_") or name in ("__enter__", "__exit__"))
)


def test_the_interface_is_what_its_users_need():
    assert INTERFACE == [
        "__enter__", "__exit__", "backlog", "claim", "close", "dead_letter", "dead_letters",
        "delivery_lock", "drop_held", "enqueue", "enqueue_async", "get", "held_alerts", "hold",
        "key_window", "lane_heads", "mark_delivered", "open_incidents", "open_keys", "pending",
        "record_route_problem", "record_unclaimed", "redrive", "release_leases", "reschedule",
        "route_problems", "stale_alerts", "stats", "subscribe", "unclaimed", "writable",
    ]


@pytest.mark.parametrize("backend", [SqliteStore])
@pytest.mark.parametrize("name", INTERFACE)
def test_a_backend_implements_each_method_as_declared(backend, name):
    declared = inspect.signature(getattr(Store, name))
    implemented = inspect.signature(getattr(backend, name))
    assert list(implemented.parameters) == list(declared.parameters)
    for param in declared.parameters.values():
        other = implemented.parameters[param.name]
        assert (other.kind, other.default) == (param.kind, param.default), param.name
    assert inspect.iscoroutinefunction(getattr(backend, name)) == \
        inspect.iscoroutinefunction(getattr(Store, name))
