"""`apica-pd` subcommands of the bridge part. Heavy imports stay inside handlers."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this part's subcommands; each sets `handler=` returning an exit code."""
