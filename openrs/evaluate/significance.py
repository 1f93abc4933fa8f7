"""Which differences between runs are real: paired tests over the runs' evaluations, for ``openrs.compare``.

Each run's evaluation is read from its run dir: ``eval/after_training.json`` (the starting and final model on
held-out problems, written by ``eval_after``), else the newest ``eval/<checkpoint>/<benchmark>.jsonl`` that
``python -m openrs.evaluate run=<dir>`` wrote. Runs that differ only by ``seed`` form one arm; an arm's
seeds count as samples of each problem (``[seed 1's answer, seed 2's, ...]``), so arms are compared problem by
problem with :func:`openrs.evaluate.paired.paired_difference`, and the spread across seeds is reported beside
it (:func:`openrs.evaluate.paired.seed_spread`). Every comparison says whether it exceeds its noise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openrs.evaluate.paired import PairedDifference, format_p, paired_difference, seed_spread
from openrs.records import jsonl
from openrs.records.run_dir import RunDir
from openrs.training.checkpoints import checkpoint_step


@dataclass
class RunEval:
    """One run's per-problem outcomes on one benchmark (final model), and its starting model's if known."""

    label: str
    arm: str
    benchmark: str
    final: list[list[bool]]
    start: list[list[bool]] | None = None


@dataclass
class Arm:
    """Runs that differ only by seed."""

    name: str
    runs: list[RunEval] = field(default_factory=list)

    def pooled(self, which: str = "final") -> list[list[bool]]:
        """Per problem, every seed's answers as samples of it."""
        per_run = [getattr(r, which) for r in self.runs]
        return [sum((list(o[i]) for o in per_run), []) for i in range(len(per_run[0]))]


def outcomes_from_records(path: Path) -> list[list[bool]]:
    """Per-problem 0/1 samples from an evaluation's ``<benchmark>.jsonl``, in problem order."""
    by_index: dict[int, dict[int, bool]] = {}
    for rec in jsonl.read(path):
        by_index.setdefault(int(rec["index"]), {})[int(rec.get("sample", 0))] = bool(rec["correct"])
    return [[samples[s] for s in sorted(samples)] for _, samples in sorted(by_index.items())]


def read_run_eval(run_dir: Path, label: str, arm: str) -> list[RunEval]:
    """The run's evaluations (see the module docstring); [] if it has none."""
    after = RunDir(run_dir).after_training
    if after.is_file():
        data = json.loads(after.read_text())
        return [RunEval(label, arm, data["benchmark"], data["final"]["outcomes"], data["start"]["outcomes"])]
    evals = [d for d in RunDir(run_dir).eval.glob("*") if d.is_dir() and (d / "results.json").is_file()]
    if not evals:
        return []
    newest = max(evals, key=lambda d: (d.name == "final", checkpoint_step(d) or -1))
    return [RunEval(label, arm, f.stem, outcomes_from_records(f)) for f in sorted(newest.glob("*.jsonl"))]


def seedless(overrides: Sequence[str]) -> str:
    """A run's overrides without its seed: the name of its arm."""
    return ",".join(o for o in overrides if not o.startswith("seed=")) or "(base)"


def group_arms(evals: Sequence[RunEval]) -> dict[str, dict[str, Arm]]:
    """benchmark -> arm name -> arm (arms keep the order the runs came in)."""
    out: dict[str, dict[str, Arm]] = {}
    for e in evals:
        out.setdefault(e.benchmark, {}).setdefault(e.arm, Arm(e.arm)).runs.append(e)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _diff(d: PairedDifference) -> str:
    verdict = "" if d.significant else "  (not significant)"
    return (
        f"{100 * d.difference:+.1f} [{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}] "
        f"{format_p(d.p_value, d.alpha)}{verdict}"
    )


def compare_arms(evals: Sequence[RunEval], control: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The text report and its rows: per benchmark and arm, accuracy, seed spread, paired differences."""
    lines, rows = [], []
    for benchmark, arms in group_arms(evals).items():
        lines.append(f"{benchmark}: pass@1 in points; paired 95% CI over problems, sign-flip p-value")
        controls = _controls(arms, control)
        for arm in arms.values():
            ref = controls.get(arm.name)
            final = arm.pooled("final")
            spread = seed_spread([r.final for r in arm.runs]) if len(arm.runs) > 1 else None
            row: dict[str, Any] = {
                "benchmark": benchmark,
                "arm": arm.name,
                "seeds": len(arm.runs),
                "problems": len(final),
                "accuracy": sum(sum(o) / len(o) for o in final) / len(final),
            }
            parts = [f"  {arm.name}: {_pct(row['accuracy'])} ({len(arm.runs)} seed{'s' * (len(arm.runs) > 1)})"]
            if spread is not None:
                row.update(
                    seed_mean=spread.mean,
                    seed_std=spread.std,
                    between_seed_var=spread.between_seed_var,
                    between_problem_var=spread.between_problem_var,
                )
                parts.append(
                    f"seeds {_pct(spread.mean)} ± {_pct(spread.std)} (variance: between seeds "
                    f"{1e4 * spread.between_seed_var:.1f}, between problems {1e4 * spread.between_problem_var:.1f} pt²)"
                )
            if all(r.start is not None for r in arm.runs):
                vs_start = paired_difference(arm.pooled("start"), final)
                row["vs_start"] = vs_start.to_dict()
                parts.append(f"vs start {_diff(vs_start)}")
            if ref is not None and ref is not arm:
                vs_ref = paired_difference(ref.pooled("final"), final)
                row["vs_control"] = {"control": ref.name, **vs_ref.to_dict()}
                parts.append(f"vs {ref.name} {_diff(vs_ref)}")
            lines.append("; ".join(parts))
            rows.append(row)
    return "\n".join(lines), rows


def _overrides(arm_name: str) -> dict[str, str]:
    return dict(o.split("=", 1) for o in arm_name.split(",") if "=" in o)


def _controls(arms: dict[str, Arm], control: str | None) -> dict[str, Arm]:
    """Each arm's control. ``control=key=value`` (``reward=format``): for each arm, the arm with ``key=value``
    and every other override the same, so a reward x lr sweep tests each reward against the control at its own
    lr. Any other string must name exactly one arm (a substring of its name), the control of every arm."""
    if control is None:
        return {}
    key, sep, value = control.partition("=")
    if sep and "," not in control:
        by_overrides = {tuple(sorted(_overrides(name).items())): arm for name, arm in arms.items()}
        out = {}
        for name in arms:
            wanted = {**_overrides(name), key: value}
            if key in _overrides(name):
                match = by_overrides.get(tuple(sorted(wanted.items())))
                if match is not None:
                    out[name] = match
        if out:
            return out
    matches = [a for name, a in arms.items() if control in name]
    if len(matches) != 1:
        raise ValueError(
            f"control={control!r} must name exactly one arm, or key=value of a swept key; arms: {sorted(arms)}"
        )
    return dict.fromkeys(arms, matches[0])


def versus(base: dict[str, list[list[bool]]], other: dict[str, list[list[bool]]]) -> dict[str, PairedDifference]:
    """Per shared benchmark: ``other`` minus ``base``, paired over problems."""
    return {name: paired_difference(base[name], other[name]) for name in other if name in base}


def format_versus(diffs: dict[str, PairedDifference], label: str, base_label: str) -> str:
    """``<label> vs <base>`` then one line a benchmark: difference in points, 95% CI, p, verdict."""
    from openrs.evaluate.paired import format_difference

    width = max((len(n) for n in diffs), default=0)
    lines = [f"{label} vs {base_label} (pass@1 difference, paired over problems)"]
    lines += [f"  {format_difference(d, label=n, label_width=width)}" for n, d in diffs.items()]
    return "\n".join(lines)


def outcomes_of_eval_dir(eval_dir: Path) -> dict[str, list[list[bool]]]:
    """Benchmark -> per-problem outcomes from an evaluation dir's ``<benchmark>.jsonl`` files."""
    return {f.stem: outcomes_from_records(f) for f in sorted(Path(eval_dir).glob("*.jsonl"))}
