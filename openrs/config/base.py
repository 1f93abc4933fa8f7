"""What every schema module shares: the range check its dataclasses run in ``__post_init__``, and the plain
value of an Enum field.

A value out of range fails while the config is turned into dataclasses, at the start of a run and before any
model loads or any file is written, naming the key and what it may be.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from openrs.errors import UsageError


def require(key: str, value: Any, ok: Callable[[Any], bool], allowed: str) -> None:
    """UsageError ``<key>=<value>: must be <allowed>`` unless ``ok(value)``; unset values (None, ???) pass."""
    if value is None or (isinstance(value, str) and value == "???"):
        return
    if not ok(value):
        raise UsageError(f"{key}={value}: must be {allowed}")


def value_of(x: Any) -> Any:
    """The plain value of a schema field: an Enum member's ``value``, anything else as it is."""
    return x.value if isinstance(x, Enum) else x
