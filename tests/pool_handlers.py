"""Handlers for the pool tests, imported by the workers' fresh interpreters (the tests put this folder on
their PYTHONPATH); stdlib only."""

from __future__ import annotations

import os
import sys
import time

STALL = "stall"


def stall_or_len(payload: str) -> int:
    """Never returns for `STALL` (the worker stops reading its socket); otherwise the payload's length."""
    if payload == STALL:
        time.sleep(1e6)
    return len(payload)


def pattern(n: int) -> str:
    """`n` characters that differ along the string, so a reply cut or spliced wrongly does not compare equal."""
    return "".join(f"{i:09d}," for i in range(n // 10 + 1))[:n]


def half_reply(_: object) -> None:
    """Write the start of a reply straight onto the worker's socket, then stall mid-message.

    The bytes announce an enormous message under a 4- or an 8-byte big-endian length prefix alike.
    """
    os.write(int(sys.argv[1]), b"\x7f" + b"\xff" * 1023)
    time.sleep(1e6)
