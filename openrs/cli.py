"""What the ``python -m openrs.<tool>`` entry points share: paths that paste back, and one-line user errors.

Run directories of sweep points are named by their overrides (``lr=5e-06,reward=cosine``), which Hydra's override
parser rejects unquoted (``run=<dir>`` would read as a second override). :func:`quote_path_overrides` quotes the
value of such path arguments before Hydra parses the command line, so any directory openrs prints can be pasted
back as it is.

:func:`report_user_errors` turns an :class:`openrs.errors.UserError` into one line on stderr and its exit code
(2 for usage errors), removes a Hydra output directory that holds nothing but Hydra's own files, and leaves
every other exception (a bug) to Hydra's usual report. ``HYDRA_FULL_ERROR=1`` keeps the traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from openrs.errors import UserError
from openrs.records.run_dir import RunDir

PATH_KEYS = ("run", "resume", "baseline", "hydra.run.dir", "hydra.sweep.dir")
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./~+:@%")


def quote_path_overrides(argv: Sequence[str], keys: Sequence[str] = PATH_KEYS) -> list[str]:
    """``argv`` with ``key=<path>`` values quoted where Hydra's grammar would misread them (``=``, ``,`` ...)."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in keys and value and value[0] not in "'\"" and not set(value) <= _SAFE:
            escaped = value.replace("\\", "\\\\").replace("'", "\\'")
            arg = f"{key}='{escaped}'"
        out.append(arg)
    return out


def holds_only_hydra_files(directory: Path) -> bool:
    """True for a directory with nothing in it but Hydra's ``.hydra/`` and job logs (and the run-dir lock)."""
    if not directory.is_dir():
        return False
    run = RunDir(directory)
    return all(p in (run.hydra, run.lock) or p.suffix == ".log" for p in directory.iterdir())


@contextmanager
def report_user_errors(prog: str, hydra_dir: Path | None) -> Iterator[None]:
    """Print a UserError as ``<prog>: error: <message>`` and exit with its code; clean an untouched Hydra dir."""
    try:
        yield
    except UserError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if hydra_dir is not None and holds_only_hydra_files(hydra_dir):
            shutil.rmtree(hydra_dir, ignore_errors=True)
        message = " ".join(str(exc).split()) if "\n" not in str(exc).strip() else str(exc).strip()
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
