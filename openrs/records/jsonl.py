"""The run's append-only JSON-lines logs (``metrics.jsonl``, ``starts.jsonl``): written so a kill cannot merge
two records, read so a line a kill cut short is skipped instead of failing the reader.

A kill during an append can leave the file ending in half a record without its newline. The next append then
starts on a new line (so the half record stays alone on its line and the new one is whole), and readers skip
lines that do not parse, with one warning per file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def append(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line, starting a new line if the file ends in a torn record."""
    path = Path(path)
    line = json.dumps(record) + "\n"
    with open(path, "ab") as fh:
        if fh.tell() > 0:
            with open(path, "rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    line = "\n" + line
        fh.write(line.encode())
        fh.flush()


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (empty if it does not exist); lines that do not parse are skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records, torn = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            torn += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            torn += 1
    if torn:
        log.warning("%s: skipped %d line(s) that do not parse (cut short by a kill?)", path, torn)
    return records
