"""openrs.compare on event files written here: finding runs, labels, table, CSV, PNG, runs still going."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from openrs import compare


def fake_run(run_dir: Path, overrides: list[str], rewards: list[float], done: bool = True) -> Path:
    """A run dir as openrs.train leaves it, with TRL-named scalars under train/."""
    from torch.utils.tensorboard import SummaryWriter

    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    writer = SummaryWriter(log_dir=str(run_dir / "tb"))
    for step, r in enumerate(rewards, start=1):
        writer.add_scalar("train/reward", r, step)
        writer.add_scalar("train/completions/mean_length", 30.0 - step, step)
        writer.add_scalar("train/completions/clipped_ratio", 0.5, step)
        writer.add_scalar("train/diagnostics/accuracy", r / 2, step)
        writer.add_scalar("train/cost/usd", 0.01 * step, step)
    writer.close()
    if done:
        (run_dir / "summary.json").write_text("{}")
    return run_dir


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "sweep"
    fake_run(root / "lr=0.001", ["experiment=smoke", "lr=0.001", "grpo.max_steps=12"], [0.1 * i for i in range(12)])
    fake_run(root / "lr=0.003", ["experiment=smoke", "lr=0.003", "grpo.max_steps=12"], [1.0] * 5, done=False)
    return root


def test_compare_table_csv_and_png(sweep, tmp_path, capsys):
    rows, csv_path, png_path = compare.compare([sweep], compare.CompareConfig(out=str(tmp_path / "out"), window=4))
    out = capsys.readouterr().out
    header, first, second = out.splitlines()[:3]
    assert "reward" in header and "cost $" in header
    # Runs are named by the override that tells them apart, not the shared ones.
    assert first.startswith("lr=0.001 ") and second.startswith("lr=0.003 ")
    assert " done " in first and " running " in second  # the second has no summary.json yet
    by_run = {r["run"]: r for r in rows}
    assert by_run["lr=0.001"]["steps"] == 12 and by_run["lr=0.003"]["steps"] == 5
    assert by_run["lr=0.001"]["reward_final"] == pytest.approx((0.8 + 0.9 + 1.0 + 1.1) / 4)
    assert by_run["lr=0.003"]["accuracy_final"] == pytest.approx(0.5)
    assert by_run["lr=0.003"]["clipped_final"] == pytest.approx(0.5)
    assert by_run["lr=0.001"]["cost_usd"] == pytest.approx(0.12)
    with open(csv_path) as fh:
        assert [r["run"] for r in csv.DictReader(fh)] == ["lr=0.001", "lr=0.003"]
    assert_png_not_blank(png_path)


def assert_png_not_blank(path: Path) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.05, "the plot is blank"


def test_find_runs_accepts_run_dirs_tb_dirs_and_parents(sweep):
    runs = compare.find_runs([sweep])
    assert [p.name for p in runs] == ["lr=0.001", "lr=0.003"]
    assert compare.find_runs([sweep / "lr=0.001"]) == runs[:1]
    assert compare.find_runs([sweep / "lr=0.001" / "tb"]) == runs[:1]
    assert compare.find_runs([sweep.parent / "nothing-here"]) == []


def test_cli_options_and_sweep_dirs_with_equals_signs(sweep, tmp_path):
    dirs, cfg = compare.parse_args([str(sweep / "lr=0.001"), "metrics=[train/reward,accuracy]", "smooth=0.9"])
    assert dirs == [sweep / "lr=0.001"]
    assert cfg.metrics == ["train/reward", "accuracy"] and cfg.smooth == 0.9
    with pytest.raises(Exception, match="smooth"):  # typed options: a wrong value names its key
        compare.parse_args(["smooth=red"])


def test_main_prints_both_runs_and_fails_cleanly_without_runs(sweep, tmp_path, capsys):
    assert compare.main([str(sweep), f"out={tmp_path}", "metrics=[reward]"]) == 0
    out = capsys.readouterr().out
    assert "lr=0.001" in out and "lr=0.003" in out and (tmp_path / "compare.png").exists()
    assert compare.main([str(tmp_path / "empty")]) == 1
    assert "no runs" in capsys.readouterr().err


def test_unknown_metric_is_an_error(sweep, tmp_path):
    with pytest.raises(ValueError, match="none of metrics"):
        compare.compare([sweep], compare.CompareConfig(out=str(tmp_path), metrics=["no/such/tag"]))


def test_ema_matches_tensorboard_smoothing():
    assert compare.ema([1.0, 1.0, 1.0], 0.6) == pytest.approx([1.0, 1.0, 1.0])  # debiased: no ramp from 0
    smoothed = compare.ema([0.0, 10.0], 0.5)
    assert smoothed[1] == pytest.approx((0.5 * 0 * 0.5 + 0.5 * 10) / (1 - 0.25))
    assert math.isnan(compare.ema([math.nan], 0.6)[0])


def with_eval(run_dir: Path, start: list[int], final: list[int]) -> None:
    """The run's eval_after record: per-problem 0/1 of the starting and the final model."""
    import json

    (run_dir / "eval").mkdir(parents=True, exist_ok=True)
    (run_dir / "eval" / "after_training.json").write_text(
        json.dumps(
            {
                "benchmark": "mini_heldout",
                "start": {"outcomes": [[bool(x)] for x in start]},
                "final": {"outcomes": [[bool(x)] for x in final]},
            }
        )
    )


def test_compare_tests_arms_against_the_control_and_reports_seed_spread(tmp_path, capsys):
    """Arms = runs differing only by seed. accuracy beats the control by a known 40 of 100 problems; a third arm
    equal to the control is reported as not significant."""
    import json

    root = tmp_path / "ablation"
    start = [1] * 30 + [0] * 70
    for seed in (1, 2, 3):
        for reward, final in (
            ("format", [1] * 20 + [0] * 80),
            ("accuracy", [1] * 60 + [0] * 40),
            ("cosine", [1] * 20 + [0] * 80),
        ):
            run = fake_run(
                root / f"reward={reward},seed={seed}",
                ["experiment=mini", f"reward={reward}", f"seed={seed}"],
                [0.5] * 3,
            )
            with_eval(run, start, final)
    compare.compare([root], compare.CompareConfig(out=str(tmp_path / "out"), control="reward=format"))
    out = capsys.readouterr().out
    rows = {r["arm"]: r for r in json.loads((tmp_path / "out" / "significance.json").read_text())}
    assert set(rows) == {"reward=format", "reward=accuracy", "reward=cosine"} and rows["reward=accuracy"]["seeds"] == 3
    acc = rows["reward=accuracy"]
    assert acc["accuracy"] == pytest.approx(0.6) and acc["vs_control"]["difference"] == pytest.approx(0.4)
    assert acc["vs_control"]["ci_low"] > 0.25 and acc["vs_control"]["significant"]
    assert acc["vs_start"]["difference"] == pytest.approx(0.3)
    assert (
        rows["reward=cosine"]["vs_control"]["difference"] == 0
        and not rows["reward=cosine"]["vs_control"]["significant"]
    )
    assert acc["seed_std"] == 0 and acc["between_seed_var"] == 0  # identical seeds: no spread
    assert "vs reward=format +40.0" in out and "(not significant)" in out


def test_unknown_control_names_the_arms(tmp_path):
    run = fake_run(tmp_path / "r" / "seed=1", ["seed=1"], [0.1])
    with_eval(run, [0, 1], [1, 1])
    with pytest.raises(ValueError, match="control='nope' must name exactly one arm"):
        compare.compare([tmp_path / "r"], compare.CompareConfig(out=str(tmp_path / "o"), control="nope"))


def test_key_value_control_is_matched_at_each_arms_other_overrides(tmp_path):
    """reward x lr: each reward is tested against reward=format at its own lr, not against one control for all."""
    import json

    root = tmp_path / "sweep"
    finals = {
        ("format", "1e-4"): 20,
        ("format", "5e-5"): 40,
        ("accuracy", "1e-4"): 60,
        ("accuracy", "5e-5"): 50,
    }
    for (reward, lr), right in finals.items():
        for seed in (1, 2):
            run = fake_run(
                root / f"lr={lr},reward={reward},seed={seed}",
                [f"lr={lr}", f"reward={reward}", f"seed={seed}"],
                [0.5] * 3,
            )
            with_eval(run, [0] * 100, [1] * right + [0] * (100 - right))
    compare.compare([root], compare.CompareConfig(out=str(tmp_path / "out"), control="reward=format"))
    rows = {r["arm"]: r for r in json.loads((tmp_path / "out" / "significance.json").read_text())}
    assert rows["lr=1e-4,reward=accuracy"]["vs_control"]["control"] == "lr=1e-4,reward=format"
    assert rows["lr=1e-4,reward=accuracy"]["vs_control"]["difference"] == pytest.approx(0.4)
    assert rows["lr=5e-5,reward=accuracy"]["vs_control"]["difference"] == pytest.approx(0.1)
    assert "vs_control" not in rows["lr=1e-4,reward=format"]  # a control is not tested against itself
