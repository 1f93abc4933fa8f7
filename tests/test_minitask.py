"""The miniature a+b*c task: split, golds scored by the real rewards and evaluation, dataset and benchmark."""

from __future__ import annotations

import pytest

from openrs.config import DatasetConfig, DatasetSource, MiniArithConfig
from openrs.data import mini_arith as minitask


def test_split_is_disjoint_complete_and_deterministic():
    cfg = MiniArithConfig()
    held, train = minitask.triples(cfg, "held_out"), minitask.triples(cfg, "train")
    assert len(held) == 500 and len(train) == 90 * 8 * 8 - 500
    assert not set(held) & set(train)
    space = {(a, b, c) for a in range(10, 100) for b in range(2, 10) for c in range(2, 10)}
    assert set(held) | set(train) == space
    minitask._ranked.cache_clear()  # recompute from scratch: same answer
    assert minitask.triples(cfg, "held_out") == held
    # The salt alone draws another split; the size knob moves the boundary of the same ranking.
    assert minitask.triples(MiniArithConfig(split_salt="other"), "held_out") != held
    assert minitask.triples(MiniArithConfig(held_out=100), "held_out") == held[:100]


def test_rows_are_right():
    for row in minitask.rows(MiniArithConfig(), "held_out")[:50]:
        assert row["problem"] == f"What is ${row['a']} + {row['b']} \\times {row['c']}$?"
        assert int(row["answer"]) == row["a"] + row["b"] * row["c"]
        assert row["solution"] == f"$\\boxed{{{row['answer']}}}$"


def test_golds_score_with_the_accuracy_reward_and_the_evaluation_rule():
    from openrs.evaluate.scoring import judge
    from openrs.rewards import SharedVerifier, get_reward

    rows = minitask.rows(MiniArithConfig(), "held_out")[:40]
    right = [f"{r['b']}*{r['c']}=x\n</think>\n\\boxed{{{r['answer']}}}" for r in rows]
    wrong = [f"{r['b']}*{r['c']}=x\n</think>\n\\boxed{{{int(r['answer']) + 1}}}" for r in rows]
    golds = [r["solution"] for r in rows]
    verifier = SharedVerifier(workers=1)
    try:
        accuracy = get_reward("accuracy", verifier=verifier)
        assert accuracy(completions=right, solution=golds) == [1.0] * len(rows)
        assert accuracy(completions=wrong, solution=golds) == [0.0] * len(rows)
    finally:
        verifier.close()
    assert all(judge(t, g, "latex").correct for t, g in zip(right, golds, strict=True))
    assert not any(judge(t, g, "latex").correct for t, g in zip(wrong, golds, strict=True))


def test_dataset_source_trains_on_the_training_split_only():
    from openrs.data import load_problems

    ds = load_problems(DatasetConfig(source=DatasetSource.mini_arith, system_prompt=None))
    held = {r["problem"] for r in minitask.rows(MiniArithConfig(), "held_out")}
    assert len(ds) == 90 * 8 * 8 - 500
    assert not held & set(ds["problem"])
    assert ds[0]["prompt"] == [{"role": "user", "content": ds[0]["problem"]}]


def test_heldout_benchmark_uses_the_training_prompt_and_leaves_the_paper_benchmarks_alone():
    from openrs.data import make_prompt
    from openrs.evaluate.benchmarks import (
        BENCHMARKS,
        PAPER_BENCHMARKS,
        build_prompt,
        chat_messages,
        load_benchmark,
    )

    problems = load_benchmark("mini_heldout", limit=3)
    spec = BENCHMARKS["mini_heldout"]
    expected = [r["problem"] for r in minitask.rows(MiniArithConfig(), "held_out")[:3]]
    assert [p.problem for p in problems] == expected
    assert chat_messages(problems[0].problem, spec) == make_prompt(problems[0].problem, None)
    assert len(load_benchmark("mini_heldout")) == 500
    for name in PAPER_BENCHMARKS:
        assert chat_messages("Q", BENCHMARKS[name]) == [{"role": "user", "content": build_prompt("Q")}]


@pytest.mark.parametrize("reward", ["accuracy", "format"])
def test_mini_experiment_composes(reward):
    from openrs.config import compose, to_run_config

    cfg = to_run_config(compose(["experiment=mini", f"reward={reward}"]))
    assert cfg.model.tiny is not None and cfg.model.warm_start is not None
    assert cfg.model.warm_start.task == cfg.dataset.mini_arith  # the warm start avoids the held-out problems
    assert cfg.model.warm_start.system_prompt == cfg.dataset.system_prompt is None
    assert cfg.hardware.per_device_train_batch_size == 64 and cfg.grpo.num_generations == 8
    assert cfg.grpo.max_completion_length == 32 and cfg.grpo.beta == 0.0 and cfg.grpo.temperature == 1.0
    assert cfg.optimizer.lr == 1e-4 and cfg.optimizer.lr_scheduler_type == "constant"
    assert set(cfg.reward.terms) == ({"format", "accuracy"} if reward == "accuracy" else {"format"})
