"""Training problems as a ``datasets.Dataset`` with a chat ``prompt`` and a gold ``solution``.

Four sources share one output shape: the hub (``datasets.load_dataset``), a local jsonl/json/parquet
file, arithmetic problems generated offline, and the training side of the miniature a+b*c task
(``openrs.data.mini_arith``). Rewards read the ``solution`` column.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrs.data.arithmetic import generate_arithmetic
from openrs.errors import DatasetError

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

    from openrs.config import DatasetConfig

log = logging.getLogger(__name__)

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def make_prompt(problem: str, system_prompt: str | None) -> list[dict[str, str]]:
    """The chat turns TRL renders with the model's template (the seed's make_conversation)."""
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns.append({"role": "user", "content": problem})
    return turns


def _load_raw(cfg: DatasetConfig) -> tuple[Dataset, str]:
    """The dataset as stored, and a human-readable name of where it came from."""
    import datasets

    source = cfg.source.value if hasattr(cfg.source, "value") else str(cfg.source)
    if source == "arithmetic":
        a = cfg.arithmetic
        rows = generate_arithmetic(a.num_problems, a.max_operand, list(a.operators), a.seed)
        return datasets.Dataset.from_list(rows), f"arithmetic(seed={a.seed})"
    if source == "mini_arith":  # training side of the split only; the held-out side is for evaluation
        from openrs.data import mini_arith

        return datasets.Dataset.from_list(mini_arith.rows(cfg.mini_arith, "train")), "mini_arith[train]"
    if not cfg.path:
        raise DatasetError(f"dataset.path must be set for source={source}")
    if source == "local":
        path = Path(cfg.path).expanduser()
        if not path.exists():
            raise DatasetError(f"dataset.path: no such file {path}")
        fmt = LOCAL_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise DatasetError(
                f"dataset.path: {path} has suffix {path.suffix!r}; expected one of {sorted(LOCAL_FORMATS)}"
            )
        return datasets.load_dataset(fmt, data_files=str(path), split="train"), str(path)
    # Hub: needs network access (not exercised in tests; the id and split come from conf/dataset).
    try:
        ds = datasets.load_dataset(cfg.path, cfg.name, split=cfg.split, revision=cfg.revision)
    except (OSError, ConnectionError, FileNotFoundError) as exc:  # offline, unknown id, or no such split
        raise DatasetError(
            f"dataset.path={cfg.path}: cannot load it from the hub ({type(exc).__name__}); download it once where "
            "the hub is reachable, or train on a local copy: dataset=jsonl dataset.path=<file>"
        ) from exc
    return ds, f"{cfg.path}[{cfg.split}]" + (f"@{cfg.revision}" if cfg.revision else "")


def load_problems(cfg: DatasetConfig) -> Dataset:
    """Load, validate and format the training problems.

    Output columns: ``prompt`` (chat turns), ``solution`` (gold text for the rewards), plus the
    source's other columns.
    """
    ds, origin = _load_raw(cfg)
    missing = [c for c in (cfg.problem_column, cfg.solution_column) if c not in ds.column_names]
    if missing:
        raise DatasetError(
            f"{origin}: missing column(s) {missing} (dataset.problem_column={cfg.problem_column!r}, "
            f"dataset.solution_column={cfg.solution_column!r}); columns present: {ds.column_names}"
        )
    _check_rows(ds, cfg, origin)
    if cfg.shuffle_seed is not None:
        ds = ds.shuffle(seed=cfg.shuffle_seed)
    if cfg.max_samples is not None:
        ds = ds.select(range(min(cfg.max_samples, len(ds))))

    problem_col, solution_col, system = cfg.problem_column, cfg.solution_column, cfg.system_prompt

    def to_example(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": make_prompt(row[problem_col], system), "solution": row[solution_col]}

    # A source's own `prompt` column is replaced by the chat turns.
    return ds.map(to_example, remove_columns=["prompt"] if "prompt" in ds.column_names else None)


def _check_rows(ds: Dataset, cfg: DatasetConfig, origin: str) -> None:
    """Fail on rows whose problem or gold is empty, naming the first bad row."""
    for col in (cfg.problem_column, cfg.solution_column):
        for i, value in enumerate(ds[col]):
            if value is None or (isinstance(value, str) and not value.strip()):
                raise DatasetError(f"{origin}: row {i} has an empty {col!r}")


def drop_long_prompts(ds: Dataset, tokenizer: PreTrainedTokenizerBase, max_prompt_length: int) -> Dataset:
    """Drop rows whose rendered prompt exceeds ``max_prompt_length`` tokens.

    TRL 1.x no longer truncates prompts; the seed's TRL cut them from the left, which removed the
    system prompt. Dropping keeps every prompt intact; the count is logged.
    """

    def fits(row: dict[str, Any]) -> bool:
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids) <= max_prompt_length

    kept = ds.filter(fits)
    dropped = len(ds) - len(kept)
    if dropped:
        log.warning("dropped %d of %d prompts longer than %d tokens", dropped, len(ds), max_prompt_length)
    if len(kept) == 0:
        raise DatasetError(f"every prompt is longer than dataset.max_prompt_length={max_prompt_length} tokens")
    return kept
