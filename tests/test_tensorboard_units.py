"""The pieces behind the TensorBoard view, without training: observer, HParams, figures, cost."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from openrs.config import compose, to_run_config
from openrs.records import hparams, observe, run_summary, tb


class FakeTerm:
    """A reward term with the shape TRL sees: named, returns one score a completion."""

    __name__ = "format"

    def __call__(self, prompts=None, completions=None, **kwargs):
        return [1.0 if "</think>" in c else 0.0 for c in completions]


def test_observed_rewards_keep_names_and_values_and_log_a_round(monkeypatch):
    """Every term wrapped, same names and values; the last one logs the round's diagnostics, phases and cost."""
    clock = {"perf": 10.0, "wall": 1000.0}
    monkeypatch.setattr(observe.time, "perf_counter", lambda: clock["perf"])
    monkeypatch.setattr(observe.time, "time", lambda: clock["wall"])
    observer = observe.RewardObserver(max_len=4, drift_min_letters=2, num_gpus=4, price_per_gpu_hour=2.0)
    observer.on_train_begin(None, SimpleNamespace(log_history=[{"cost/gpu_hours": 1.5}]), None)
    funcs = observer.wrap([FakeTerm(), FakeTerm()])
    assert [type(f) for f in funcs] == [observe.ObservedReward] * 2 and funcs[1].__name__ == "format"
    observer.on_step_begin(None, None, None)
    clock["perf"] += 3.0  # generation
    clock["wall"] += 1800.0  # half an hour on 4 GPUs since the (resumed) start
    completions = ["a\n</think>\n\\boxed{1}", "中文中文", "x", "y"]
    logged: dict[str, float] = {}
    kwargs = {"completion_ids": [[1] * 4, [1] * 2, [1] * 4, [1]], "log_metric": logged.__setitem__}
    assert funcs[0](prompts=["p"] * 4, completions=completions, **kwargs) == FakeTerm()(completions=completions)
    clock["perf"] += 1.0  # the reward functions
    funcs[1](prompts=["p"] * 4, completions=completions, **kwargs)
    assert logged == {
        "diagnostics/lang_drift_share": 0.25,
        "diagnostics/think_closed_share": 0.25,
        "diagnostics/boxed_share": 0.25,
        observe.GENERATION_KEY: 3.0,
        observe.REWARD_KEY: 1.0,
        observe.TOKENS_KEY: 11 / 3.0,
        "cost/gpu_hours": pytest.approx(3.5),
        "cost/usd": pytest.approx(7.0),
    }
    assert observer.last_batch.rewards == {"format": [1.0, 0.0, 0.0, 0.0]}
    assert "format=1.000" in tb.samples_markdown(observer.last_batch, 2)


def test_accuracy_comes_from_the_verifier_terms_verdicts():
    class VerifiedTerm(FakeTerm):
        needs_verifier = True

        def verdicts(self, texts, solution, kwargs):
            return [
                SimpleNamespace(correct=t.endswith(s), gold_parsed=s != "?")
                for t, s in zip(texts, solution, strict=True)
            ]

    logged: dict[str, float] = {}
    funcs = observe.RewardObserver(max_len=None).wrap([VerifiedTerm(), FakeTerm()])
    kwargs = {"solution": ["7", "7", "?"], "log_metric": logged.__setitem__}
    for f in funcs:
        f(completions=["= 7", "= 8", "= 7"], **kwargs)
    assert logged["diagnostics/accuracy"] == 0.5  # the row with an unparseable gold does not count


def test_phase_seconds_split_the_step():
    rec = {"step_time": 10.0, observe.GENERATION_KEY: 3.0, observe.REWARD_KEY: 1.0}
    assert observe.phase_seconds(rec, rounds_per_step=2) == {
        "generation": 6.0,
        "reward": 2.0,
        "loss": 2.0,
        "step_time": 10.0,
    }
    assert observe.phase_seconds({"step_time": 10.0})["loss"] is None


def test_reward_models_are_left_alone():
    from torch import nn

    funcs = [nn.Linear(1, 1), lambda prompts=None, completions=None, **kw: [0.0]]
    assert observe.RewardObserver(max_len=None).wrap(funcs) == funcs


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
    (tmp_path / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      reward: cosine\n")
    cfg = to_run_config(compose(["experiment=smoke", "lr=1e-3", "grpo.max_steps=30"]))
    hp = hparams.run_hparams(cfg, tmp_path)
    assert hp == {
        "experiment": "smoke",
        "lr": 0.001,
        "max_len": 24,
        "seed": 42,
        "reward": "cosine",
        "grpo.max_steps": 30,
    }


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
    h = run_summary.headline(series, window=2)
    assert h["steps"] == 6 and h["reward_final"] == 0.0
    assert h["reward_best"] == 3.0 and h["reward_best_step"] == 4
    assert h["accuracy_final"] == 0.5 and h["clipped_final"] == 0.5 and h["cost_usd"] == 0.2
    assert h["length_final"] is None and h["gpu_hours"] is None


def test_summary_holds_the_headline_figures():
    history = [{"reward": float(i), "completions/mean_length": 10.0, "step": i} for i in range(1, 21)]
    history.append({"train_runtime": 3.0, "step": 20})
    summary = run_summary.summarize(history)
    assert summary["figures"]["reward_final"] == pytest.approx(sum(range(11, 21)) / 10)
    assert summary["figures"]["steps"] == 20 and summary["figures"]["length_final"] == 10.0


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
