"""Routes in force: first load, reload on change or request, invalid files refused."""

from __future__ import annotations

import json
import os
import signal

import pytest

from bridge.route_table import RouteTable
from contract.errors import RoutesFileError
from contract.routes_file import parse_routes, write_routes_file
from tests.bridge.conftest import routes_document


def reloads(metrics, result):
    return metrics.registry.get_sample_value(
        "apica_bridge_routes_reloads_total", {"result": result}) or 0


@pytest.fixture
def table(routes_file, metrics):
    table = RouteTable(routes_file, metrics)
    table.load()
    return table


def rewrite(path, **changes):
    doc = routes_document()
    doc.update(changes)
    write_routes_file(path, parse_routes(json.dumps(doc), "test"))


def test_first_load(table, metrics):
    assert table.loaded
    assert sorted(table.current.routes) == ["checkout", "fallback", "search"]
    assert not table.changed()
    assert reloads(metrics, "loaded") == 1


def test_first_load_of_an_invalid_file_raises(tmp_path, metrics):
    path = tmp_path / "routes.json"
    path.write_text("{}")
    table = RouteTable(path, metrics)
    with pytest.raises(RoutesFileError, match="version must be 1"):
        table.load()
    assert not table.loaded
    with pytest.raises(RuntimeError, match="routes not loaded yet"):
        table.current  # noqa: B018


def test_changed_file_is_picked_up_by_poll(table, routes_file, metrics):
    assert table.poll() is False
    rewrite(routes_file, catch_all=None)  # atomic rename: new inode
    assert table.poll() is True
    assert table.current.catch_all is None
    assert reloads(metrics, "reloaded") == 1


def test_invalid_new_file_is_refused_and_old_routes_stay(table, routes_file, metrics, caplog):
    before = table.current
    routes_file.write_text('{"version": 1, "stack": "x", "routes": {"Bad": {}}}')
    with caplog.at_level("ERROR", logger="bridge.routes"):
        assert table.poll() is False
    assert table.current is before
    assert reloads(metrics, "refused") == 1
    [record] = caplog.records
    assert record.getMessage() == "new routes file refused, the previous routes stay in force"
    assert record.event == "routes_refused"
    assert any("routes.Bad" in p for p in record.problems)
    assert table.poll() is False  # the same bad file is not re-read on every poll
    assert reloads(metrics, "refused") == 1


def test_deleted_file_keeps_old_routes(table, routes_file, metrics):
    routes_file.unlink()
    assert table.poll() is False
    assert table.loaded
    assert reloads(metrics, "refused") == 1


def test_watcher_thread_reloads_on_change_and_on_request(table, routes_file, wait_until):
    table.start(interval=0.05)
    try:
        rewrite(routes_file, catch_all=None)
        wait_until(lambda: table.current.catch_all is None, what="reload after change")
        rewrite(routes_file, catch_all="search")
        # Same size and maybe same mtime granularity: an explicit request still reloads.
        table.request_reload()
        wait_until(lambda: table.current.catch_all == "search", what="reload on request")
    finally:
        table.stop()


def test_sighup_handler_can_request_a_reload(table, routes_file, wait_until):
    previous = signal.signal(signal.SIGHUP, lambda *_: table.request_reload())
    table.start(interval=60)  # only the signal can wake it in time
    try:
        rewrite(routes_file, catch_all="checkout")
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: table.current.catch_all == "checkout", what="reload on SIGHUP")
    finally:
        table.stop()
        signal.signal(signal.SIGHUP, previous)


def test_requests_merge_into_one_reload_and_never_block(table, routes_file, metrics, wait_until):
    """A signal handler must not block: 100,000 requests fill the pipe, the rest are dropped."""
    for _ in range(100_000):
        table.request_reload()
    table.start(interval=60)
    try:
        wait_until(lambda: reloads(metrics, "reloaded") >= 1, what="the merged reload")
        rewrite(routes_file, catch_all="search")
        table.request_reload()
        wait_until(lambda: table.current.catch_all == "search", what="the next request")
    finally:
        table.stop()
    assert reloads(metrics, "reloaded") == 2


def test_a_request_reloads_even_when_the_file_looks_unchanged(table, metrics, wait_until):
    table.start(interval=60)
    try:
        table.request_reload()
        wait_until(lambda: reloads(metrics, "reloaded") == 1, what="reload on request")
    finally:
        table.stop()
