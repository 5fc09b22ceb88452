"""JSON log lines: fields from `extra=`, timestamps from the injected clock."""

from __future__ import annotations

import io
import json
import logging
import sys

from bridge.logs import JsonFormatter, configure_logging


def test_line_carries_extra_fields_and_the_clock():
    record = logging.makeLogRecord({"name": "bridge.http", "levelname": "WARNING",
                                    "msg": "webhook refused: %s", "args": ("too big",),
                                    "event": "webhook_refused", "reason": "too_large",
                                    "problems": ["a", "b"]})
    line = json.loads(JsonFormatter(clock=lambda: 0.0).format(record))
    assert line == {"ts": "1970-01-01T00:00:00.000+00:00", "level": "warning",
                    "logger": "bridge.http", "msg": "webhook refused: too big",
                    "event": "webhook_refused", "reason": "too_large", "problems": ["a", "b"]}


def test_odd_values_and_exceptions_still_make_json():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info(),
            extra={"path": object()})
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "failed"
    assert "ValueError: boom" in line["exception"]
    assert line["path"].startswith("<object object")


def test_configure_logging_routes_bridge_loggers_to_the_stream():
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    logging.getLogger("bridge.test").debug("hello", extra={"event": "probe"})
    assert json.loads(stream.getvalue())["event"] == "probe"
    assert logging.getLogger("bridge").propagate is False  # conftest restores it
