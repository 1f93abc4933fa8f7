"""The step-time split (openrs.steptime): generation and reward seconds through public hooks, and the arithmetic."""

from __future__ import annotations

from openrs import steptime


def test_phase_seconds_split_the_step():
    rec = {"step_time": 10.0, steptime.GENERATION_KEY: 3.0, steptime.REWARD_KEY: 1.0, "perf/step_seconds": 11.0}
    assert steptime.phase_seconds(rec, rounds_per_step=2) == {
        "generation": 6.0, "reward": 2.0, "loss": 2.0, "other": 1.0, "step_time": 10.0, "wall": 11.0}  # fmt: skip
    assert steptime.phase_seconds({"step_time": 10.0})["loss"] is None


def test_phase_clock_times_the_reward_phase_and_keeps_the_terms():
    def format_reward(prompts=None, completions=None, **kwargs):
        return [1.0 for _ in completions]

    def length_reward(prompts=None, completions=None, **kwargs):
        return [float(len(c)) for c in completions]

    clock = steptime.PhaseClock()
    wrapped = clock.wrap([format_reward, length_reward])
    assert [f.__name__ for f in wrapped] == ["format_reward", "length_reward"]
    logged: dict[str, float] = {}
    clock.on_step_begin(None, None, None)
    kwargs = {"log_metric": logged.__setitem__}
    assert [f(prompts=["p"], completions=["ab"], **kwargs) for f in wrapped] == [[1.0], [2.0]]
    assert set(logged) == {steptime.GENERATION_KEY, steptime.REWARD_KEY}
    assert all(v >= 0 for v in logged.values())


def test_phase_clock_leaves_reward_models_alone():
    from torch import nn

    funcs = [nn.Linear(1, 1), lambda prompts=None, completions=None, **kw: [0.0]]
    assert steptime.PhaseClock().wrap(funcs) == funcs
