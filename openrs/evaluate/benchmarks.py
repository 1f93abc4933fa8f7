"""The paper's five benchmarks: where they live, which columns hold problem and gold, and the prompt.

Sources and columns are the seed's lighteval tasks (knoveleng/open-rs ``src/open_r1/evaluate.py``). A
benchmark loads from the hub, or from a local ``.jsonl``/``.json``/``.parquet`` file given as ``path``.
Local copies may name a column differently (``problem`` for OlympiadBench's ``question``), so each spec lists
the accepted column names in order of preference; the seed's name comes first.

Besides the five, ``mini_heldout`` is generated on the spot: the held-out side of the miniature a+b*c task
(``openrs.data.mini_arith``), posed in the training prompt format (the bare problem as the user turn, no system
prompt), since the small models trained on it know no other.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openrs.evaluate.scoring import GOLD_KINDS, GoldKind

log = logging.getLogger(__name__)

# The seed's user turn, verbatim (including the double space after "clearly."). The issue quotes it with one
# space, which is how Markdown renders it; the seed's template string has two.
PROMPT_TEMPLATE = (
    "Solve the following math problem efficiently and clearly.  The last line of your response should be of "
    "the following format: 'Therefore, the final answer is: $\\boxed{{ANSWER}}$. I hope it is correct' "
    "(without quotes) where ANSWER is just the final number or expression that solves the problem. "
    "Think step by step before answering.\n\n{problem}"
)

_ID_FIELDS = ("id", "unique_id", "idx")


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: hub source, accepted column names, gold extraction kind, expected size, prompt.

    ``prompt_template`` (with a ``{problem}`` field) and ``system_prompt`` shape the conversation; the
    defaults are the seed's protocol. ``generate`` makes the rows on the spot instead of loading them from
    the hub.
    """

    name: str
    hub_id: str | None
    split: str
    problem_columns: tuple[str, ...]
    answer_columns: tuple[str, ...]
    gold_kind: GoldKind
    expected_rows: int | None = None
    prompt_template: str = PROMPT_TEMPLATE
    system_prompt: str | None = None
    generate: Callable[[], list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        if self.gold_kind not in GOLD_KINDS:
            raise ValueError(f"{self.name}: gold_kind must be one of {list(GOLD_KINDS)}, got {self.gold_kind!r}")
        if not self.problem_columns or not self.answer_columns:
            raise ValueError(f"{self.name}: at least one problem column and one answer column are needed")


@dataclass(frozen=True)
class Problem:
    """One benchmark row, reduced to what evaluation needs."""

    index: int
    problem: str
    gold: str
    id: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def _mini_heldout_rows() -> list[dict[str, Any]]:
    """The held-out problems of the miniature task with its default split."""
    from openrs.config import MiniArithConfig
    from openrs.data import mini_arith as minitask

    return minitask.rows(MiniArithConfig(), "held_out")


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("aime24", "HuggingFaceH4/aime_2024", "train", ("problem",), ("answer",), "expr", 30),
        BenchmarkSpec("math500", "HuggingFaceH4/MATH-500", "test", ("problem",), ("solution", "answer"), "latex", 500),
        BenchmarkSpec("amc23", "knoveleng/AMC-23", "train", ("problem",), ("answer",), "expr", 40),
        BenchmarkSpec("minerva", "knoveleng/Minerva-Math", "train", ("problem",), ("solution", "answer"), "latex", 272),
        BenchmarkSpec(
            "olympiadbench",
            "knoveleng/OlympiadBench",
            "train",
            ("question", "problem"),
            ("answer",),
            "latex",
            675,
        ),
        BenchmarkSpec(
            "mini_heldout",
            None,
            "held_out",
            ("problem",),
            ("solution",),
            "latex",
            500,
            prompt_template="{problem}",
            generate=_mini_heldout_rows,
        ),
    )
}
PAPER_BENCHMARKS: tuple[str, ...] = ("aime24", "math500", "amc23", "minerva", "olympiadbench")


def get_spec(benchmark: str | BenchmarkSpec) -> BenchmarkSpec:
    """The spec for a registered name (or the spec itself)."""
    if isinstance(benchmark, BenchmarkSpec):
        return benchmark
    try:
        return BENCHMARKS[benchmark]
    except KeyError:
        raise KeyError(
            f"unknown benchmark {benchmark!r}; known: {sorted(BENCHMARKS)} "
            "(a custom benchmark needs a BenchmarkSpec with its gold_kind)"
        ) from None


def build_prompt(problem: str, template: str = PROMPT_TEMPLATE) -> str:
    """The user turn for ``problem`` (the seed's by default; the chat template is applied later)."""
    return template.format(problem=problem)


def chat_messages(problem: str, spec: BenchmarkSpec | None = None) -> list[dict[str, str]]:
    """The conversation given to the model's chat template (the seed's: one user turn, no system prompt)."""
    if spec is None:
        return [{"role": "user", "content": build_prompt(problem)}]
    turns = [{"role": "system", "content": spec.system_prompt}] if spec.system_prompt else []
    return [*turns, {"role": "user", "content": build_prompt(problem, spec.prompt_template)}]


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a local ``.jsonl``, ``.json`` (a list of objects) or ``.parquet`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects")
        return data
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise ValueError(f"{path}: unsupported benchmark file type {suffix!r} (use .jsonl, .json or .parquet)")


def _hub_rows(spec: BenchmarkSpec, revision: str | None) -> list[dict[str, Any]]:
    if spec.generate is not None:
        return spec.generate()
    if spec.hub_id is None:
        raise ValueError(f"{spec.name}: no hub source; pass a local path")
    from datasets import load_dataset  # heavy; only needed for hub loading

    return list(load_dataset(spec.hub_id, split=spec.split, revision=revision))


def _pick_column(candidates: tuple[str, ...], columns: Iterable[str], role: str, where: str) -> str:
    present = set(columns)
    for name in candidates:
        if name in present:
            return name
    wanted = repr(candidates[0]) if len(candidates) == 1 else f"one of {list(candidates)}"
    raise KeyError(f"{where}: missing {role} column {wanted}; the file has columns {sorted(present)}")


def to_problems(spec: BenchmarkSpec, rows: list[Mapping[str, Any]], where: str) -> list[Problem]:
    """Convert raw rows to :class:`Problem` using the spec's columns; ``where`` names the source in errors."""
    if not rows:
        raise ValueError(f"{where}: no rows")
    problem_col = _pick_column(spec.problem_columns, rows[0].keys(), "problem", where)
    answer_col = _pick_column(spec.answer_columns, rows[0].keys(), "answer", where)
    problems = []
    for i, row in enumerate(rows):
        for col in (problem_col, answer_col):
            if row.get(col) is None:
                raise KeyError(f"{where}: row {i} has no value in column {col!r}")
        ident = next((str(row[k]) for k in _ID_FIELDS if row.get(k) is not None), str(i))
        extra = {k: v for k, v in row.items() if k not in (problem_col, answer_col)}
        problems.append(Problem(i, str(row[problem_col]), str(row[answer_col]), ident, extra))
    return problems


def load_benchmark(
    benchmark: str | BenchmarkSpec,
    path: str | Path | None = None,
    revision: str | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """Problems of ``benchmark`` from ``path`` when given, else from its hub dataset (or its generator).

    Warns when the full benchmark does not have the expected number of rows; ``limit`` keeps the first rows.
    """
    spec = get_spec(benchmark)
    if path is not None:
        where = str(path)
    elif spec.generate is not None:
        where = f"{spec.name} (generated)"
    else:
        where = f"{spec.hub_id} ({spec.split} split)"
    rows = read_rows(path) if path is not None else _hub_rows(spec, revision)
    problems = to_problems(spec, rows, where)
    if spec.expected_rows is not None and len(problems) != spec.expected_rows:
        log.warning(
            "%s: %d rows in %s, the paper's version has %d",
            spec.name,
            len(problems),
            where,
            spec.expected_rows,
        )
    return problems[:limit] if limit is not None else problems
