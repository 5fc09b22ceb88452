"""Where the outbox is, chosen by one setting, and how to open it.

`store_url` unset: the SQLite file in `data_dir` (the default, one host). A
`postgresql://` URL: the PostgreSQL store, shareable by several bridges. The URL may
carry a password; it is never shown: `redact_url` gives the URL with `***` in its
place, `scrub` takes it out of any message (libpq repeats a connection string it
cannot parse).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from bridge.store.base import Store

URL_SCHEMES = ("postgresql://", "postgres://")
HIDDEN = "***"


def redact_url(url: str) -> str:
    """`url` with its password (user info or `password=` parameter) as `***`."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hosts = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:{HIDDEN}@{hosts}" if colon else netloc
        query = urlencode([(k, HIDDEN if k == "password" else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                          safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "(a URL that cannot be read)"


def _passwords(url: str) -> list[str]:
    """The password as written in `url`, decoded and encoded (to take out of messages)."""
    try:
        parts = urlsplit(url)
        found = [v for k, v in parse_qsl(parts.query) if k == "password"]
        userinfo = parts.netloc.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    except ValueError:
        return []
    forms = {f for p in found if p for f in (p, unquote(p), quote(unquote(p), safe=""))}
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` without the URL's password (and the URL itself shown redacted)."""
    text = text.replace(url, redact_url(url))
    for password in _passwords(url):
        text = text.replace(password, HIDDEN)
    return text


def url_problem(url: str) -> str | None:
    """Why `url` cannot name a PostgreSQL store (None: it can); never echoes the password."""
    if not url.startswith(URL_SCHEMES):
        return f"{redact_url(url)} must start with postgresql:// (or leave it unset for SQLite)"
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        why = scrub(" ".join(str(exc).split()), url)
        return f"{redact_url(url)} is not a valid PostgreSQL URL ({why})"
    return None


@dataclass(frozen=True)
class StoreLocation:
    """The outbox: a PostgreSQL `url`, else the SQLite file at `path`."""

    url: str | None = None
    path: Path | None = None

    @property
    def kind(self) -> str:
        return "postgresql" if self.url else "sqlite"

    @property
    def shown(self) -> str:
        """For logs and messages: the file, or the URL without its password."""
        return redact_url(self.url) if self.url else str(self.path)

    def exists(self) -> bool:
        """False only for an SQLite file not there (a database is asked when opened)."""
        return self.url is not None or (self.path is not None and self.path.exists())


def locate(store_url: str | None, data_dir: str | os.PathLike[str]) -> StoreLocation:
    from bridge.store.sqlite import outbox_path

    if store_url:
        return StoreLocation(url=store_url)
    return StoreLocation(path=outbox_path(data_dir))


def open_store(location: StoreLocation, *, read_only: bool = False, **options: Any) -> Store:
    """The store at `location`, migrated (unless `read_only`); options go to the backend."""
    if location.url is not None:
        from bridge.store.postgres import PostgresStore

        return PostgresStore(location.url, read_only=read_only, **options)
    from bridge.store.sqlite import SqliteStore

    assert location.path is not None
    return SqliteStore(location.path, read_only=read_only, **options)


def store_errors() -> tuple[type[BaseException], ...]:
    """What opening or using a store raises when it cannot be used (besides StoreError)."""
    import sqlite3

    import psycopg

    return (OSError, sqlite3.Error, psycopg.Error)
