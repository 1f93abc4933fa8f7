"""The Open RS reward terms, each giving the seed recipe's values by default.

Every term is a picklable callable `f(prompts=None, completions=..., solution=..., **kwargs) -> list[float | None]`
named after its registered name (TRL logs `rewards/<name>/mean` from that). Terms that need correctness
(accuracy, cosine, length) ask the shared verifier, so a step judges each completion once.

Reused: TRL's n-gram repetition penalty core (fed lower-cased words, which is what the seed counted). Hand-written,
because TRL's versions give other values: format/tag_count (the seed counts `\\n</think>\\n`, TRL matches a
regex), accuracy (the seed parses the gold with LaTeX extraction only, verifies `verify(answer, gold)` and
scores unparseable golds 1.0), cosine (the seed measures characters and never clamps; TRL uses clamped tokens),
length (Kimi 1.5; not in TRL) and reasoning_steps (not in TRL).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from openrs.rewards.params import (
    AccuracyParams,
    CosineParams,
    LengthParams,
    NoParams,
    RepetitionPenaltyParams,
    TermParams,
    validate_params,
)
from openrs.rewards.text import completion_texts
from openrs.rewards.verifier import SharedVerifier, Verdict


class Term:
    """Base class: holds the validated params; subclasses implement `score`."""

    name: ClassVar[str]
    PARAMS: ClassVar[type[TermParams]] = NoParams  # its parameters' typed home (openrs.rewards.params)
    needs_verifier: ClassVar[bool] = False

    def __init__(self, params: dict[str, Any], verifier: SharedVerifier | None = None) -> None:
        self.params = params
        self.verifier = verifier
        self.__name__ = self.name
        if self.needs_verifier:
            if verifier is None:
                raise ValueError(f"reward '{self.name}' needs a verifier")
            verifier.register(params["boxed"])

    def __call__(self, prompts=None, completions=None, solution=None, **kwargs) -> list[float | None]:
        return self.score(completion_texts(completions), solution, kwargs)

    def score(self, texts: list[str], solution: Sequence[Any] | None, kwargs: dict[str, Any]) -> list[float | None]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    # Helpers for terms that need correctness.
    def verdicts(self, texts: list[str], solution: Sequence[Any] | None, kwargs: dict[str, Any]) -> list[Verdict]:
        if solution is None:
            raise ValueError(f"reward '{self.name}' needs the dataset's `solution` column (gold answers)")
        golds = [s if isinstance(s, str) else str(s) for s in solution]
        return self.verifier.check(texts, golds, self.params["boxed"], kwargs.get("log_metric"))

    def skip(self, verdict: Verdict) -> bool:
        """True when this row's gold did not parse and the term is set to skip such rows."""
        return not verdict.gold_parsed and self.params["unparseable_gold"] == "skip"


class FormatReward(Term):
    """1.0 when `\\n</think>\\n` occurs exactly once (the opening tag is in the prompt, so the seed ignores it)."""

    name = "format"

    def score(self, texts, solution, kwargs):
        return [1.0 if t.count("\n</think>\n") == 1 else 0.0 for t in texts]


class TagCountReward(Term):
    """+0.5 for exactly one `<think>\\n`, +0.5 for exactly one `\\n</think>\\n`."""

    name = "tag_count"

    def score(self, texts, solution, kwargs):
        return [0.5 * (t.count("<think>\n") == 1) + 0.5 * (t.count("\n</think>\n") == 1) for t in texts]


class AccuracyReward(Term):
    """1.0 if math-verify finds the completion's (boxed-first) answer equal to the gold, else 0.0."""

    name = "accuracy"
    needs_verifier = True
    PARAMS = AccuracyParams

    def score(self, texts, solution, kwargs):
        out: list[float | None] = []
        for v in self.verdicts(texts, solution, kwargs):
            if v.gold_parsed:
                out.append(1.0 if v.correct else 0.0)
            else:
                out.append(None if self.skip(v) else 1.0)
        return out


class CosineReward(Term):
    """Correctness scaled by length on a cosine schedule (Yeo et al. 2025), with the seed's unclamped progress.

    progress = length / max_len; reward = lo + 0.5 (hi - lo) (1 + cos(pi progress)), (lo, hi) =
    (min_value_correct, max_value_correct) if correct else (max_value_wrong, min_value_wrong). Without clamping,
    past max_len the cosine climbs again (at 2 max_len it is back to its start value); the share of such
    completions is logged as `cosine/past_max_len_share`.
    """

    name = "cosine"
    needs_verifier = True
    PARAMS = CosineParams

    def _lengths(self, texts: list[str], kwargs: dict[str, Any]) -> list[int]:
        if self.params["length_unit"] == "chars":
            return [len(t) for t in texts]
        ids = kwargs.get("completion_ids")
        if ids is None or len(ids) != len(texts):
            raise ValueError("reward 'cosine' with length_unit=tokens needs `completion_ids` (one per completion)")
        return [len(x) for x in ids]

    def score(self, texts, solution, kwargs):
        p = self.params
        lengths = self._lengths(texts, kwargs)
        out: list[float | None] = []
        for v, n in zip(self.verdicts(texts, solution, kwargs), lengths, strict=True):
            if not v.gold_parsed:
                out.append(None if self.skip(v) else 1.0)
                continue
            progress = n / p["max_len"]
            if p["clamp"]:
                progress = min(progress, 1.0)
            cosine = math.cos(progress * math.pi)
            if v.correct:
                lo, hi = p["min_value_correct"], p["max_value_correct"]
            else:  # swapped, so a short wrong answer is punished harder than a long one
                lo, hi = p["max_value_wrong"], p["min_value_wrong"]
            out.append(float(lo + 0.5 * (hi - lo) * (1.0 + cosine)))
        log_metric = kwargs.get("log_metric")
        if log_metric is not None and lengths:
            log_metric(f"{self.name}/past_max_len_share", sum(n > p["max_len"] for n in lengths) / len(lengths))
        return out


class LengthReward(Term):
    """Kimi 1.5 length reward over one call's completions: lambda = 0.5 - (len - min) / (max - min) in characters;
    correct -> lambda, wrong -> min(0, lambda); all lengths equal -> 0."""

    name = "length"
    needs_verifier = True
    PARAMS = LengthParams

    def score(self, texts, solution, kwargs):
        verdicts = self.verdicts(texts, solution, kwargs)
        lengths = [len(t) for t in texts]
        lo, hi = (min(lengths), max(lengths)) if lengths else (0, 0)
        out: list[float | None] = []
        for v, n in zip(verdicts, lengths, strict=True):
            if self.skip(v):
                out.append(None)
            elif hi == lo:
                out.append(0.0)
            else:
                lam = 0.5 - (n - lo) / (hi - lo)
                correct = v.correct or not v.gold_parsed  # the seed counted an unparseable gold as correct
                out.append(float(lam if correct else min(0, lam)))
        return out


class RepetitionPenaltyReward(Term):
    """(1 - unique n-grams / n-grams) * max_penalty over lower-cased whitespace words; 0 below n words."""

    name = "repetition_penalty"
    PARAMS = RepetitionPenaltyParams

    def __init__(self, params: dict[str, Any], verifier: SharedVerifier | None = None) -> None:
        super().__init__(params, verifier)
        from trl.rewards import get_repetition_penalty_reward

        # TRL counts n-grams over any sequence; given words it computes the seed's formula.
        self._ngram_penalty = get_repetition_penalty_reward(params["ngram_size"], params["max_penalty"])

    def score(self, texts, solution, kwargs):
        return [float(r) for r in self._ngram_penalty(completion_ids=[t.lower().split() for t in texts])]


_STEP_PATTERN = re.compile(r"(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)")


class ReasoningStepsReward(Term):
    """min(1, matches / 3) over step markers (`Step 1:`, a leading `1.`, `\\n-`, `\\n*`, First/Second/Next/Finally,)."""

    name = "reasoning_steps"

    def score(self, texts, solution, kwargs):
        return [min(1.0, len(_STEP_PATTERN.findall(t)) / 3) for t in texts]


TERMS: dict[str, type[Term]] = {
    cls.name: cls
    for cls in (
        AccuracyReward,
        FormatReward,
        TagCountReward,
        CosineReward,
        LengthReward,
        RepetitionPenaltyReward,
        ReasoningStepsReward,
    )
}
REWARDS: tuple[str, ...] = tuple(TERMS)


def term_class(name: str) -> type[Term]:
    """The term registered as ``name``; ValueError listing the valid names."""
    if name not in TERMS:
        raise ValueError(f"unknown reward {name!r}; valid rewards: {', '.join(REWARDS)}")
    return TERMS[name]


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The term's full, validated parameters (defaults filled in); ValueError on a bad name or parameter."""
    return validate_params(name, term_class(name).PARAMS, params)
