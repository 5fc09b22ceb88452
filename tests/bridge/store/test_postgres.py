"""The PostgreSQL store's own parts: several bridges on one database (shared claims,
windows, duplicates), wake-ups across them, durable commits, the database going away
and coming back. The promises every backend keeps are in test_base.py."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from bridge.delivery.pacing import Pacing
from bridge.store.postgres import POOL_WAIT, PROBE_WAIT, PostgresStore, _Job, unreachable
from bridge.store.records import NewEvent
from tests.bridge.conftest import enqueue, incoming, new_event
from tests.bridge.store.test_base import KEY_A, KEY_B, claim, head_ids


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def other(stores, clock):
    """A second bridge's store on the same database (and the same fake clock)."""
    with stores.open(clock=clock) as box:
        yield box


def raw(stores, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(stores.location.url, autocommit=True) as db:
        cur = db.execute(sql, params)
        return cur.fetchall() if cur.description else []


def test_a_stored_body_never_carries_a_routing_key(outbox, stores):
    enqueue(outbox, NewEvent("trigger", "d1", {"routing_key": KEY_A, "dedup_key": "d1"}))
    assert KEY_A not in json.dumps(raw(stores, "SELECT * FROM events"))
    assert outbox.pending()[0].body == {"dedup_key": "d1"}


def test_every_session_commits_durably_whatever_the_database_default(stores, postgres):
    with postgres.admin() as admin:
        admin.execute("ALTER ROLE bridge SET synchronous_commit = off")
    try:
        with stores.open() as box, box._pool.connection() as db:
            assert db.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        with postgres.admin() as admin:
            admin.execute("ALTER ROLE bridge RESET synchronous_commit")


def test_only_the_delivery_bookkeeping_commits_without_waiting_for_the_flush(outbox):
    def setting(tx):
        return tx.cur.execute("SHOW synchronous_commit").fetchone()[0]

    assert outbox._writer.run(_Job(setting)) == "on"  # an alert's batch
    assert outbox._writer.run(_Job(setting), durable=False) == "off"  # delivered, rescheduled
    assert outbox._transaction([_Job(setting)], relaxed=True) == ["off"]  # a claim
    assert outbox._writer.run(_Job(setting)) == "on"  # SET LOCAL: that batch only


def test_a_commit_by_another_bridge_wakes_this_ones_listeners(outbox, other):
    woken = threading.Event()
    outbox.subscribe(woken.set)
    deadline = time.monotonic() + 5
    while not woken.wait(0.05):  # the first wake says the listener is connected
        assert time.monotonic() < deadline
    woken.clear()
    enqueue(other, new_event())
    assert woken.wait(5), "no NOTIFY reached the other bridge"


def test_every_bridge_may_deliver(outbox, other):
    assert outbox.delivery_lock().try_acquire() and other.delivery_lock().try_acquire()


def test_a_head_leased_by_one_bridge_is_held_for_the_other(outbox, other, clock):
    enqueue(outbox, new_event(dedup="a1"))
    (head,) = head_ids(outbox)
    assert [e.id for e in claim(outbox, (head, KEY_A), owner="one").events] == [head]
    assert claim(other, (head, KEY_A), owner="two").held == {head: clock.now + 15}


def test_an_older_event_committed_late_waits_for_the_lanes_event_in_flight(outbox, stores,
                                                                           clock):
    """Two bridges commit events of one lane out of id order: the younger one is leased
    already when the older one appears; the older may not go out beside it."""
    enqueue(outbox, new_event(dedup="old"), new_event(dedup="young"), check="id:1")
    older, younger = (e.id for e in outbox.pending())
    raw(stores, "UPDATE events SET lease_owner = 'elsewhere', lease_until = %s WHERE id = %s",
        clock.now + 9, younger)
    claimed = claim(outbox, (older, KEY_A), owner="me")
    assert (claimed.events, claimed.held) == ([], {older: clock.now + 9})
    clock.now += 9
    assert [e.id for e in claim(outbox, (older, KEY_A), owner="me").events] == [older]


def test_bridges_claiming_at_once_lease_each_head_once(outbox, other, stores, clock):
    for lane in range(40):
        enqueue(outbox, new_event(dedup=f"d{lane}"), route=f"r{lane}", check=f"id:{lane}")
    heads = head_ids(outbox)
    pace = Pacing(limit=10_000)
    with ThreadPoolExecutor(8) as pool:
        rounds = list(pool.map(
            lambda i: claim((outbox, other)[i % 2], *[(h, KEY_A) for h in heads],
                            owner=f"bridge{i % 2}", pace=pace), range(8)))
    leased = [e.id for r in rounds for e in r.events]
    owners = dict(raw(stores, "SELECT id, lease_owner FROM events"))
    assert sorted(set(leased)) == sorted(heads)
    assert all(owners[i] in ("bridge0", "bridge1") for i in heads)
    # A bridge may claim its own head again; the other bridge never takes it.
    by_owner = {(r_owner, i) for i, r_owner in owners.items()}
    for i, r in enumerate(rounds):
        assert all((f"bridge{i % 2}", e.id) in by_owner for e in r.events)
    (sends,) = raw(stores, "SELECT count(*) FROM sends")
    assert sends[0] == len(leased)


def test_the_send_window_of_a_key_is_shared(outbox, other):
    pace = Pacing(limit=3, window=60)
    for lane in range(6):
        enqueue(outbox, new_event(dedup=f"d{lane}"), route=f"r{lane}", check=f"id:{lane}")
    heads = head_ids(outbox)
    first = claim(outbox, *[(h, KEY_A) for h in heads[:2]], owner="one", pace=pace)
    second = claim(other, *[(h, KEY_A) for h in heads[2:]], owner="two", pace=pace)
    assert (len(first.events), len(second.events), len(second.waits)) == (2, 1, 3)
    assert other.key_window(KEY_A, 60).sent_at == outbox.key_window(KEY_A, 60).sent_at
    assert claim(other, (heads[3], KEY_B), owner="two", pace=pace).events  # another key


def test_duplicates_stale_alerts_and_check_state_are_decided_once_across_bridges(
        outbox, other):
    """The same webhook reaching both bridges at once (a retry by the load balancer):
    one stores it, every other copy is a duplicate."""
    def offer(i: int) -> str:
        box = (outbox, other)[i % 2]
        return box.enqueue(incoming(fingerprint="same", asm_time="2026-11-26T10:00:00Z"),
                           lambda open_now: ([new_event()], open_now | {"high"})).verdict

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(offer, range(16)))
    assert sorted(verdicts) == ["duplicate"] * 15 + ["stored"]
    assert len(other.pending()) == 1
    assert other.open_keys("web", "id:1") == {"high"}
    assert enqueue(other, new_event(), fingerprint="older",
                   asm_time="2026-11-26T09:00:00Z").verdict == "stale"
    assert [s.alert_at for s in outbox.stale_alerts()] == ["2026-11-26T09:00:00Z"]


def test_alerts_of_one_check_in_one_batch_see_each_other(outbox, stores):
    """The batch reads its checks' state once, before its first job: each alert must
    still be judged by the ones before it in the same transaction."""
    gate = threading.Event()
    outbox._writer.submit(_Job(lambda tx: gate.wait(10)))  # holds the writer: the rest queue
    seen: list[frozenset[str]] = []

    def offer(fingerprint: str | None, at: str, opens: str) -> object:
        def events_for(open_now: frozenset[str]):
            seen.append(open_now)
            return [new_event(dedup=f"{fingerprint}:{opens}")], open_now | {opens}
        return outbox._writer.submit(outbox._enqueue_job(
            incoming(fingerprint=fingerprint, asm_time=at), events_for))

    futures = [offer("a", "2026-11-26T10:00:00Z", "low"),
               offer("a", "2026-11-26T10:00:00Z", "low"),   # its duplicate
               offer("b", "2026-11-26T09:00:00Z", "low"),   # older than a: stale
               offer(None, "2026-11-26T10:00:01Z", "high"),  # newer, no fingerprint
               offer("a", "2026-11-26T10:00:02Z", "low")]   # a again, no longer latest
    gate.set()
    verdicts = [f.result(10).verdict for f in futures]
    assert verdicts == ["stored", "duplicate", "stale", "stored", "stored"]
    assert seen == [frozenset(), frozenset({"low"}), frozenset({"low", "high"})]
    assert outbox.open_keys("web", "id:1") == {"low", "high"}
    assert [e.dedup_key for e in outbox.pending()] == ["a:low", "None:high", "a:low"]
    assert len(raw(stores, "SELECT DISTINCT xmin::text FROM events")) == 1  # one transaction


def test_a_check_name_with_nul_is_still_one_check(outbox):
    for _ in range(2):
        enqueue(outbox, new_event(dedup="name:\x00:high"), check="name:\x00",
                open_after=frozenset({"high"}))
    assert outbox.open_keys("web", "name:\x00") == {"high"}
    assert [e.check_key for e in outbox.pending()] == ["name:\ufffd"] * 2


def test_the_database_stopping_and_coming_back(outbox, postgres, clock):
    """503 material while it is down (an error within the pool's wait, never a hang), not
    writable; then, with nothing done by hand, writable and storing again."""
    enqueue(outbox, new_event(dedup="before"))
    assert outbox.writable()
    postgres.stop()
    try:
        clock.now += 1
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError) as failed:
            enqueue(outbox, new_event(dedup="while down"), check="id:2")
        assert unreachable(failed.value)
        assert time.monotonic() - started < POOL_WAIT + 5
        started = time.monotonic()
        assert not outbox.writable()
        assert time.monotonic() - started < PROBE_WAIT + 5
    finally:
        postgres.start()
    deadline = time.monotonic() + 20
    while not outbox.writable():
        assert time.monotonic() < deadline, "the store never recovered"
        time.sleep(0.2)
    assert enqueue(outbox, new_event(dedup="after"), check="id:3").verdict == "stored"
    assert [e.dedup_key for e in outbox.pending()] == ["before", "after"]


def test_a_restart_between_two_webhooks_costs_neither_of_them(outbox, postgres, clock,
                                                              monkeypatch):
    """The writer keeps its connection; one that sat idle is checked before a batch, so
    the first alert after the database restarted is stored, not refused."""
    import bridge.store.postgres as backend

    monkeypatch.setattr(backend, "WRITER_IDLE_CHECK", 0.0)  # every batch counts as idle
    enqueue(outbox, new_event(dedup="before"))
    postgres.stop()
    postgres.start()
    clock.now += 1
    assert enqueue(outbox, new_event(dedup="after"), check="id:2").verdict == "stored"
    assert [e.dedup_key for e in outbox.pending()] == ["before", "after"]


def test_unreachable_tells_the_database_from_a_job():
    from psycopg_pool import PoolTimeout

    assert unreachable(PoolTimeout("no connection"))
    assert unreachable(psycopg.OperationalError("server closed the connection"))
    assert not unreachable(psycopg.errors.DeadlockDetected("deadlock"))
    assert not unreachable(ValueError("a bad alert"))


def test_close_is_final(stores):
    from psycopg_pool import PoolClosed

    box = stores.open()
    box.close()
    with pytest.raises(PoolClosed):
        box.stats()
    with pytest.raises(PoolClosed):
        box.mark_delivered(1, routing_key=KEY_A)


def test_store_is_a_postgres_store(outbox):
    assert isinstance(outbox, PostgresStore)
