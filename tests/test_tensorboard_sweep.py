"""A real 2-point smoke sweep (Hydra's basic launcher) seen through TensorBoard and openrs.compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrs.records import hparams

pytestmark = pytest.mark.slow
STEPS = 6
PER_STEP_TAGS = [  # TensorBoard tags every log step must carry (logging_steps=1)
    "train/reward",
    "train/reward_std",
    "train/rewards/format/mean",
    "train/rewards/cosine/std",
    "train/completions/mean_length",
    "train/completions/max_length",
    "train/completions/clipped_ratio",
    "train/learning_rate",
    "train/entropy",
    "train/diagnostics/lang_drift_share",
    "train/diagnostics/think_closed_share",
    "train/diagnostics/boxed_share",
    "train/completions/clipped_ratio",
    "train/diagnostics/accuracy",
    "train/step_time",
    "train/perf/generation_tokens_per_s",
    "train/cost/gpu_hours",
    "train/cost/usd",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, openrs_cache) -> Path:
    import subprocess
    import sys

    sweep_dir = tmp_path_factory.mktemp("sweep") / "smoke-lr"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openrs.train",
            "--multirun",
            "experiment=smoke",
            "lr=1e-3,3e-3",
            f"grpo.max_steps={STEPS}",
            "grpo.save_steps=1000",
            "diagnostics.samples_every=3",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return sweep_dir


def assert_png_not_blank(path: Path) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    assert pixels[..., :3].std() > 0.05, "the plot is blank"


def accumulator(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_every_run_has_each_scalar_once_per_step(sweep):
    dirs = sorted(p.parent for p in sweep.glob("*/tb"))
    assert len(dirs) == 2 and all("lr=0.00" in d.name for d in dirs)  # named by the sweep's overrides
    for run_dir in dirs:
        acc = accumulator(run_dir)
        for tag in PER_STEP_TAGS:
            assert [e.step for e in acc.Scalars(tag)] == list(range(1, STEPS + 1)), (run_dir.name, tag)
        assert acc.Scalars("train/cost/usd")[-1].value == 0.0  # the cpu preset costs nothing
        assert {e.step for e in acc.Tensors("samples/completions/text_summary")} == {1, 3, 6}
        text = acc.Tensors("samples/completions/text_summary")[0].tensor_proto.string_val[0].decode()
        assert "**prompt:**" in text and "format=" in text
        assert [e.step for e in acc.Scalars("hparams/reward_final")] == [STEPS]


def test_hparams_sessions_hold_the_swept_values(sweep):
    sessions = {}
    for tb_dir in sorted(sweep.glob("*/tb")):
        session = hparams.read_session(tb_dir)
        assert session["status"] == "STATUS_SUCCESS"
        sessions[session["hparams"]["lr"]] = session["hparams"]
    assert sorted(sessions) == pytest.approx([0.001, 0.003])
    for hp in sessions.values():
        assert hp["experiment"] == "smoke" and hp["reward"] == "cosine" and hp["max_len"] == 24
        assert hp["seed"] == 42 and hp["grpo.max_steps"] == STEPS and hp["diagnostics.samples_every"] == 3


def test_compare_prints_both_runs_and_matches_summary(sweep, run_module, tmp_path):
    result = run_module("openrs.compare", str(sweep), f"out={tmp_path}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[1].startswith("lr=0.001 ") and lines[2].startswith("lr=0.003 "), result.stdout
    assert all(" done " in line and f" {STEPS} " in line for line in lines[1:3])
    assert_png_not_blank(tmp_path / "compare.png")
    # summary.json holds the figures of the table row (TensorBoard stores float32, hence approx).
    import csv

    with open(tmp_path / "compare.csv") as fh:
        rows = {r["run"]: r for r in csv.DictReader(fh)}
    for run in sorted(p.parent for p in sweep.glob("*/tb")):
        figures = json.loads((run / "summary.json").read_text())["figures"]
        row = rows[next(k for k in rows if rows[k]["run_dir"] == str(run.resolve()))]
        for key in (
            "reward_final",
            "reward_best",
            "accuracy_final",
            "length_final",
            "clipped_final",
            "cost_usd",
        ):
            assert float(row[key]) == pytest.approx(figures[key], rel=1e-5, abs=1e-6), key
        assert int(row["steps"]) == figures["steps"] == STEPS
