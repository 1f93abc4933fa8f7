"""The pieces behind the TensorBoard view, without training: observer, HParams, figures, cost."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from openrs import figures, hparams, tb
from openrs.config import compose, to_run_config
from openrs.tracking import summarize


class FakeTerm:
    """A reward term with the shape TRL sees: named, returns one score a completion."""

    __name__ = "format"

    def __call__(self, prompts=None, completions=None, **kwargs):
        return [1.0 if "</think>" in c else 0.0 for c in completions]


def test_observed_reward_keeps_name_and_values_and_logs_diagnostics():
    logged: dict[str, float] = {}
    observer = tb.DiagnosticsObserver(max_len=4, drift_min_letters=2)
    funcs = observer.wrap([FakeTerm(), FakeTerm()])
    assert (
        len(funcs) == 2
        and isinstance(funcs[1], tb.ObservedReward)
        and not isinstance(funcs[0], tb.ObservedReward)
    )
    assert funcs[1].__name__ == "format"
    completions = ["a\n</think>\n\\boxed{1}", "中文中文", "x", "y"]
    scores = funcs[1](
        prompts=["p"] * 4,
        completions=completions,
        completion_ids=[[1] * 4, [1] * 2, [1] * 4, [1]],
        log_metric=logged.__setitem__,
    )
    assert scores == FakeTerm()(completions=completions)
    assert logged == {
        "diagnostics/lang_drift_share": 0.25,
        "diagnostics/think_closed_share": 0.25,
        "diagnostics/boxed_share": 0.25,
        "diagnostics/clipped_share": 0.5,
    }
    assert observer.take_generated_tokens() == 11 and observer.take_generated_tokens() == 0


def test_accuracy_comes_from_the_verifier_terms_verdicts():
    class VerifiedTerm(FakeTerm):
        needs_verifier = True

        def verdicts(self, texts, solution, kwargs):
            return [
                SimpleNamespace(correct=t.endswith(s), gold_parsed=s != "?")
                for t, s in zip(texts, solution, strict=True)
            ]

    logged: dict[str, float] = {}
    funcs = tb.DiagnosticsObserver(max_len=None).wrap([VerifiedTerm(), FakeTerm()])
    funcs[-1](completions=["= 7", "= 8", "= 7"], solution=["7", "7", "?"], log_metric=logged.__setitem__)
    assert logged["diagnostics/accuracy"] == 0.5  # the row with an unparseable gold does not count


@pytest.mark.parametrize(
    ("override", "parsed"),
    [
        ("lr=1e-3", ("lr", 0.001)),
        ("grpo.max_steps=30", ("grpo.max_steps", 30)),
        ("reward=cosine", ("reward", "cosine")),
        ("+extra.flag=true", ("extra.flag", True)),
        ("hydra.sweep.dir=/tmp/x", None),
        ("~grpo.beta", None),
    ],
)
def test_parse_override(override, parsed):
    assert hparams.parse_override(override) == parsed


def test_run_hparams_hold_axes_and_overrides(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- lr=1e-3\n- grpo.max_steps=30\n- reward=cosine\n")
    (tmp_path / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n      reward: cosine\n"
    )
    cfg = to_run_config(compose(["experiment=smoke", "lr=1e-3", "grpo.max_steps=30"]))
    hp = hparams.run_hparams(cfg, tmp_path)
    assert hp == {
        "experiment": "smoke", "lr": 0.001, "max_len": 24, "seed": 42, "reward": "cosine", "grpo.max_steps": 30,
    }  # fmt: skip


def test_hparams_session_round_trips_through_tensorboard(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    writer.file_writer.add_summary(hparams.session_start({"lr": 0.003, "reward": "cosine", "bf16": False}), 0)
    writer.file_writer.add_summary(hparams.session_end(), 5)
    writer.close()
    session = hparams.read_session(tmp_path)
    assert session == {
        "hparams": {"lr": 0.003, "reward": "cosine", "bf16": False},
        "status": "STATUS_SUCCESS",
    }


def test_headline_final_and_best_are_trailing_means():
    series = {
        "reward": [(s, float(v)) for s, v in enumerate([0, 0, 3, 3, 0, 0], start=1)],
        "diagnostics/accuracy": [(1, 0.0), (2, 1.0)],
        "completions/clipped_ratio": [(1, 0.5)],
        "cost/usd": [(1, 0.1), (2, 0.2)],
    }
    h = figures.headline(series, window=2)
    assert h["steps"] == 6 and h["reward_final"] == 0.0
    assert h["reward_best"] == 3.0 and h["reward_best_step"] == 4
    assert h["accuracy_final"] == 0.5 and h["clipped_final"] == 0.5 and h["cost_usd"] == 0.2
    assert h["length_final"] is None and h["gpu_hours"] is None


def test_summary_holds_the_headline_figures():
    history = [{"reward": float(i), "completions/mean_length": 10.0, "step": i} for i in range(1, 21)]
    history.append({"train_runtime": 3.0, "step": 20})
    summary = summarize(history)
    assert summary["figures"]["reward_final"] == pytest.approx(sum(range(11, 21)) / 10)
    assert summary["figures"]["steps"] == 20 and summary["figures"]["length_final"] == 10.0


class FakeTrainer:
    def __init__(self) -> None:
        from collections import defaultdict

        self._metrics = {"train": defaultdict(list)}
        self.callback_handler = SimpleNamespace(callbacks=[])


def test_cost_accumulates_gpu_hours_at_the_preset_price_and_continues_after_resume(
    tmp_path: Path, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(tb.time, "time", lambda: clock[0])
    cb = tb.RunMonitorCallback(None, {"lr": 1.0}, tmp_path / "tb", num_gpus=4, price_per_gpu_hour=2.0)
    trainer = FakeTrainer()
    cb.bind(trainer)
    args = SimpleNamespace(world_size=1)
    resumed = SimpleNamespace(log_history=[{"cost/gpu_hours": 1.5, "step": 10}], is_world_process_zero=False)
    cb.on_train_begin(args, resumed, None)
    cb.on_step_begin(args, resumed, None)
    clock[0] += 1800  # half an hour on 4 GPUs
    cb.on_step_end(args, resumed, None)
    metrics = trainer._metrics["train"]
    assert metrics["cost/gpu_hours"] == [pytest.approx(3.5)] and metrics["cost/usd"] == [pytest.approx(7.0)]
    assert len(metrics["perf/step_seconds"]) == 1 and not math.isnan(metrics["perf/step_seconds"][0])


def test_hparams_record_the_learning_rate_that_trains(tmp_path):
    """optimizer.lr=5e-6 trains at 5e-6; the HParams session must say 5e-6, not the lr alias's 1e-6."""
    from torch.utils.tensorboard import SummaryWriter

    from openrs.config import compose, to_run_config

    cfg = to_run_config(compose(["experiment=rs2", "optimizer.lr=5e-6", "grpo.max_completion_length=1024"]))
    assert cfg.lr == 1e-6 and cfg.optimizer.lr == 5e-6  # the alias stays behind
    writer = SummaryWriter(log_dir=str(tmp_path))
    writer.file_writer.add_summary(hparams.session_start(hparams.run_hparams(cfg, tmp_path)), 0)
    writer.close()
    session = hparams.read_session(tmp_path)["hparams"]
    assert session["lr"] == pytest.approx(5e-6) and session["max_len"] == 1024
