"""sandbox/postgres_cluster.py: the private cluster the tests share (tests/conftest.py)."""

from __future__ import annotations

import psycopg
import pytest

from sandbox.postgres_cluster import BRIDGE_ROLE, find_binaries


def test_the_binaries_are_debians_newest(postgres):
    assert find_binaries() == postgres.bin
    assert postgres.bin.parent.parent.name == "postgresql"


def test_it_listens_on_loopback_only_and_asks_for_a_password(postgres):
    with postgres.admin() as db:
        assert db.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert db.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres.url(password="wrong"), connect_timeout=5).close()


def test_the_tests_cluster_is_not_durable_but_every_session_commits_synchronously(postgres):
    assert not postgres.durable
    with postgres.admin() as db:
        assert db.execute("SHOW fsync").fetchone() == ("off",)
        assert db.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_a_schema_of_the_bridges_role_survives_a_stop_and_start(postgres):
    url = postgres.new_schema("cluster_test")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE kept (n integer)")
        db.execute("INSERT INTO kept VALUES (1)")
        assert db.execute("SELECT current_user").fetchone() == (BRIDGE_ROLE,)
    postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    postgres.start()
    with psycopg.connect(url, autocommit=True) as db:
        assert db.execute("SELECT n FROM kept").fetchall() == [(1,)]
