"""Each reward term's parameters as one typed dataclass: the seed recipe's defaults, a comment beside each field,
and the checks that run when a term is built or the reward config is composed (before any model loads).

The same rule as every config group (docs/ARCHITECTURE.md, "Defaults"): ``conf/reward/*.yaml`` holds the values a
run uses, these defaults mirror them, and tests/test_defaults.py keeps the two equal. Types are checked strictly
from the annotations, stricter than OmegaConf would (it turns ``"1"`` into ``1.0``): a parameter of the wrong type
is an error naming the term and the parameter, never a conversion.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

# math-verify's `boxed` normalization of a completion (openrs.rewards.extraction.BOXED_MODES). The seed used "all"
# for accuracy and the literal True for cosine/length; True leaves \boxed inside $...$ unextracted.
BoxedMode = Literal["all", "last", "none", True]
# A gold math-verify cannot parse: "seed" scores it as the seed did (accuracy/cosine 1.0, length counts the row as
# correct); "skip" gives None, which TRL 1.16 turns into NaN and nansums, so the term adds 0 to that row's reward.
GoldPolicy = Literal["seed", "skip"]


def _describe(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return f"one of {list(typing.get_args(kind))}"
    return {float: "a finite float", int: "an int", bool: "a bool"}[kind]


def _type_ok(kind: Any, value: Any) -> bool:
    if typing.get_origin(kind) is Literal:  # the bool True must not match 1, nor "1" match 1
        return any(
            value is c if isinstance(c, bool) else (type(value) is type(c) and value == c)
            for c in typing.get_args(kind)
        )
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is bool:
        return isinstance(value, bool)
    raise AssertionError(f"unsupported parameter type {kind!r}")


@dataclass(frozen=True)
class TermParams:
    """A term's parameters; subclasses add fields and range checks (:meth:`check`)."""

    term: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), globalns=globals())
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            if not _type_ok(kind, value):
                self.fail(f.name, f"must be {_describe(kind)}")
            if kind is float:
                object.__setattr__(self, f.name, float(value))
        self.check()

    def check(self) -> None:
        """Ranges a type cannot say; :meth:`fail` names the parameter."""

    def fail(self, name: str, requirement: str) -> None:
        raise ValueError(f"reward '{self.term}': parameter '{name}' {requirement}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class NoParams(TermParams):
    """format, tag_count, reasoning_steps: nothing to set."""


@dataclass(frozen=True)
class AccuracyParams(TermParams):
    term: ClassVar[str] = "accuracy"
    boxed: BoxedMode = "all"  # math-verify normalization of the completion (the seed: all)
    unparseable_gold: GoldPolicy = "seed"  # seed = 1.0 as the seed gave; skip = None (TRL adds 0)


@dataclass(frozen=True)
class CosineParams(TermParams):
    term: ClassVar[str] = "cosine"
    min_value_wrong: float = 0.0  # reward of a wrong completion of length 0
    max_value_wrong: float = -0.5  # reward of a wrong completion of length max_len
    min_value_correct: float = 0.5  # reward of a correct completion of length max_len
    max_value_correct: float = 1.0  # reward of a correct completion of length 0
    max_len: int = 1000  # length at which the schedule reaches its end value
    length_unit: Literal["chars", "tokens"] = "chars"  # how length is measured (the seed: characters)
    clamp: bool = False  # cap progress at 1 so lengths past max_len keep the end value (the seed: no)
    boxed: BoxedMode = True  # math-verify normalization of the completion (the seed: True, unlike accuracy's all)
    unparseable_gold: GoldPolicy = "seed"  # seed = 1.0 as the seed gave; skip = None (TRL adds 0)

    def check(self) -> None:
        if self.max_len <= 0:
            self.fail("max_len", "must be > 0")


@dataclass(frozen=True)
class LengthParams(TermParams):
    term: ClassVar[str] = "length"
    boxed: BoxedMode = True  # math-verify normalization of the completion (the seed: True)
    unparseable_gold: GoldPolicy = "seed"  # seed = the row counts as correct; skip = None (TRL adds 0)


@dataclass(frozen=True)
class RepetitionPenaltyParams(TermParams):
    term: ClassVar[str] = "repetition_penalty"
    ngram_size: int = 3  # words per n-gram
    max_penalty: float = -1.0  # penalty of a fully repetitive completion

    def check(self) -> None:
        if self.ngram_size < 1:
            self.fail("ngram_size", "must be >= 1")
        if self.max_penalty > 0:
            self.fail("max_penalty", "must be <= 0")


def validate_params(term: str, cls: type[TermParams], given: dict[str, Any]) -> dict[str, Any]:
    """``cls``'s defaults overlaid with ``given``, checked; ValueError naming the term and parameter."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        valid = ", ".join(sorted(names)) or "(none)"
        raise ValueError(
            f"reward '{term}': unknown parameter(s) {', '.join(map(repr, unknown))}; valid parameters: {valid}"
        )
    params = cls(**given)
    return {name: getattr(params, name) for name in names}
