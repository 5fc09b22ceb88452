"""What both backends say about a schema version they cannot use (one line each).

Each backend keeps its migrations (`sqlite_schema`, `postgres_schema`): `MIGRATIONS[n]`
takes a store from version n to n + 1, released ones are never edited. A store newer
than this bridge knows is refused, never "repaired": an older bridge could misread it.
"""

from __future__ import annotations

from bridge.errors import StoreError


def too_new(found: int, known: int, where: str) -> StoreError:
    return StoreError(
        f"{where}: the outbox has schema version {found}, and this bridge knows "
        f"up to {known}; run the bridge that wrote it (or a newer one)"
    )


def too_old(found: int, known: int, where: str) -> StoreError:
    """For a store opened read-only, which cannot be migrated."""
    return StoreError(
        f"{where}: the outbox has schema version {found}, and this bridge reads "
        f"version {known}; start the bridge once (or run `apica-pd store migrate`) "
        "to upgrade it"
    )
