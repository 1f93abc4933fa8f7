"""``python -m openrs.evaluate`` end to end: a model directory, a training run's checkpoints, hub revisions.

Everything runs on the tiny model with the four-problem fixture standing in for the paper's benchmarks
(``benchmark_paths.<name>=``), a couple of problems and a few new tokens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openrs.evaluate.config import checkpoint_selection, compose, to_eval_config, validate

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "eval" / "tiny_math.jsonl"
# Two of the paper's benchmarks, one per gold rule (expression and LaTeX), both read from the fixture.
QUICK = [
    "benchmarks=[aime24,math500]",
    f"benchmark_paths.aime24={FIXTURE}",
    f"benchmark_paths.math500={FIXTURE}",
    "limit=2",
    "max_new_tokens=6",
    "n_resamples=200",
]


@pytest.fixture(scope="module")
def tiny_dir(openrs_cache: Path) -> Path:
    from openrs.config import TinyModelConfig
    from openrs.models.tiny import tiny_model_dir

    return tiny_model_dir(TinyModelConfig())


def evaluate_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openrs.evaluate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- configuration -------------------------------------------------------------------------------


def test_defaults_are_the_seed_protocol() -> None:
    cfg = to_eval_config(compose(["model=knoveleng/Open-RS3"]))
    assert [b.value for b in cfg.benchmarks] == ["aime24", "math500", "amc23", "minerva", "olympiadbench"]
    assert (cfg.temperature, cfg.top_p, cfg.max_new_tokens, cfg.n_samples) == (0.6, 0.95, 32768, 1)
    assert cfg.vllm.max_model_len == 32768 and cfg.vllm.gpu_memory_utilization == 0.8
    validate(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=m", "run=r"], "exactly one of"),
        ([], "exactly one of"),
        (["model=m", "n_samples=2", "pass_k=[4]"], "pass_k"),
        (["model=m", "benchmark_paths.aime24=/nonexistent.jsonl"], "benchmark_paths.aime24"),
        (["run=r", "checkpoints=best"], "checkpoints="),
        (["run=r", "revision=abc"], "revision="),
        # vLLM 0.31's LLM() refuses data parallelism in one process: refused here, before any engine starts.
        (["model=m", "vllm.data_parallel_size=2"], r"vllm.data_parallel_size=2: must be 1.*one process per replica"),
    ],
)
def test_config_checks(overrides: list[str], message: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        validate(to_eval_config(compose(overrides)))


def test_checkpoint_selection_forms() -> None:
    assert checkpoint_selection("all") == "all" and checkpoint_selection("final") == "final"
    assert checkpoint_selection(50) == [50] and checkpoint_selection("50") == [50]
    assert checkpoint_selection([100, 50, 100]) == [50, 100]
    assert checkpoint_selection(compose(["run=r", "checkpoints=[20,10]"]).checkpoints) == [10, 20]
    with pytest.raises(ValueError):
        checkpoint_selection([10, "x"])


@pytest.mark.parametrize(
    ("override", "named"),
    [("benchmarks=[aime24,nope]", "nope"), ("n_sample=8", "n_sample"), ("backend=jax", "jax")],
)
def test_bad_values_exit_nonzero_naming_them(override: str, named: str) -> None:
    result = evaluate_cli("model=m", override)
    assert result.returncode != 0
    assert named in result.stderr
    if named == "nope":  # the valid names are listed
        assert "aime24, math500, amc23, minerva, olympiadbench" in result.stderr


# --- a model directory ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_on_a_model_directory(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate_cli(f"model={tiny_dir}", *QUICK, "n_samples=2", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = read_jsonl(out / "aime24.jsonl")
    assert len(lines) == 4 and [x["sample"] for x in lines] == [0, 1, 0, 1]
    assert lines[0]["prompt"].endswith("<think>\n") and "Solve the following math problem" in lines[0]["prompt"]
    assert {"completion", "extracted", "correct", "gold"} <= set(lines[0])
    results = json.loads((out / "results.json").read_text())
    assert results["label"] == str(tiny_dir) and results["backend"] == "transformers"
    assert results["config"]["n_samples"] == 2 and results["settings"]["sampling"]["max_new_tokens"] == 6
    assert set(results["benchmarks"]) == {"aime24", "math500"}
    assert results["benchmarks"]["aime24"]["pass@1"] == pytest.approx(sum(x["correct"] for x in lines) / 4)
    assert "pass@2" in results["average"]
    assert (out / ".hydra" / "config.yaml").is_file()
    # The per-model table, then the paper's layout.
    assert "95% CI" in result.stdout and "pass@2" in result.stdout and "problems x samples" in result.stdout
    paper = result.stdout.split("models x benchmarks")[1].splitlines()
    assert paper[1].split() == ["model", "AIME24", "MATH-500", "Average"]
    assert paper[3].startswith(str(tiny_dir))


# --- a training run's checkpoints ----------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A 20-step smoke run that saves complete checkpoints at steps 10 and 20."""
    run_dir = tmp_path_factory.mktemp("evalrun") / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "experiment=smoke",
            f"hydra.run.dir={run_dir}",
            "grpo.max_steps=20",
            "grpo.save_steps=10",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return run_dir


@pytest.mark.slow
def test_checkpoint_series(smoke_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = evaluate_cli(f"run={smoke_run}", "checkpoints=all", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    for step in (10, 20):
        out = smoke_run / "eval" / f"checkpoint-{step}"
        results = json.loads((out / "results.json").read_text())
        assert results["step"] == step and results["checkpoint"] == f"checkpoint-{step}"
        assert results["model"] == str(smoke_run / "checkpoints" / f"checkpoint-{step}")
        assert results["run"] == str(smoke_run)
        assert len(read_jsonl(out / "math500.jsonl")) == 2
    assert list((smoke_run / "eval" / "logs").glob("*/.hydra/config.yaml"))  # Hydra's files stay in the run

    acc = EventAccumulator(str(smoke_run / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/reward" in tags  # the curves sit beside training's
    for name in ("aime24", "math500", "average"):
        events = acc.Scalars(f"eval/{name}/pass@1")
        assert [e.step for e in events] == [10, 20]
    written = json.loads((smoke_run / "eval" / "checkpoint-20" / "results.json").read_text())
    assert acc.Scalars("eval/math500/pass@1")[1].value == pytest.approx(written["benchmarks"]["math500"]["pass@1"])

    table = result.stdout.split("checkpoints x benchmarks")[1].splitlines()
    assert table[1].split() == ["checkpoint", "AIME24", "MATH-500", "Average"]
    assert [row.split()[0] for row in table[3:5]] == ["checkpoint-10", "checkpoint-20"]


@pytest.mark.slow
def test_checkpoint_without_tokenizer_uses_the_runs_model(smoke_run: Path, tiny_dir: Path, tmp_path: Path) -> None:
    """A run whose checkpoint holds weights only and has no final/: the tokenizer comes from .hydra's model."""
    from openrs.evaluate.pipeline import run_evaluation

    run = tmp_path / "bare"
    ckpt = run / "checkpoints" / "checkpoint-10"
    ckpt.mkdir(parents=True)
    for name in ("config.json", "generation_config.json", "model.safetensors", "COMPLETE"):
        shutil.copy(smoke_run / "checkpoints" / "checkpoint-10" / name, ckpt / name)
    shutil.copytree(smoke_run / ".hydra", run / ".hydra")
    (run / "tb").mkdir()

    cfg = to_eval_config(compose([f"run={run}", "checkpoints=latest", "score_timeout=null", *QUICK]))
    [path] = run_evaluation(cfg, tmp_path / "hydra")
    results = json.loads(path.read_text())
    assert path == ckpt.parent.parent / "eval" / "checkpoint-10" / "results.json"
    assert results["tokenizer"] == str(tiny_dir) and results["model"] == str(ckpt)

    with pytest.raises(FileNotFoundError, match=r"available: \[10\]"):
        run_evaluation(to_eval_config(compose([f"run={run}", "checkpoints=[30]", *QUICK])), tmp_path)


# --- hub revisions -------------------------------------------------------------------------------


@pytest.mark.slow
def test_multirun_passes_revisions_to_from_pretrained(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The seed's checkpoint series: one hub repo, one revision per checkpoint (hub loading is faked)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import openrs.evaluate.__main__ as entry

    calls: list[tuple[str, str, str | None]] = []

    def redirect(kind: str, original):
        def load(name, *args, **kwargs):
            calls.append((kind, name, kwargs.pop("revision", None)))
            return original(str(tiny_dir), *args, **kwargs)

        return load

    monkeypatch.setattr(
        AutoModelForCausalLM, "from_pretrained", redirect("model", AutoModelForCausalLM.from_pretrained)
    )
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", redirect("tokenizer", AutoTokenizer.from_pretrained))
    sweep = tmp_path / "sweep"
    argv = [
        "openrs.evaluate",
        "--multirun",
        "model=knoveleng/OpenRS-GRPO",
        "revision=0439c48c3686728b5cc5a20820d601d2908c6ee1,21e477217641fec6cd81f9caa220f5cccfb6a874",
        *QUICK,
        "limit=1",
        "score_timeout=null",
        f"hydra.sweep.dir={sweep}",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    entry.main()

    revisions = ["0439c48c3686728b5cc5a20820d601d2908c6ee1", "21e477217641fec6cd81f9caa220f5cccfb6a874"]
    assert calls == [(kind, "knoveleng/OpenRS-GRPO", rev) for rev in revisions for kind in ("model", "tokenizer")]
    found = {json.loads(p.read_text())["revision"]: json.loads(p.read_text()) for p in sweep.rglob("results.json")}
    assert sorted(found) == revisions
    assert found[revisions[0]]["label"] == "knoveleng/OpenRS-GRPO@0439c48c"
    table = capsys.readouterr().out.split("all jobs")[1]
    assert "knoveleng/OpenRS-GRPO@0439c48c" in table and "knoveleng/OpenRS-GRPO@21e47721" in table
