"""The paper presets train with the seed's GRPO math: every row of docs/PARITY.md, and the loss itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config

REPO = Path(__file__).resolve().parent.parent
PARITY = REPO / "docs" / "PARITY.md"
PRESETS = ("rs1", "rs2", "rs3")
_VALUE = re.compile(r"`([^`]+)`(?:\s*\((rs[0-9, rs]+)\))?")


def parity_rows() -> list[tuple[str, dict[str, object]]]:
    """(field, {preset: expected value}) for every table row of PARITY.md whose "rs presets" cell holds values."""
    rows = []
    for line in PARITY.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[1].startswith("`"):
            continue
        field = cells[1].strip("`")
        expected: dict[str, object] = {}
        for literal, labels in _VALUE.findall(cells[5]):
            value = ast.literal_eval(literal)
            for preset in re.findall(r"rs\d", labels) or PRESETS:
                expected.setdefault(preset, value)
        assert set(expected) == set(PRESETS), f"PARITY.md row {field!r}: no value for {set(PRESETS) - set(expected)}"
        rows.append((field, expected))
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[object, object]]:
    """The real RunConfig and GRPOConfig of each paper preset (use_cpu: this machine has no GPU)."""
    from openrs.training.grpo_config import to_grpo_config

    out = {}
    for preset in PRESETS:
        cfg = to_run_config(compose([f"experiment={preset}"]))
        cfg.hardware.use_cpu = True  # only where the run executes; every other argument is the preset's
        out[preset] = (cfg, to_grpo_config(cfg, tmp_path_factory.mktemp(preset)))
    return out


def actual(field: str, cfg, args) -> object:
    """The value the row's field has in the built configs (see PARITY.md for the prefixes)."""
    from openrs.rewards import check_params

    prefix, _, name = field.rpartition(":")
    if prefix == "gen":
        return (args.generation_kwargs or {}).get(name)
    if prefix == "ds":
        node = args.hf_deepspeed_config.config  # after TRL/transformers filled the "auto" values
        for part in name.split("."):
            node = node[part]
        return node
    if prefix in ("model", "hw"):
        value = getattr(cfg.model if prefix == "model" else cfg.hardware, name)
    elif prefix == "reward":
        values = {check_params(t, term.params).get(name) for t, term in cfg.reward.terms.items()}
        values.discard(None)  # terms without that parameter
        assert len(values) == 1, f"reward terms disagree on {name}: {values}"
        value = values.pop()
    else:
        value = getattr(args, name)
    return getattr(value, "value", value)


ROWS = parity_rows()


def test_parity_table_is_read_whole():
    fields = [f for f, _ in ROWS]
    assert len(fields) >= 45 and len(set(fields)) == len(fields)
    for must in (
        "loss_type",
        "vllm_importance_sampling_correction",
        "use_bias_correction_kl",
        "temperature",
        "steps_per_generation",
        "ds:zero_optimization.reduce_bucket_size",
        "reward:unparseable_gold",
    ):
        assert must in fields


@pytest.mark.parametrize(("field", "expected"), ROWS, ids=[f for f, _ in ROWS])
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_matches_parity_row(built, preset, field, expected):
    cfg, args = built[preset]
    assert actual(field, cfg, args) == expected[preset]


def test_parity_trl_gives_trl_defaults(tmp_path):
    """`parity=trl` restores TRL 1.16's own defaults for every knob where the seed differs."""
    from trl import GRPOConfig

    from openrs.training.grpo_config import to_grpo_config

    cfg = to_run_config(compose(["experiment=rs3", "parity=trl"]))
    cfg.hardware.use_cpu = True
    args = to_grpo_config(cfg, tmp_path)
    plain = GRPOConfig(output_dir=str(tmp_path / "plain"), use_cpu=True)
    for field in (
        "loss_type",
        "beta",
        "vllm_importance_sampling_correction",
        "use_bias_correction_kl",
        "epsilon",
        "epsilon_high",
        "scale_rewards",
        "num_iterations",
        "mask_truncated_completions",
    ):
        assert getattr(args, field) == getattr(plain, field), field
    assert args.temperature == 0.7 and not args.generation_kwargs  # log-probs at the sampling temperature
    assert args.steps_per_generation == args.gradient_accumulation_steps


def test_importance_correction_refuses_a_second_temperature():
    with pytest.raises(ValueError, match="logprob_temperature=null"):
        to_run_config(compose(["experiment=rs3", "grpo.importance_sampling_correction=true"]))


def test_vllm_context_follows_the_budget_and_a_short_fixed_one_fails():
    from openrs.training.grpo_config import vllm_max_model_length

    assert vllm_max_model_length(to_run_config(compose(["experiment=rs3", "max_len=8192"]))) == 512 + 8192
    with pytest.raises(ValueError, match=r"hardware.vllm_max_model_length=4608 < .* = 8704"):
        to_run_config(compose(["experiment=rs3", "max_len=8192", "hardware.vllm_max_model_length=4608"]))


def test_enforce_eager_in_colocate_mode_is_refused():
    with pytest.raises(ValueError, match="vllm_enforce_eager=true has no effect with vllm_mode=colocate"):
        to_run_config(compose(["experiment=rs3", "hardware=a40x4_colocate", "hardware.vllm_enforce_eager=true"]))


# --- the loss TRL computes is the seed's --------------------------------------------------------------------


@pytest.mark.slow
def test_trl_loss_is_the_seeds_global_token_mean(tmp_path):
    """Two completions of 3 and 7 tokens, fixed advantages and reference log-probs: TRL's loss and its gradient
    equal the seed's (69ad852) formula computed by hand, sum over the micro-batch's tokens / their count, on raw
    logits, with the plain k3 KL."""
    import torch

    from openrs.training.loop import build_trainer

    cfg = to_run_config(
        compose(
            [
                "experiment=smoke",
                "parity=seed",
                "grpo.beta=0.04",
                "grpo.max_steps=1",
                "grpo.temperature=0.7",
                "hardware.per_device_train_batch_size=2",
                "grpo.num_generations=2",
                "diagnostics.text=false",
            ]
        )
    )
    trainer = build_trainer(cfg, tmp_path / "run")
    model = trainer.model
    model.eval()  # TRL divides by the accumulation steps only in train mode; the seed's Trainer did the same
    torch.manual_seed(0)
    prompt_ids = torch.randint(5, 100, (2, 4))
    completion_ids = torch.randint(5, 100, (2, 7))
    completion_mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    advantages = torch.tensor([1.0, -0.5])
    ref_logps = torch.full((2, 7), -4.0)
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": advantages,
        "ref_per_token_logps": ref_logps,
        "num_items_in_batch": completion_mask.sum(),
    }

    model.zero_grad()
    trl_loss = trainer.compute_loss(model, inputs)
    trl_loss.backward()
    trl_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    # By hand, as 69ad852's compute_loss (trainer.py:895-916) on this model's raw logits.
    model.zero_grad()
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    mask = torch.cat([torch.ones_like(prompt_ids), completion_mask], dim=1)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, prompt_ids.size(1) - 1 : -1]
    logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
    coef_1 = torch.exp(logps - logps.detach())
    coef_2 = torch.clamp(coef_1, 0.8, 1.2)
    per_token = -torch.min(coef_1 * advantages.unsqueeze(1), coef_2 * advantages.unsqueeze(1)) + 0.04 * kl
    seed_loss = (per_token * completion_mask).sum() / completion_mask.sum()
    seed_loss.backward()

    assert trl_loss.item() == pytest.approx(seed_loss.item(), rel=1e-5)
    # The per-sequence mean (loss_type=grpo) would give another number: the lengths differ.
    per_sequence = ((per_token * completion_mask).sum(1) / completion_mask.sum(1)).mean()
    assert abs(per_sequence.item() - seed_loss.item()) > 0.1
    for name, grad in trl_grads.items():
        torch.testing.assert_close(grad, model.get_parameter(name).grad, rtol=1e-4, atol=1e-7, msg=name)
