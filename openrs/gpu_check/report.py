"""The check's outcome as data (:class:`CheckResult`), and its two renderings: a console table and a Markdown file.

Unmeasured figures (a dry run, or a run that failed before them) are ``None`` and render as an em dash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openrs.gpu_check.gpus import GpuSpec
from openrs.gpu_check.measure import StepFigures, WeightsDiff
from openrs.gpu_check.projection import Projection, StepShape

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS_gpu.md"  # where a GPU run writes its report
DASH = "—"
GIB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not run (dry run)
    detail: str = ""

    @property
    def status(self) -> str:
        return "not run" if self.ok is None else "PASS" if self.ok else "FAIL"


@dataclass
class CheckResult:
    dry_run: bool
    env: dict[str, Any]
    overrides: list[str]
    ran: dict[str, str]  # openrs.gpu_check.plan.describe
    model: dict[str, Any]  # parameters, tokenizer size, shape words
    checks: list[Check] = field(default_factory=list)
    steps: list[StepFigures] = field(default_factory=list)
    steady: dict[str, float | None] = field(default_factory=dict)
    memory: list[dict[str, Any]] = field(default_factory=list)  # per rank, bytes
    device_peak_mib: dict[str, int] = field(default_factory=dict)  # nvidia-smi, all processes
    weights: WeightsDiff | None = None
    timings: dict[str, float] = field(default_factory=dict)  # model build, run, total (s)
    check_shape: StepShape | None = None
    target_shape: StepShape | None = None
    target_name: str = "rs3"
    here: GpuSpec | None = None
    there: GpuSpec | None = None
    projection: Projection | None = None
    factors: dict[str, Any] = field(default_factory=dict)  # work ratios, known even without a measurement
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """A number for a table; None is a dash."""
    if value is None:
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{unit}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def devices(env: dict[str, Any]) -> str:
    devs = env.get("devices") or []
    if not devs:
        return "none"
    return ", ".join(f"{d['name']} ({fmt(d.get('memory_mib'))} MiB)" for d in devs)


def console(r: CheckResult) -> str:
    """The table printed at the end of the check."""
    width = max([len(c.name) for c in r.checks] + [10])
    lines = ["", f"gpu-check {'(dry run) ' if r.dry_run else ''}on {devices(r.env)}"]
    lines += [f"  {c.name:<{width}}  {c.status:<7}  {c.detail}" for c in r.checks]
    s = r.steady
    lines += [
        f"  per step (mean of timed steps): wall {fmt(s.get('wall'))} s = generation {fmt(s.get('generation'))} + "
        f"reward {fmt(s.get('reward'))} + loss fwd/bwd {fmt(s.get('loss'))} + other {fmt(s.get('other'))}; "
        f"{fmt(s.get('generation_tokens_per_s'), 0)} completion tokens/s",
        "  peak memory: "
        + (", ".join(f"rank {m['rank']} {m['cuda_max_memory_allocated'] / GIB:.1f} GiB" for m in r.memory) or DASH),
    ]
    p = r.projection
    lines.append(
        f"  projection ({r.target_name}, 4x A40): "
        + (
            f"{p.per_step.total:.0f} s/step, {p.hours:.1f} h, ${p.cost_usd:.0f} (generation at its floor: "
            f"{p.floor_hours:.1f} h, ${p.floor_cost_usd:.0f})"
            if p
            else DASH
        )
    )
    lines.append(f"  result: {'DRY RUN OK' if r.dry_run and r.ok else 'PASS' if r.ok else 'FAIL'}")
    return "\n".join(lines)
