"""The evaluation path end to end: backends, scoring, statistics, files and the printed table."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from openrs.evaluate.backends import (
    Backend,
    Messages,
    SamplingSettings,
    TransformersBackend,
    VllmBackend,
    VllmSettings,
)
from openrs.evaluate.benchmarks import BenchmarkSpec, load_benchmark
from openrs.evaluate.report import format_comparison, load_results
from openrs.evaluate.runner import EvalSettings, evaluate
from openrs.evaluate.stats import pass_at_k

TINY = Path(__file__).parent / "fixtures" / "eval" / "tiny_math.jsonl"
TINY_SPEC = BenchmarkSpec("tiny", None, "train", ("problem",), ("answer",), "expr", expected_rows=4)
TINY_LATEX = BenchmarkSpec("tiny_latex", None, "train", ("problem",), ("answer",), "latex", expected_rows=4)


def boxed(x: str) -> str:
    return f"Let me think.\n</think>\nTherefore, the final answer is: $\\boxed{{{x}}}$. I hope it is correct"


class ScriptedBackend(Backend):
    """Answers problem i with a fixed list of completions (known outcomes, no model)."""

    name = "scripted"

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script

    def render(self, messages: Messages) -> str:
        return "USER: " + messages[0]["content"]

    def generate(self, prompts: Sequence[str], sampling: SamplingSettings) -> list[list[str]]:
        out = []
        for prompt in prompts:
            problem = prompt.rsplit("\n\n", 1)[1]
            out.append(self.script[problem][: sampling.n])
        return out


def scripted_run(tmp_path: Path, score_timeout_s: float | None) -> tuple[Path, object]:
    problems = load_benchmark(TINY_SPEC, TINY)
    # 4 samples per problem with 4, 2, 1, 0 correct.
    answers = {0: ["5"] * 4, 1: ["24", "25", "24", "x"], 2: ["3", "4", "4", "4"], 3: ["8", "10", "", "1/2"]}
    script = {p.problem: [boxed(a) for a in answers[p.index]] for p in problems}
    settings = EvalSettings(SamplingSettings(n=4), n_resamples=2000, score_timeout_s=score_timeout_s)
    report = evaluate(
        ScriptedBackend(script),
        [(TINY_SPEC, problems), (TINY_LATEX, load_benchmark(TINY_LATEX, TINY))],
        settings,
        tmp_path / "eval",
        {"label": "scripted", "model": "none"},
    )
    return tmp_path / "eval", report


def test_scripted_backend_results(tmp_path: Path) -> None:
    eval_dir, report = scripted_run(tmp_path, score_timeout_s=None)
    lines = [json.loads(x) for x in (eval_dir / "tiny.jsonl").read_text().splitlines()]
    assert len(lines) == 16
    assert {k for k in lines[0]} >= {"prompt", "completion", "extracted", "correct", "gold", "id", "sample"}
    assert lines[0]["prompt"].startswith("USER: Solve the following math problem efficiently and clearly.")
    assert [sum(x["correct"] for x in lines if x["index"] == i) for i in range(4)] == [4, 2, 1, 0]
    assert lines[4]["extracted"] == "24" and lines[5]["extracted"] == "25"

    results = json.loads((eval_dir / "results.json").read_text())
    tiny = results["benchmarks"]["tiny"]
    assert tiny["pass@1"] == pytest.approx((1 + 0.5 + 0.25 + 0) / 4)
    assert tiny["pass@2"] == pytest.approx(sum(pass_at_k(4, c, 2) for c in (4, 2, 1, 0)) / 4)
    assert tiny["pass@4"] == pytest.approx(0.75)
    assert tiny["ci_low"] <= tiny["pass@1"] <= tiny["ci_high"]
    # The LaTeX rule reads these bare golds the same way here.
    assert results["benchmarks"]["tiny_latex"]["pass@1"] == pytest.approx(tiny["pass@1"])
    assert results["average"]["pass@1"] == pytest.approx(tiny["pass@1"])
    assert results["label"] == "scripted" and results["settings"]["sampling"]["n"] == 4

    table = report.table()
    assert "tiny" in table and "Average" in table and "43.8 ±" in table and "pass@4" in table
    comparison = format_comparison(load_results([eval_dir / "results.json"]))
    assert comparison.splitlines()[0].split()[:3] == ["model", "tiny", "tiny_latex"]
    assert "scripted" in comparison and "43.8" in comparison


@pytest.mark.slow
def test_pool_scoring_matches_inline(tmp_path: Path) -> None:
    _, inline = scripted_run(tmp_path / "a", score_timeout_s=None)
    _, pooled = scripted_run(tmp_path / "b", score_timeout_s=20.0)
    assert pooled.benchmarks["tiny"].outcomes == inline.benchmarks["tiny"].outcomes


@pytest.fixture(scope="module")
def tiny_backend() -> TransformersBackend:
    from openrs.config import DType, ModelConfig, TinyModelConfig

    cfg = ModelConfig(name_or_path="openrs/tiny-qwen2", dtype=DType.float32, tiny=TinyModelConfig())
    return TransformersBackend.from_model_config(cfg, batch_size=3)


@pytest.mark.slow
def test_tiny_model_end_to_end(tiny_backend: TransformersBackend, tmp_path: Path) -> None:
    problems = load_benchmark(TINY_SPEC, TINY)
    settings = EvalSettings(SamplingSettings(n=2, max_new_tokens=12, seed=3), n_resamples=500, score_timeout_s=None)
    report = evaluate(tiny_backend, [(TINY_SPEC, problems)], settings, tmp_path / "eval", {"model": "tiny"})
    lines = [json.loads(x) for x in (tmp_path / "eval" / "tiny.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and [x["sample"] for x in lines[:2]] == [0, 1]
    prompt = lines[0]["prompt"]
    assert "Solve the following math problem efficiently and clearly." in prompt
    assert prompt.endswith("<think>\n")  # the chat template's generation prompt
    assert all(isinstance(x["completion"], str) for x in lines)
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["backend"] == "transformers" and set(results["benchmarks"]) == {"tiny"}
    assert results["benchmarks"]["tiny"]["pass@1"] == pytest.approx(sum(x["correct"] for x in lines) / 8)
    assert "tiny" in report.table()
    # Same seed, same samples.
    again = tiny_backend.generate([lines[0]["prompt"]], SamplingSettings(n=2, max_new_tokens=12, seed=3))
    first = tiny_backend.generate([lines[0]["prompt"]], SamplingSettings(n=2, max_new_tokens=12, seed=3))
    assert again == first


@pytest.mark.slow
def test_transformers_batching_keeps_order(tiny_backend: TransformersBackend) -> None:
    prompts = [tiny_backend.render([{"role": "user", "content": q}]) for q in ("1+1", "What is 12 * 12 - 7?", "2")]
    greedy = SamplingSettings(n=1, temperature=0.0, max_new_tokens=6)
    batched = tiny_backend.generate(prompts, greedy)
    tiny_backend.batch_size = 1
    try:
        one_by_one = tiny_backend.generate(prompts, greedy)
    finally:
        tiny_backend.batch_size = 3
    assert batched == one_by_one and all(len(c) == 1 for c in batched)


def test_vllm_backend_maps_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    created: dict = {}

    class FakeTokenizer:
        def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
            assert add_special_tokens is False
            return {"input_ids": list(range(len(text.split())))}

        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            return "<bos>" + messages[0]["content"] + " <assistant>"

    class FakeLLM:
        def __init__(self, **kwargs):
            created.update(kwargs)

        def get_tokenizer(self):
            return FakeTokenizer()

        def generate(self, prompts, params):
            created["prompts"], created["params"] = prompts, params
            return [
                types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"c{i}{j}") for j in range(p.n)])
                for i, p in enumerate(params)
            ]

    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM
    fake.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)

    backend = VllmBackend(
        "org/model", revision="abc123", settings=VllmSettings(tensor_parallel_size=2, max_model_len=10)
    )
    assert created["tensor_parallel_size"] == 2 and "data_parallel_size" not in created
    assert created["revision"] == created["tokenizer_revision"] == "abc123" and created["max_model_len"] == 10
    prompt = backend.render([{"role": "user", "content": "a b c"}])
    out = backend.generate([prompt, "one two"], SamplingSettings(n=2, max_new_tokens=100, seed=5))
    assert out == [["c00", "c01"], ["c10", "c11"]]
    assert created["prompts"][1] == {"prompt_token_ids": [0, 1]}
    p0, p1 = created["params"]
    assert (p0.temperature, p0.top_p, p0.n) == (0.6, 0.95, 2)
    assert (p0.max_tokens, p1.max_tokens) == (10 - 4, 10 - 2)  # trimmed to the context
    assert (p0.seed, p1.seed) == (5, 6)


def test_vllm_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="openrs\\[gpu\\]"):
        VllmBackend("m")


def test_importing_evaluate_loads_no_generation_stack() -> None:
    code = (
        "import sys, openrs.evaluate, openrs.evaluate.backends, openrs.evaluate.runner, openrs.evaluate.report;"
        "print(sorted(m for m in ('torch', 'vllm', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sampling_settings_validation() -> None:
    assert SamplingSettings() == SamplingSettings(n=1, temperature=0.6, top_p=0.95, max_new_tokens=32768, seed=0)
    for bad in ({"n": 0}, {"temperature": -1}, {"top_p": 0}, {"max_new_tokens": 0}):
        with pytest.raises(ValueError):
            SamplingSettings(**bad)


def test_robust_protocol_samples_per_benchmark_and_keeps_the_seeds_figure(tmp_path: Path) -> None:
    """samples={tiny: 4}: tiny gets 4 samples a problem and records the first sample's pass@1 (the seed's single
    sample) beside the 4-sample figure; a benchmark not in the map keeps settings.sampling.n."""
    from openrs.evaluate.significance import outcomes_of_eval_dir

    problems = load_benchmark(TINY_SPEC, TINY)
    answers = {0: ["5"] * 4, 1: ["x", "24", "24", "24"], 2: ["4", "4", "4", "3"], 3: ["8", "10", "", "1/2"]}
    script = {p.problem: [boxed(a) for a in answers[p.index]] for p in problems}
    settings = EvalSettings(SamplingSettings(n=1), n_resamples=500, score_timeout_s=None)
    report = evaluate(
        ScriptedBackend(script),
        [(TINY_SPEC, problems), (TINY_LATEX, load_benchmark(TINY_LATEX, TINY))],
        settings,
        tmp_path / "eval",
        samples={"tiny": 4},
    )
    tiny = report.results["benchmarks"]["tiny"]
    assert tiny["n_samples"] == 4 and tiny["pass@1"] == pytest.approx((4 + 3 + 1 + 0) / 16)
    assert tiny["seed_protocol"]["pass@1"] == pytest.approx(1 / 4)  # first samples: 5 right; x, 4, 8 wrong
    assert report.results["benchmarks"]["tiny_latex"]["n_samples"] == 1
    assert [len(o) for o in outcomes_of_eval_dir(tmp_path / "eval")["tiny"]] == [4, 4, 4, 4]


def test_robust_sample_counts_come_from_the_config():
    from openrs.evaluate.config import compose, to_eval_config
    from openrs.evaluate.pipeline import robust_samples

    cfg = to_eval_config(compose(["model=m", "protocol=robust", "n_samples=8"]))
    assert robust_samples(cfg) == {"aime24": 32, "math500": 8, "amc23": 32, "minerva": 8, "olympiadbench": 8}
    assert robust_samples(to_eval_config(compose(["model=m"]))) is None
