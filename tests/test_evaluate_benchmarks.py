"""Benchmark registry, local loading (jsonl/json/parquet), column errors and the seed's prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrs.evaluate.benchmarks import (
    BENCHMARKS,
    PAPER_BENCHMARKS,
    BenchmarkSpec,
    build_prompt,
    chat_messages,
    get_spec,
    load_benchmark,
)

TINY = Path(__file__).parent / "fixtures" / "eval" / "tiny_math.jsonl"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_registry_matches_the_seed_tasks() -> None:
    expected = {
        "aime24": ("HuggingFaceH4/aime_2024", "train", "problem", "answer", "expr", 30),
        "math500": ("HuggingFaceH4/MATH-500", "test", "problem", "solution", "latex", 500),
        "amc23": ("knoveleng/AMC-23", "train", "problem", "answer", "expr", 40),
        "minerva": ("knoveleng/Minerva-Math", "train", "problem", "solution", "latex", 272),
        "olympiadbench": ("knoveleng/OlympiadBench", "train", "question", "answer", "latex", 675),
    }
    got = {
        name: (s.hub_id, s.split, s.problem_columns[0], s.answer_columns[0], s.gold_kind, s.expected_rows)
        for name, s in BENCHMARKS.items()
        if name in PAPER_BENCHMARKS
    }
    assert got == expected
    assert PAPER_BENCHMARKS == tuple(expected)


def test_prompt_is_the_seed_user_turn() -> None:
    prompt = build_prompt("What is $1+1$?")
    assert prompt.startswith("Solve the following math problem efficiently and clearly.  The last line")
    assert "'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes)" in prompt
    assert prompt.endswith("Think step by step before answering.\n\nWhat is $1+1$?")
    assert chat_messages("x") == [{"role": "user", "content": build_prompt("x")}]


def test_load_local_jsonl_fixture() -> None:
    spec = BenchmarkSpec("tiny", None, "train", ("problem",), ("answer",), "expr", expected_rows=4)
    problems = load_benchmark(spec, TINY)
    assert [p.index for p in problems] == list(range(len(problems)))
    assert all(isinstance(p.gold, str) and p.problem for p in problems)
    assert load_benchmark(spec, TINY, limit=2) == problems[:2]


def test_column_fallback_and_ids(tmp_path: Path) -> None:
    # A local OlympiadBench copy names the problem column `problem`, the hub `question`.
    path = write_jsonl(tmp_path / "olympiad.jsonl", [{"problem": "p", "answer": 5, "id": 2817}])
    (problem,) = load_benchmark("olympiadbench", path)
    assert (problem.problem, problem.gold, problem.id) == ("p", "5", "2817")
    # math500 prefers the seed's `solution` column when both are present.
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "answer": "1", "solution": "so $\\boxed{1}$"}])
    assert load_benchmark("math500", path)[0].gold == "so $\\boxed{1}$"


def test_missing_column_names_column_and_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"problem": "p", "solution": "s"}])
    with pytest.raises(KeyError, match=r"bad\.jsonl: missing answer column 'answer'") as err:
        load_benchmark("aime24", path)
    assert "solution" in str(err.value)  # the columns that are there
    with pytest.raises(KeyError, match=r"missing problem column one of \['question', 'problem'\]"):
        load_benchmark("olympiadbench", write_jsonl(tmp_path / "o.jsonl", [{"text": "p", "answer": "1"}]))
    with pytest.raises(KeyError, match="row 1 has no value in column 'answer'"):
        load_benchmark("aime24", write_jsonl(tmp_path / "n.jsonl", [{"problem": "a", "answer": "1"}, {"problem": "b"}]))


def test_parquet_and_json(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"problem": "a", "answer": "1"}, {"problem": "b", "answer": "2"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    (tmp_path / "b.json").write_text(json.dumps(rows))
    for name in ("b.parquet", "b.json"):
        assert [p.gold for p in load_benchmark("amc23", tmp_path / name)] == ["1", "2"]
    with pytest.raises(ValueError, match="unsupported benchmark file type"):
        load_benchmark("amc23", write_jsonl(tmp_path / "b.csv", rows))
    with pytest.raises(FileNotFoundError):
        load_benchmark("amc23", tmp_path / "absent.jsonl")


def test_row_count_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_benchmark("amc23", write_jsonl(tmp_path / "a.jsonl", [{"problem": "a", "answer": "1"}]))
    assert "1 rows" in caplog.text and "has 40" in caplog.text


def test_get_spec() -> None:
    assert get_spec("aime24") is BENCHMARKS["aime24"]
    spec = BenchmarkSpec("x", None, "train", ("q",), ("a",), "latex")
    assert get_spec(spec) is spec
