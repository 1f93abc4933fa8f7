"""The tiny random-init model and its locally trained tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrs.config import ModelConfig, TinyModelConfig
from openrs.models import load_model_and_tokenizer
from openrs.models.tiny import tiny_model_dir


def tiny_cfg(**kw) -> ModelConfig:
    return ModelConfig(name_or_path="tiny", dtype="float32", tiny=TinyModelConfig(**kw))


def test_tiny_model_loads_through_from_pretrained():
    model, tokenizer = load_model_and_tokenizer(tiny_cfg())
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 1_000_000
    assert model.config.model_type == "qwen2"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_chat_template_handles_system_user_assistant():
    _, tokenizer = load_model_and_tokenizer(tiny_cfg())
    turns = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "What is 2 + 2?"},
    ]
    prompt = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith(tokenizer.bos_token + "SYS<|User|>What is 2 + 2?")
    assert prompt.endswith("<|Assistant|><think>\n")
    full = tokenizer.apply_chat_template(turns + [{"role": "assistant", "content": "4"}], tokenize=False)
    assert full.endswith("<|Assistant|>4" + tokenizer.eos_token)
    # Round trip: the R1 closing tag is one token and decodes back to itself.
    ids = tokenizer.encode("x\n</think>\ny", add_special_tokens=False)
    assert tokenizer.convert_ids_to_tokens(ids).count("\n</think>\n") == 1
    assert tokenizer.decode(ids) == "x\n</think>\ny"


def test_tiny_build_is_cached_and_deterministic(tmp_path):
    first = tiny_model_dir(TinyModelConfig(cache_dir=str(tmp_path)))
    mtime = (first / "model.safetensors").stat().st_mtime
    again = tiny_model_dir(TinyModelConfig(cache_dir=str(tmp_path)))
    assert again == first and (again / "model.safetensors").stat().st_mtime == mtime
    other = tiny_model_dir(TinyModelConfig(cache_dir=str(tmp_path), init_seed=1))
    assert other != first
    import torch
    from safetensors.torch import load_file

    a, b = load_file(first / "model.safetensors"), load_file(other / "model.safetensors")
    assert not torch.equal(a["model.embed_tokens.weight"], b["model.embed_tokens.weight"])


def test_tiny_model_generates():
    import torch

    model, tokenizer = load_model_and_tokenizer(tiny_cfg())
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 1 + 1?"}], add_generation_prompt=True, return_tensors="pt"
    )
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    torch.manual_seed(0)
    out = model.generate(ids, max_new_tokens=5, do_sample=True, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids.shape[1]


def test_concurrent_builds_of_one_tiny_model_all_succeed(tmp_path):
    """Parallel sweep jobs may build the same tiny model at once; each must end with the one finished copy."""
    import subprocess
    import sys

    code = (
        "from openrs.config import TinyModelConfig; from openrs.models.tiny import tiny_model_dir; "
        f"print(tiny_model_dir(TinyModelConfig(cache_dir={str(tmp_path)!r})))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(set(outs)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(outs[0]).name]  # no staging dirs left behind


def test_flash_attention_falls_back_to_sdpa_with_one_warning(caplog):
    from openrs.models import loading as models

    models._warned_attn.clear()
    with caplog.at_level("WARNING", logger="openrs.models"):
        assert models.attn_implementation("flash_attention_2", use_cpu=True) == "sdpa"
        assert models.attn_implementation("flash_attention_2", use_cpu=True) == "sdpa"
    assert sum("flash_attention_2 cannot run here" in r.message for r in caplog.records) == 1
    assert models.attn_implementation("eager") == "eager" and models.attn_implementation(None) is None


def test_filled_tokenizer_encodes_as_before_and_decodes_filler_to_text():
    from openrs.models.chat_format import THINK_TOKENS
    from openrs.models.tiny import build_tiny_tokenizer

    plain, filled = build_tiny_tokenizer(512), build_tiny_tokenizer(512, fill_to=2000)
    assert len(plain) == 512 and len(filled) == 2000
    text = "<|User|>What is $3 \\times 4$?<|Assistant|><think>\nWe compute it.\n</think>\n\\boxed{12}"
    think_ids = {t: i for i, t in enumerate(THINK_TOKENS)}
    # Same pieces; only the think tokens moved, to the last ids of the larger vocabulary.
    assert filled.tokenize(text) == plain.tokenize(text)
    assert [filled.convert_tokens_to_ids(t) - (2000 - len(THINK_TOKENS)) for t in THINK_TOKENS] == list(
        think_ids.values()
    )
    filler = filled.decode(list(range(600, 610)))
    assert len(filler.split()) == 10 and filler.replace(" ", "").isalpha()


def test_model_shape_knobs_reach_the_qwen2_config():
    from openrs.models.tiny import build_tiny_model, tiny_model_config

    cfg = TinyModelConfig(tie_word_embeddings=False, rope_theta=1e6, max_position_embeddings=4096, model_vocab_size=640)
    config = tiny_model_config(cfg, 512, 2, 0, 1)
    assert (config.vocab_size, config.tie_word_embeddings, config.max_position_embeddings) == (
        640,
        False,
        4096,
    )
    assert config.rope_parameters["rope_theta"] == 1e6
    model = build_tiny_model(cfg, 512, 2, 0, 1, device="meta")
    assert model.lm_head.weight.shape == (640, 96) and model.lm_head.weight is not model.model.embed_tokens.weight
    with pytest.raises(ValueError, match="model_vocab_size=500 < the tokenizer's 512"):
        tiny_model_config(TinyModelConfig(model_vocab_size=500), 512, 2, 0, 1)


def test_save_dtype_writes_the_weights_in_that_dtype(tmp_path):
    import torch
    from safetensors.torch import load_file

    path = tiny_model_dir(TinyModelConfig(cache_dir=str(tmp_path), save_dtype="bfloat16"))
    weights = load_file(path / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}


def test_qwen2_1_5b_random_has_the_distill_checkpoints_shape():
    """model=qwen2_1_5b_random: DeepSeek-R1-Distill-Qwen-1.5B's architecture (untied: 1,777,088,000 parameters)."""
    from openrs.config import compose, to_run_config
    from openrs.models.tiny import build_tiny_model

    cfg = to_run_config(compose(["experiment=rs3", "model=qwen2_1_5b_random"])).model
    assert cfg.tiny is not None and cfg.dtype.value == "bfloat16" and cfg.gradient_checkpointing
    model = build_tiny_model(cfg.tiny, cfg.tiny.tokenizer_fill_to, 2, 0, 1, device="meta")
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (
        1536,
        28,
        12,
        2,
    )
    assert (c.intermediate_size, c.vocab_size, c.max_position_embeddings) == (8960, 151936, 131072)
    assert not c.tie_word_embeddings and c.rope_parameters["rope_theta"] == 10000.0
    assert sum(p.numel() for p in model.parameters()) == 1_777_088_000


def _fake_flash_attn(monkeypatch: pytest.MonkeyPatch, forward=None) -> None:
    """A flash_attn module in sys.modules: without ``flash_attn_func`` (a wheel that fails to import) or with one."""
    import sys
    import types

    module = types.ModuleType("flash_attn")
    if forward is not None:
        module.flash_attn_func = forward
    monkeypatch.setitem(sys.modules, "flash_attn", module)


def _kernel_missing(*args, **kwargs):
    raise RuntimeError("CUDA error: no kernel image is available for execution on the device")


def test_flash_attn_is_probed_by_import_and_a_forward(monkeypatch):
    """Installed is not enough: a wheel that does not import, or whose kernel fails, is reported with its cause."""
    from openrs.models.loading import flash_attn_problem

    _fake_flash_attn(monkeypatch)
    assert flash_attn_problem("cpu").startswith("flash-attn does not import (ImportError: cannot import name")
    _fake_flash_attn(monkeypatch, _kernel_missing)
    assert flash_attn_problem("cpu") == (
        "flash-attn fails a test forward (RuntimeError: CUDA error: no kernel image is available for execution on "
        "the device)"
    )
    shapes = []
    _fake_flash_attn(monkeypatch, lambda q, k, v, causal: shapes.append((tuple(q.shape), causal)))
    assert flash_attn_problem("cpu") is None and shapes == [((1, 8, 2, 64), True)]


def test_a_broken_flash_attn_on_a_gpu_falls_back_to_sdpa_with_its_cause(monkeypatch, caplog):
    import torch

    from openrs.models import loading

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(loading, "_flash_attn_problem_once", lambda: loading.flash_attn_problem("cpu"))
    monkeypatch.setattr(loading, "_warned_attn", set())
    _fake_flash_attn(monkeypatch, _kernel_missing)
    with caplog.at_level("WARNING", logger="openrs.models.loading"):
        assert loading.attn_implementation("flash_attention_2") == "sdpa"
        assert loading.attn_implementation("flash_attention_2") == "sdpa"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "flash-attn fails a test forward (RuntimeError: CUDA error" in warnings[0]
    assert loading.attn_implementation("eager") == "eager"
