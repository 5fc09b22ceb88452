"""The server's lifecycle: start on a free port, stop, context manager."""

from __future__ import annotations

import socket

import pytest
import requests

from sandbox.server import PagerDutySandbox


def test_start_stop_and_urls():
    pd = PagerDutySandbox(token="t")
    with pytest.raises(RuntimeError, match="not running"):
        _ = pd.url
    pd.start()
    try:
        assert pd.url == f"http://127.0.0.1:{pd.port}"
        assert pd.events_url == pd.url + "/v2/enqueue"
        assert pd.api_url == pd.url
        assert requests.get(pd.url + "/sandbox/incidents", timeout=5).json() == {"incidents": []}
    finally:
        pd.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{pd.port}/sandbox/incidents", timeout=5)


def test_two_sandboxes_get_different_ports_and_separate_state():
    with PagerDutySandbox() as one, PagerDutySandbox() as two:
        one.state.create_service(name="Only in one")
        assert one.port != two.port
        assert [s["name"] for s in two.state.services()] == []


def test_seeded_objects_carry_the_servers_url():
    with PagerDutySandbox() as pd:
        vendor = next(v for v in pd.state.directory.list("vendors") if v["name"] == "Apica")
        assert vendor["self"].startswith(pd.url + "/vendors/")


def test_busy_port_is_an_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            PagerDutySandbox(port=taken.getsockname()[1]).start()


def test_rest_limit_defaults_to_pagerdutys_and_can_be_turned_off():
    auth = {"Authorization": "Token token=t"}
    with (
        PagerDutySandbox(token="t") as limited,
        PagerDutySandbox(token="t", rest_requests_per_minute=None) as unlimited,
    ):
        assert limited.rest_limiter.events_per_minute == 960
        answer = requests.get(limited.url + "/abilities", headers=auth, timeout=5)
        assert answer.headers["ratelimit-limit"] == "960"
        answer = requests.get(unlimited.url + "/abilities", headers=auth, timeout=5)
        assert answer.status_code == 200
        assert "ratelimit-limit" not in answer.headers
