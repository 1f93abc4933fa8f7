"""Files and directories written whole or not at all: the one place that does temporary file, fsync, rename.

Every file that must never be read half-written (summary, provenance, evaluation records, checkpoint markers)
and every directory published in one piece (``final/``, the cached tiny model and warm start) goes through
here. Kept free of heavy imports so light tools (``openrs.evaluate``) can use it too.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no stray temporary file
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Strict JSON (non-finite floats as strings), indented, written atomically."""
    write_text_atomic(path, json.dumps(_finite(data), indent=2, default=_jsonable, allow_nan=False))


def write_jsonl_atomic(path: Path, records: Any) -> None:
    """One JSON object per line, written atomically (for files rewritten whole; appended logs: openrs.records.jsonl)."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n" for r in records))


def fsync_tree(path: Path) -> None:
    """Flush every file under ``path`` to disk."""
    for file in Path(path).rglob("*"):
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())


def publish_dir(staging: Path, target: Path, finished: str | None = None) -> bool:
    """Move a fully written ``staging`` directory to ``target`` (same file system), its files fsynced first.

    With ``finished`` (a file name inside a complete directory), a ``target`` some other process published
    first is kept and ``staging`` left to the caller (returns False): the race of two builders of one cache.
    Without it, an existing ``target`` is replaced: moved aside, the new one renamed in, the old one deleted,
    so ``target`` is at every moment either the old directory or the new one.
    """
    staging, target = Path(staging), Path(target)
    fsync_tree(staging)
    if finished is not None:
        try:
            staging.rename(target)
        except OSError:
            if not (target / finished).exists():  # lost the race only if the winner finished
                raise
            return False
        return True
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return True


def _finite(value: Any) -> Any:
    """The same data with non-finite floats as strings ("inf"), so the file is strict JSON (jq, browsers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)
