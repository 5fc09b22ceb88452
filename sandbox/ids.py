"""Identifiers shaped like PagerDuty's: `P` + 6 characters for objects, 32 for keys."""

from __future__ import annotations

import secrets
import string
import uuid

_ID_ALPHABET = string.ascii_uppercase + string.digits
_KEY_ALPHABET = string.ascii_lowercase + string.digits


def new_object_id() -> str:
    """An object id such as `PXPGF42` (PagerDuty ids are 7 characters, starting with P)."""
    return "P" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


def new_integration_key() -> str:
    """A 32-character integration (routing) key, as PagerDuty generates them."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))


def new_dedup_key() -> str:
    """What PagerDuty returns for a trigger sent without a dedup key: a fresh UUID."""
    return uuid.uuid4().hex


def new_token() -> str:
    """A REST API token for a sandbox that was not given one (20 characters, like PD's)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits + "_-") for _ in range(20))
