"""Declared, eagerly validated parameters of reward terms (hand-written; a bad config fails before any model loads)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One knob of a term: its default, its type ("float", "int", "bool" or a tuple of allowed values), a check."""

    default: Any
    kind: str | tuple[Any, ...]
    doc: str
    check: Callable[[Any], bool] | None = None
    check_doc: str = ""


def _type_ok(kind: str | tuple[Any, ...], value: Any) -> bool:
    if isinstance(kind, tuple):  # choices; the bool True must not match 1, nor "1" match 1
        return any(value is c if isinstance(c, bool) else (type(value) is type(c) and value == c) for c in kind)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    raise AssertionError(f"unknown param kind {kind!r}")


def _describe(kind: str | tuple[Any, ...]) -> str:
    return f"one of {list(kind)}" if isinstance(kind, tuple) else f"a finite {kind}" if kind == "float" else f"an {kind}" if kind == "int" else f"a {kind}"


def validate_params(term: str, spec: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `given`; ValueError naming the term and parameter on anything unknown or invalid."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        valid = ", ".join(sorted(spec)) or "(none)"
        raise ValueError(f"reward '{term}': unknown parameter(s) {', '.join(map(repr, unknown))}; valid parameters: {valid}")
    out = {name: p.default for name, p in spec.items()}
    for name, value in given.items():
        p = spec[name]
        if not _type_ok(p.kind, value):
            raise ValueError(f"reward '{term}': parameter '{name}' must be {_describe(p.kind)}, got {value!r}")
        if p.check is not None and not p.check(value):
            raise ValueError(f"reward '{term}': parameter '{name}' {p.check_doc}, got {value!r}")
        out[name] = float(value) if p.kind == "float" else value
    return out
