"""Range checks the schema's dataclasses run on themselves when a config is built (their ``__post_init__``).

A value out of range fails while the config is turned into dataclasses, at the start of a run and before any
model loads or any file is written, naming the key and what it may be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openrs.errors import UsageError


def require(key: str, value: Any, ok: Callable[[Any], bool], allowed: str) -> None:
    """UsageError ``<key>=<value>: must be <allowed>`` unless ``ok(value)``; unset values (None, ???) pass."""
    if value is None or (isinstance(value, str) and value == "???"):
        return
    if not ok(value):
        raise UsageError(f"{key}={value}: must be {allowed}")
