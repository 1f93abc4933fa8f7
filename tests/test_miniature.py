"""Open RS in miniature, end to end on CPU: the default command warm-starts a small model, GRPO with a correctness
reward makes it solve more held-out problems by more than the noise, and evaluation sees it too.

The same path as ``make demo``, shortened to 50 GRPO steps (the warm start is the demo's, built once a session).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory, mini_warm_start) -> tuple[Path, subprocess.CompletedProcess]:
    run_dir = tmp_path_factory.mktemp("mini") / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "grpo.max_steps=50",
            "grpo.save_steps=25",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, result


def test_grpo_lifts_held_out_accuracy_beyond_its_noise(mini_run):
    run_dir, result = mini_run
    record = json.loads((run_dir / "eval" / "after_training.json").read_text())
    paired = record["paired"]
    assert record["benchmark"] == "mini_heldout" and paired["n_problems"] == 200
    assert 0.1 <= record["start"]["accuracy"] <= 0.6, "the warm start should have partial skill"
    assert paired["difference"] > 0 and paired["ci_low"] > 0 and paired["p_value"] < 0.01, paired
    assert record["final"]["accuracy"] == pytest.approx(record["start"]["accuracy"] + paired["difference"])
    # The demo's last line is that comparison.
    last = result.stdout.strip().splitlines()[-1]
    assert last == record["sentence"] and last.startswith("held-out accuracy ") and "95% CI" in last


def test_start_and_checkpoints_load_with_plain_transformers(mini_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, _ = mini_run
    record = json.loads((run_dir / "eval" / "after_training.json").read_text())
    for path in (record["start"]["model"], run_dir / "final", run_dir / "checkpoints" / "checkpoint-25"):
        AutoModelForCausalLM.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        assert tokenizer.convert_ids_to_tokens(tokenizer.encode("\\boxed{", add_special_tokens=False)) == ["\\boxed{"]


def test_evaluating_the_run_draws_its_held_out_curve(mini_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = mini_run
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.evaluate",
            f"run={run_dir}",
            "checkpoints=all",
            "benchmarks=[mini_heldout]",
            "temperature=0",
            "max_new_tokens=32",
            "limit=50",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    curve = {e.step: e.value for e in acc.Scalars("eval/mini_heldout/pass@1")}
    assert sorted(curve) == [25, 50], curve
    assert all(0.0 <= v <= 1.0 for v in curve.values())


def test_evaluate_with_a_baseline_prints_and_records_the_paired_difference(mini_run, tmp_path):
    run_dir, _ = mini_run
    start = json.loads((run_dir / "eval" / "after_training.json").read_text())["start"]["model"]
    out = tmp_path / "eval"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.evaluate",
            f"model={run_dir / 'final'}",
            f"baseline={start}",
            "benchmarks=[mini_heldout]",
            "temperature=0",
            "max_new_tokens=32",
            "limit=200",
            f"output_dir={out}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "results.json").read_text())
    diff = record["vs_baseline"]["mini_heldout"]
    after = json.loads((run_dir / "eval" / "after_training.json").read_text())["paired"]
    # The CLI scores with the evaluation rule, eval_after with the reward term: both see the same lift.
    assert diff["difference"] > 0 and diff["ci_low"] > 0 and diff["significant"]
    assert abs(diff["difference"] - after["difference"]) < 0.05
    assert "vs baseline" in result.stdout and "(significant)" in result.stdout
    env = record["environment"]
    assert env["packages"]["torch"] and env["n_samples"] == {"mini_heldout": 1} and env["seed"] == 0
    assert (out / "baseline" / "results.json").is_file()
