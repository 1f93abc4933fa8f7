"""Plain-text tables of evaluation results, in percent as the paper reports them.

``format_table`` shows one model: a row per benchmark (pass@1 with its interval, pass@k) and the average.
``format_comparison`` shows several models (checkpoints, ``--multirun`` jobs) the way the paper's table reads:
a row per model, a column per benchmark, and the average, from their ``results.json`` files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openrs.evaluate.stats import Summary

AVERAGE = "Average"
PAPER_LABELS = {
    "aime24": "AIME24",
    "math500": "MATH-500",
    "amc23": "AMC23",
    "minerva": "Minerva",
    "olympiadbench": "OlympiadBench",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in lines
    )


def format_table(summaries: Mapping[str, Summary], average: Summary | None = None) -> str:
    """One model's results: benchmark, pass@1 ± half-width, the interval, pass@k (largest k > 1), problems x samples."""
    k = min((max(s.pass_at) for s in summaries.values() if s.pass_at), default=1)
    confidence = next(iter(summaries.values())).confidence if summaries else 0.95
    header = ["benchmark", "pass@1", f"{confidence:.0%} CI", f"pass@{k}", "problems x samples"]
    rows = []
    entries = list(summaries.items()) + ([(AVERAGE, average)] if average is not None else [])
    for name, s in entries:
        half = (s.ci_high - s.ci_low) / 2
        rows.append(
            [
                PAPER_LABELS.get(name, name),
                f"{_pct(s.pass1)} ± {_pct(half)}",
                f"[{_pct(s.ci_low)}, {_pct(s.ci_high)}]",
                _pct(s.pass_at[k]) if k in s.pass_at else "-",
                f"{s.n_problems} x {s.n_samples}",
            ]
        )
    if k == 1:  # one sample per problem: pass@k is pass@1 again
        header, rows = header[:3] + header[4:], [row[:3] + row[4:] for row in rows]
    return _grid(header, rows)


def format_comparison(
    results: Mapping[str, Mapping[str, Any]], metric: str = "pass@1", row_header: str = "model"
) -> str:
    """Models x benchmarks (+ average) for ``metric``, from ``results.json`` contents keyed by a row label."""
    benchmarks: list[str] = []
    for data in results.values():
        benchmarks += [b for b in data["benchmarks"] if b not in benchmarks]
    header = [row_header, *(PAPER_LABELS.get(b, b) for b in benchmarks), AVERAGE]
    rows = []
    for label, data in results.items():
        cells = [_pct(data["benchmarks"][b][metric]) if b in data["benchmarks"] else "-" for b in benchmarks]
        average = data.get("average") or {}
        rows.append([label, *cells, _pct(average[metric]) if metric in average else "-"])
    return _grid(header, rows)


def load_results(paths: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """``results.json`` files keyed by their ``label`` (falling back to the file's directory)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        out[str(data.get("label") or Path(path).parent)] = data
    return out
