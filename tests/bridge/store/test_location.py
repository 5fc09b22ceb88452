"""Choosing the store by one setting, and never showing the URL's password."""

from __future__ import annotations

import pytest

from bridge.store.location import StoreLocation, locate, redact_url, scrub, url_problem


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bridge:s3cr%40t@db:5432/apica", "postgresql://bridge:***@db:5432/apica"),
        ("postgresql://bridge@db/apica", "postgresql://bridge@db/apica"),
        ("postgresql://db/apica?password=s3cr3t&sslmode=require",
         "postgresql://db/apica?password=***&sslmode=require"),
        ("postgres://u:p@h1,h2/d", "postgres://u:***@h1,h2/d"),
    ],
)
def test_a_url_is_shown_without_its_password(url, shown):
    assert redact_url(url) == shown


def test_a_message_is_scrubbed_of_the_password_in_any_spelling():
    url = "postgresql://bridge:s3cr%40t@db/apica"
    assert scrub(f"bad {url}: s3cr@t or s3cr%40t", url) == (
        "bad postgresql://bridge:***@db/apica: *** or ***")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u:hunter22@h/d",
         "mysql://u:***@h/d must start with postgresql:// (or leave it unset for SQLite)"),
        ("postgresql://u:hunter22@h/d?nonsense=1",
         'postgresql://u:***@h/d?nonsense=1 is not a valid PostgreSQL URL (invalid URI '
         'query parameter: "nonsense")'),
        ("postgresql://u:hunter22@h/d", None),
    ],
)
def test_a_url_that_cannot_name_a_store_says_why_without_the_password(url, problem):
    assert url_problem(url) == problem


def test_the_setting_chooses_the_backend(tmp_path):
    assert locate(None, tmp_path) == StoreLocation(path=tmp_path / "outbox.sqlite3")
    chosen = locate("postgresql://u:pw@h/d", tmp_path)
    assert (chosen.kind, chosen.shown, chosen.exists()) == (
        "postgresql", "postgresql://u:***@h/d", True)
    assert not locate(None, tmp_path).exists()
