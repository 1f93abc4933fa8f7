"""Errors a user can act on: the entry points print their message as one line (no traceback) and exit.

``UsageError`` (exit 2, the shell convention for usage errors): a bad key, value, option or path on the command
line. ``RunError`` (exit 1): the environment stopped the run in a way the message explains (disk full, run dir
in use, the vLLM server died). ``HYDRA_FULL_ERROR=1`` shows the traceback as well.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message says what to do; no traceback needed."""

    exit_code = 1


class UsageError(UserError, ValueError):
    """The command asked for something invalid (names the key and the valid choices)."""

    exit_code = 2


class DatasetError(UsageError):
    """A dataset that cannot be used as configured (a missing column, an empty row, an unreadable file)."""


class RunError(UserError, RuntimeError):
    """The run could not go on; nothing was lost (the message says where it resumes)."""

    exit_code = 1
