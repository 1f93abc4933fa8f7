"""Training data: generated arithmetic, local files, column checks, prompt-length filtering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrs.config import DatasetConfig, DatasetSource
from openrs.data import DatasetError, drop_long_prompts, generate_arithmetic, load_problems, make_prompt


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_arithmetic_is_deterministic_and_correct():
    a = generate_arithmetic(50, 20, ["+", "-", "*"], seed=3)
    assert a == generate_arithmetic(50, 20, ["+", "-", "*"], seed=3)
    assert a != generate_arithmetic(50, 20, ["+", "-", "*"], seed=4)
    for row in a:
        expr = row["problem"].removeprefix("What is $").removesuffix("$?").replace("\\times", "*")
        assert eval(expr) == int(row["answer"])  # noqa: S307 - our own generated expression
        assert f"\\boxed{{{row['answer']}}}" in row["solution"]


def test_arithmetic_rejects_unknown_operator():
    with pytest.raises(DatasetError, match="operators"):
        generate_arithmetic(5, 9, ["/"], seed=0)


def test_arithmetic_rows_have_the_real_datasets_shape():
    cfg = DatasetConfig(source=DatasetSource.arithmetic, system_prompt="SYS")
    ds = load_problems(cfg)
    row = ds[0]
    assert row["prompt"] == [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": row["problem"]},
    ]
    assert "\\boxed{" in row["solution"]
    assert len(ds) == cfg.arithmetic.num_problems


def test_local_jsonl_loads_with_custom_columns(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": "1+1?", "gold": "$2$"}, {"question": "2+2?", "gold": "4"}])
    cfg = DatasetConfig(source=DatasetSource.local, path=str(path), problem_column="question", solution_column="gold")
    ds = load_problems(cfg)
    assert ds["solution"] == ["$2$", "4"]
    assert ds[1]["prompt"] == [{"role": "user", "content": "2+2?"}]


def test_local_parquet_loads(tmp_path):
    import datasets

    path = tmp_path / "p.parquet"
    datasets.Dataset.from_list([{"problem": "x?", "solution": "1"}]).to_parquet(str(path))
    ds = load_problems(DatasetConfig(source=DatasetSource.local, path=str(path)))
    assert ds[0]["solution"] == "1"


def test_missing_problem_column_names_column_and_file(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "1+1?", "solution": "2"}])
    with pytest.raises(DatasetError) as info:
        load_problems(DatasetConfig(source=DatasetSource.local, path=str(path)))
    assert "'problem'" in str(info.value) and str(path) in str(info.value)


def test_empty_problem_row_is_reported(tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [{"problem": "ok", "solution": "1"}, {"problem": " ", "solution": "2"}])
    with pytest.raises(DatasetError, match="row 1"):
        load_problems(DatasetConfig(source=DatasetSource.local, path=str(path)))


def test_bad_local_paths(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_problems(DatasetConfig(source=DatasetSource.local, path=str(tmp_path / "nope.jsonl")))
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    with pytest.raises(DatasetError, match="suffix"):
        load_problems(DatasetConfig(source=DatasetSource.local, path=str(csv)))


def test_hub_source_asks_datasets_for_the_configured_id(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return datasets.Dataset.from_list([{"problem": "p", "solution": "s"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_problems(DatasetConfig(source=DatasetSource.hub, path="knoveleng/open-rs", split="train"))
    assert calls == [("knoveleng/open-rs", None, "train")]
    assert ds[0]["solution"] == "s"


def test_long_prompts_are_dropped():
    from openrs.config import TinyModelConfig
    from openrs.models.tiny import build_tiny_tokenizer

    del TinyModelConfig
    tokenizer = build_tiny_tokenizer(512)
    import datasets

    ds = datasets.Dataset.from_list(
        [
            {"prompt": make_prompt("What is 1 + 1?", None), "solution": "2"},
            {"prompt": make_prompt("What is 1 + 1? " * 80, None), "solution": "2"},
        ]
    )
    kept = drop_long_prompts(ds, tokenizer, max_prompt_length=64)
    assert len(kept) == 1 and kept[0]["prompt"][0]["content"] == "What is 1 + 1?"
    with pytest.raises(DatasetError, match="max_prompt_length"):
        drop_long_prompts(ds, tokenizer, max_prompt_length=2)


def test_real_training_sample_loads(shared_benchmarks):
    """The 500 real MATH problems of ../shared load through the local path with their own columns."""
    path = shared_benchmarks / "train_sample.jsonl"
    ds = load_problems(DatasetConfig(source=DatasetSource.local, path=str(path), solution_column="solution"))
    assert len(ds) == 500
    assert all("\\boxed" in s or s for s in ds["solution"])
