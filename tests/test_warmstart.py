"""The warm start: noisy-teacher traces, the recipe-keyed cache, a short real SFT run that loads plainly."""

from __future__ import annotations

import dataclasses
import re

import pytest

from openrs.config import MiniArithConfig, ModelConfig, TinyModelConfig, WarmStartConfig
from openrs.data import mini_arith as minitask
from openrs.models.cache import WARM_START_RECIPE_FILE as RECIPE_FILE
from openrs.models.cache import warm_start_recipe as recipe
from openrs.models.tiny import tiny_model_dir
from openrs.training.warmstart import build_warm_start as warm_start_dir
from openrs.training.warmstart import noisy_traces, trace


def mini_model(**warm) -> ModelConfig:
    tiny = TinyModelConfig(hidden_size=32, num_hidden_layers=1, intermediate_size=64, tokenizer="char")
    return ModelConfig(name_or_path="mini", dtype="float32", tiny=tiny, warm_start=WarmStartConfig(**warm))


def test_trace_is_right_or_has_the_one_mistake():
    assert trace(37, 4, 8, mistaken=False) == "4*8=32\n37+32=69\n</think>\n\\boxed{69}"
    assert trace(37, 4, 8, mistaken=True) == "37+4=41\n41*8=328\n</think>\n\\boxed{328}"


@pytest.mark.parametrize("share", [0.0, 0.3, 0.5, 1.0])
def test_noisy_traces_have_the_intended_mistake_share(share):
    cfg = WarmStartConfig(num_traces=1000, mistake_share=share)
    rows = noisy_traces(cfg)
    assert sum(r["mistaken"] for r in rows) == round(share * 1000)
    held = {minitask.problem_text(*t) for t in minitask.triples(cfg.task, "held_out")}
    assert not held & {r["problem"] for r in rows}, "traces must come from the training split"
    for r in rows:  # each trace's boxed answer is a+b*c, or (a+b)*c when it is marked mistaken
        match = re.fullmatch(r"What is \$(\d+) \+ (\d+) \\times (\d+)\$\?", r["problem"])
        a, b, c = (int(x) for x in match.groups())
        value = (a + b) * c if r["mistaken"] else a + b * c
        assert r["completion"].endswith(f"\n</think>\n\\boxed{{{value}}}")
    assert noisy_traces(cfg) == rows


def test_recipe_key_changes_with_every_recipe_field():
    base = recipe(mini_model())
    assert recipe(mini_model()) == base
    changed = [
        recipe(mini_model(steps=7)),
        recipe(mini_model(mistake_share=0.25)),
        recipe(mini_model(task=MiniArithConfig(split_salt="x"))),
        recipe(dataclasses.replace(mini_model(), tiny=TinyModelConfig(tokenizer="char", init_seed=3))),
    ]
    assert all(c != base for c in changed)
    assert recipe(mini_model(cache_dir="/elsewhere")) == base  # where it is cached is not part of the recipe


def test_short_warm_start_builds_once_and_loads_with_plain_transformers(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openrs.evaluate.heldout import evaluate_heldout
    from openrs.evaluate.paired import paired_difference

    cfg = mini_model(steps=20, batch_size=16, num_traces=64, cache_dir=str(tmp_path / "ws"))
    cfg.tiny.cache_dir = str(tmp_path / "tiny")
    first = warm_start_dir(cfg)
    assert (first / RECIPE_FILE).exists()
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".building-")]
    stamp = (first / "model.safetensors").stat().st_mtime
    assert warm_start_dir(cfg) == first and (first / "model.safetensors").stat().st_mtime == stamp

    model = AutoModelForCausalLM.from_pretrained(first)
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert tokenizer.convert_ids_to_tokens(tokenizer.encode("\n</think>\n", add_special_tokens=False)) == [
        "\n</think>\n"
    ]
    tiny = AutoModelForCausalLM.from_pretrained(tiny_model_dir(cfg.tiny))
    moved = any(not torch.equal(p, q) for p, q in zip(model.parameters(), tiny.parameters(), strict=True))
    assert moved, "SFT changed no weight"

    result = evaluate_heldout(first, n=8)
    assert len(result.outcomes) == 8 and all(len(o) == 1 for o in result.outcomes)
    assert paired_difference(result.outcomes, result.outcomes).difference == 0.0

    other = warm_start_dir(mini_model(steps=21, batch_size=16, num_traces=64, cache_dir=str(tmp_path / "ws")))
    assert other != first
