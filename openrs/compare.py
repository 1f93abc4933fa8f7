"""``python -m openrs.compare <dir>... [metrics=[...]] [out=<dir>] [smooth=0.6] [window=10]``: runs side by side.

Finds every run under the given dirs (a run dir holds ``tb/`` with event files; single runs and multirun
sweeps alike), reads its scalars with tensorboard's own ``EventAccumulator``, and writes

- a table on stdout, one row a run: the overrides that tell the runs apart, status, steps, final/best reward
  and accuracy, completion length, clipped share, language drift, GPU-hours and cost ($),
- ``compare.csv`` with the same rows, and ``compare.png`` with the chosen curves (EMA-smoothed as TensorBoard
  does, one line a run, the raw points faint behind),
- for runs with evaluations (``eval_after``, or ``python -m openrs.evaluate run=<dir>``): per benchmark and arm
  (runs differing only by seed) the accuracy, the spread across seeds and paired differences against the start
  and against ``control=<arm>``, each with its 95% interval and p-value (openrs.evaluate.significance), also as
  ``significance.json``,

into ``out`` (default: the first dir). Runs still training are read as far as their events go.
The figures come from :func:`openrs.records.run_summary.headline`, which also fills ``summary.json``.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from openrs.evaluate import significance
from openrs.records import hparams, run_summary
from openrs.records.atomic import write_json_atomic
from openrs.records.run_dir import RunDir

ALIASES = {"accuracy": run_summary.ACCURACY_KEYS, "clipped": run_summary.CLIPPED_KEYS}
COLUMNS = {  # figure -> table header
    "steps": "steps",
    "reward_final": "reward",
    "reward_best": "best",
    "accuracy_final": "acc",
    "accuracy_best": "best acc",
    "length_final": "length",
    "clipped_final": "clipped",
    "drift_final": "drift",
    "gpu_hours": "GPU-h",
    "cost_usd": "cost $",
}
RUNNING_WITHIN_S = 600  # a run without summary.json whose events changed this recently is still running


@dataclass
class CompareConfig:
    """Options of ``openrs.compare`` (``key=value`` on the command line)."""

    metrics: list[str] = field(default_factory=lambda: ["reward", "accuracy", "completions/mean_length", "clipped"])
    out: str | None = None  # where compare.png / compare.csv go; None: the first dir given
    smooth: float = 0.6  # EMA weight of the plotted curves, as TensorBoard's smoothing slider
    window: int = 10  # final = mean of the last `window` logged steps; best = the highest such mean
    control: str | None = None  # the arm (runs differing only by seed) every other arm is tested against


@dataclass
class Run:
    run_dir: Path
    overrides: list[str]
    status: str
    series: dict[str, list[tuple[int, float]]]
    label: str = ""


def find_runs(dirs: Sequence[Path]) -> list[Path]:
    """Run dirs at or under ``dirs``: those whose ``tb/`` holds event files."""
    found: set[Path] = set()
    for d in map(Path, dirs):
        candidates = [RunDir(d).tb] if RunDir(d).tb.is_dir() else [d] if d.name == "tb" else sorted(d.rglob("tb"))
        for tb in candidates:
            if tb.is_dir() and any(tb.glob("events.out.tfevents*")):
                found.add(tb.parent.resolve())
    return sorted(found)


def load_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every ``train/*`` scalar as (step, value) points keyed by TRL's name (prefix dropped); last write wins."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})  # 0: keep every point, no sampling
    acc.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in acc.Tags()["scalars"]:
        if tag.startswith("train/"):
            points = {e.step: e.value for e in acc.Scalars(tag)}
            out[tag.removeprefix("train/")] = sorted(points.items())
    return out


def run_status(run_dir: Path) -> str:
    if RunDir(run_dir).summary.exists():
        return "done"
    newest = max((p.stat().st_mtime for p in RunDir(run_dir).tb.glob("events.out.tfevents*")), default=0.0)
    return "running" if time.time() - newest < RUNNING_WITHIN_S else "stopped"


def load_run(run_dir: Path) -> Run:
    return Run(run_dir, hparams.hydra_overrides(run_dir), run_status(run_dir), load_scalars(RunDir(run_dir).tb))


def label_runs(runs: list[Run], roots: Sequence[Path]) -> None:
    """Name each run by the overrides not shared by all runs; by its path where those do not tell them apart."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if len(runs) > 1 else set()
    for r in runs:
        r.label = ",".join(o for o in r.overrides if o not in common)
    if len({r.label for r in runs}) < len(runs) or not all(r.label for r in runs):
        for r in runs:
            r.label = _relative(r.run_dir, roots)


def _relative(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        try:
            rel = path.relative_to(Path(root).resolve())
            return str(rel) if str(rel) != "." else path.name
        except ValueError:
            continue
    return str(path)


def table_rows(runs: Sequence[Run], window: int) -> list[dict[str, Any]]:
    return [
        {
            "run": r.label,
            "status": r.status,
            **run_summary.headline(r.series, window),
            "run_dir": str(r.run_dir),
        }
        for r in runs
    ]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1000 else f"{value:.3f}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Aligned text table: run, status, then the headline figures."""
    headers = ["run", "status", *COLUMNS.values()]
    body = [[_cell(row.get(k)) for k in ("run", "status", *COLUMNS)] for row in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    keys = ["run", "status", *run_summary.FIGURE_COLUMNS, "run_dir"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: exponential moving average with the zero-start bias divided out."""
    out, last, n = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(math.nan)
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n) if weight > 0 else v)
    return out


def resolve_metric(series: dict[str, Any], metric: str) -> str | None:
    """The logged name a requested metric means in this run (``train/`` prefix optional; aliases)."""
    name = metric.removeprefix("train/")
    for key in ALIASES.get(name, (name,)):
        if series.get(key):
            return key
    return None


def plot(runs: Sequence[Run], metrics: Sequence[str], smooth: float, path: Path) -> list[str]:
    """One panel a metric, one line a run; returns the metrics that had data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in metrics if any(resolve_metric(r.series, m) for r in runs)]
    if not shown:
        raise ValueError(f"none of metrics={list(metrics)} was logged by these runs")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 2.9), dpi=80, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], shown, strict=True):
        for i, run in enumerate(runs):
            key = resolve_metric(run.series, metric)
            if key is None:
                continue
            steps, values = zip(*run.series[key], strict=True)
            color = colors[i % len(colors)]
            ax.plot(steps, values, color=color, alpha=0.2, linewidth=0.8)
            ax.plot(steps, ema(values, smooth), color=color, linewidth=1.6, label=run.label)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(labels) - 1) // 4), 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return shown


def parse_args(argv: Sequence[str]) -> tuple[list[Path], CompareConfig]:
    """Dirs and ``key=value`` options; a token is an option only when its key is a CompareConfig field
    (sweep dirs such as ``lr=0.001`` contain ``=`` too)."""
    from omegaconf import OmegaConf

    names = {f.name for f in fields(CompareConfig)}
    options = [a for a in argv if a.partition("=")[0] in names and "=" in a]
    dirs = [Path(a) for a in argv if a not in options]
    cfg = OmegaConf.merge(OmegaConf.structured(CompareConfig), OmegaConf.from_dotlist(options))
    return dirs, OmegaConf.to_object(cfg)  # type: ignore[return-value]


def compare(dirs: Sequence[Path], cfg: CompareConfig) -> tuple[list[dict[str, Any]], Path, Path]:
    """Find and read the runs; print the table; write the CSV and PNG. Returns (rows, csv path, png path)."""
    run_dirs = find_runs(dirs)
    if not run_dirs:
        raise FileNotFoundError(f"no runs (dirs with tb/ event files) under {', '.join(map(str, dirs))}")
    runs = [load_run(d) for d in run_dirs]
    label_runs(runs, dirs)
    rows = table_rows(runs, cfg.window)
    print(format_table(rows))
    out = Path(cfg.out) if cfg.out else Path(dirs[0])
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "compare.csv", out / "compare.png"
    write_csv(rows, csv_path)
    plot(runs, cfg.metrics, cfg.smooth, png_path)
    evals = [
        e
        for r in runs
        for e in significance.read_run_eval(r.run_dir, r.label, significance.seedless(r.label.split(",")))
    ]
    if evals:  # runs with evaluations: which differences exceed their noise
        report, sig_rows = significance.compare_arms(evals, cfg.control)
        print(f"\n{report}")
        write_json_atomic(out / "significance.json", sig_rows)
    print(f"\nwrote {csv_path} and {png_path}" + (f" and {out / 'significance.json'}" if evals else ""))
    return rows, csv_path, png_path


def main(argv: Sequence[str] | None = None) -> int:
    dirs, cfg = parse_args(sys.argv[1:] if argv is None else argv)
    if not dirs:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    try:
        compare(dirs, cfg)
    except (FileNotFoundError, ValueError) as exc:
        print(f"openrs.compare: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
