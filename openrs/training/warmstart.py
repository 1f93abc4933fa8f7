"""Warm start for the miniature task: SFT on noisy-teacher traces with TRL's SFTTrainer, cached on disk.

The teacher writes R1-style worked solutions of training-split a+b*c problems. A share of them
(``mistake_share``) carries one systematic mistake, evaluating left to right, ``(a+b)*c``; the rest are right.
A model fitted to this mixture has partial skill, which GRPO with a correctness reward can then sharpen (with
clean traces cut short, the model instead has to learn carrying from the reward, which it does not).

A trace is what the model writes after the generation prompt (which already opens ``<think>``)::

    4*8=32\\n37+32=69\\n</think>\\n\\boxed{69}<EOS>      right
    37+4=41\\n41*8=328\\n</think>\\n\\boxed{328}<EOS>    the mistake

The loss covers the completion only (TRL's prompt-completion format). The result is written under the cache
root, keyed by a hash of the whole recipe (openrs.models.cache: base model, SFT settings, builder version), into a
temporary directory that is renamed into place, so a half-built model is never picked up and a changed recipe
builds a new one. It loads with plain ``AutoModelForCausalLM.from_pretrained(dir)``. A run builds it once before
its processes load the model (:func:`prepare_model`); ``python -m openrs.warmstart experiment=mini`` builds it ahead.
"""

from __future__ import annotations

import fcntl
import json
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from openrs.data import mini_arith as minitask
from openrs.models.cache import WARM_START_RECIPE_FILE, warm_start_path, warm_start_recipe
from openrs.models.tiny import tiny_model_dir
from openrs.records.atomic import publish_dir

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

    from openrs.config import ModelConfig, WarmStartConfig

log = logging.getLogger(__name__)


def trace(a: int, b: int, c: int, mistaken: bool) -> str:
    """What the teacher writes for ``a + b*c``: the reasoning, the closing think tag, the boxed answer."""
    if mistaken:  # left to right, ignoring precedence
        first, value = a + b, (a + b) * c
        steps = f"{a}+{b}={first}\n{first}*{c}={value}"
    else:
        first, value = b * c, a + b * c
        steps = f"{b}*{c}={first}\n{a}+{first}={value}"
    return f"{steps}\n</think>\n\\boxed{{{value}}}"


def noisy_traces(cfg: WarmStartConfig) -> list[dict[str, Any]]:
    """``num_traces`` traces of training-split problems (drawn with replacement, by ``seed``).

    Exactly ``round(mistake_share * num_traces)`` of them, at random positions, carry the mistake.
    """
    if not 0.0 <= cfg.mistake_share <= 1.0:
        raise ValueError(f"warm_start.mistake_share must be in [0, 1], got {cfg.mistake_share}")
    if cfg.num_traces < 1:
        raise ValueError(f"warm_start.num_traces must be >= 1, got {cfg.num_traces}")
    rng = random.Random(cfg.seed)
    pool = minitask.triples(cfg.task, "train")
    picked = [rng.choice(pool) for _ in range(cfg.num_traces)]
    wrong = set(rng.sample(range(cfg.num_traces), round(cfg.mistake_share * cfg.num_traces)))
    return [
        {
            "problem": minitask.problem_text(a, b, c),
            "completion": trace(a, b, c, i in wrong),
            "mistaken": i in wrong,
        }
        for i, (a, b, c) in enumerate(picked)
    ]


def sft_dataset(cfg: WarmStartConfig, tokenizer: PreTrainedTokenizerBase) -> Dataset:
    """Prompt-completion rows for SFTTrainer; the prompt is rendered exactly as GRPO renders it.

    Plain strings (not chat turns) keep the prompt identical to GRPO's generation prompt, which ends inside
    ``<think>``; TRL appends EOS to each completion.
    """
    import datasets

    from openrs.data import make_prompt

    def render(problem: str) -> str:
        turns = make_prompt(problem, cfg.system_prompt)
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)

    rows = [{"prompt": render(t["problem"]), "completion": t["completion"]} for t in noisy_traces(cfg)]
    return datasets.Dataset.from_list(rows)


def _base_dir(model_cfg: ModelConfig) -> str:
    return str(tiny_model_dir(model_cfg.tiny)) if model_cfg.tiny is not None else model_cfg.name_or_path


class _ProgressLine(TrainerCallback):
    """``warm start: step 60/600  loss 2.421`` at each log step."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401 - transformers hook
        if state.is_world_process_zero and logs and "loss" in logs:
            print(
                f"warm start: step {state.global_step}/{state.max_steps}  loss {float(logs['loss']):.3f}",
                flush=True,
            )


def train_warm_start(model_cfg: ModelConfig, out_dir: Path) -> dict[str, Any]:
    """Run the SFT stage from the base model into ``out_dir`` (model + tokenizer); returns its log."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    cfg = model_cfg.warm_start
    assert cfg is not None
    base = _base_dir(model_cfg)
    tokenizer = AutoTokenizer.from_pretrained(base, revision=model_cfg.revision)
    model = AutoModelForCausalLM.from_pretrained(base, revision=model_cfg.revision, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out_dir / "sft"),
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps in transformers 5
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        completion_only_loss=True,
        max_length=None,  # traces are short; nothing to truncate
        bf16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        logging_steps=max(1, cfg.steps // 4),
        report_to=[],
        disable_tqdm=True,
        dataloader_pin_memory=False,  # batches are tiny: pinning buys nothing (and warns on CPU)
    )
    from transformers import PrinterCallback

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(cfg, tokenizer),
        processing_class=tokenizer,
        callbacks=[_ProgressLine()],
    )
    trainer.remove_callback(PrinterCallback)  # one short line per log step instead of the dict
    # Floating-point sums depend on how many threads split them, and at this knife edge (a 50/50 teacher) so does
    # the result: the recipe fixes the threads, and the cache key holds them.
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    try:
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    shutil.rmtree(out_dir / "sft", ignore_errors=True)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"train_seconds": round(seconds, 2), "steps": trainer.state.global_step, "losses": losses}


def build_warm_start(model_cfg: ModelConfig) -> Path:
    """Build (once per recipe) and return the directory holding the warm-started model and tokenizer."""
    target = warm_start_path(model_cfg)
    if (target / WARM_START_RECIPE_FILE).exists():
        return target
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    # One build per recipe at a time: sweep jobs started together wait for the first instead of each training.
    with open(root / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / WARM_START_RECIPE_FILE).exists():
            return target
        return _build(model_cfg, warm_start_recipe(model_cfg), root, target)


def prepare_model(model_cfg: ModelConfig) -> str:
    """What ``from_pretrained`` reads for this model, after building what the config asks to build here.

    The once-only step before any process loads the model (openrs.runtime.launch): the tiny model and the warm
    start are built (or found in the cache) here, never by the resolver; a hub id or a directory passes as it is.
    """
    if model_cfg.warm_start is not None:
        return str(build_warm_start(model_cfg))
    if model_cfg.tiny is not None:
        return str(tiny_model_dir(model_cfg.tiny))
    return model_cfg.name_or_path


def _build(model_cfg: ModelConfig, settings: dict[str, Any], root: Path, target: Path) -> Path:
    cfg = model_cfg.warm_start
    assert cfg is not None
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        log.info("warm start: %d SFT steps into %s", cfg.steps, target)
        report = train_warm_start(model_cfg, staging)
        # The recipe file is written last: its presence marks a finished build.
        (staging / WARM_START_RECIPE_FILE).write_text(json.dumps({**settings, "build": report}, indent=2))
        publish_dir(staging, target, finished=WARM_START_RECIPE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("built warm start at %s", target)
    return target
