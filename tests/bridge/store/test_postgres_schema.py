"""The PostgreSQL store's migrations: built once under a lock, a newer schema refused."""

from __future__ import annotations

import threading

import psycopg
import pytest

from bridge.errors import StoreError
from bridge.store.postgres import PostgresStore
from bridge.store.postgres_schema import SCHEMA_VERSION, VERSION_TABLE, schema_version


@pytest.fixture
def backend() -> str:
    return "postgresql"


def test_a_new_schema_is_migrated_once_by_bridges_starting_together(stores):
    errors: list[BaseException] = []
    opened: list[PostgresStore] = []

    def start() -> None:
        try:
            opened.append(stores.open())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(store.migrated for store in opened) == (
        [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 3)
    for store in opened:
        store.close()
    with psycopg.connect(stores.location.url) as db:
        assert schema_version(db) == SCHEMA_VERSION


def test_a_newer_schema_is_refused_in_one_line_without_the_password(stores, postgres):
    stores.open().close()
    with psycopg.connect(stores.location.url, autocommit=True) as db:
        db.execute(f"UPDATE {VERSION_TABLE} SET version = 99")
    with pytest.raises(StoreError) as refused:
        stores.open()
    message = str(refused.value)
    assert message == (f"{stores.location.shown}: the outbox has schema version 99, and this "
                       f"bridge knows up to {SCHEMA_VERSION}; run the bridge that wrote it "
                       "(or a newer one)")
    assert postgres.bridge_password not in message and "\n" not in message


def test_a_read_only_open_neither_creates_nor_migrates(stores):
    with pytest.raises(StoreError, match="has schema version 0, and this bridge reads"):
        stores.open(read_only=True)
    with psycopg.connect(stores.location.url) as db:
        assert schema_version(db) == 0


def test_a_wrong_password_is_one_line_naming_the_store_not_the_password(postgres):
    url = postgres.url(password="wrong-password-123")
    with pytest.raises(StoreError) as refused:
        PostgresStore(url)
    message = str(refused.value)
    assert message.startswith(f"postgresql://bridge:***@127.0.0.1:{postgres.port}/apica: ")
    assert "password authentication failed" in message
    assert "wrong-password-123" not in message and "\n" not in message
