"""Load the policy model and its tokenizer: a hub id, a local directory, a random-init Qwen2 (openrs.models.tiny) or
its warm start (openrs.training.warmstart), all through transformers' ``from_pretrained``; attention and dtype as
the run asks.

Resolving a model never trains one: the warm start must be built first (openrs.training.warmstart.prepare_model,
which a run calls once before its processes load the model); a missing one is a one-line error that says how to
build it. The tiny model, a random init written in about a second, is built on first use.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from openrs.config import ModelConfig

from openrs.errors import UsageError
from openrs.models.cache import WARM_START_RECIPE_FILE, warm_start_path
from openrs.models.tiny import tiny_model_dir

log = logging.getLogger(__name__)


def resolve_model_path(cfg: ModelConfig) -> str:
    """Hub id or directory that ``from_pretrained`` should read."""
    if cfg.warm_start is not None:
        path = warm_start_path(cfg)
        if not (path / WARM_START_RECIPE_FILE).is_file():
            raise UsageError(
                f"model.warm_start: not built yet ({path}); a training run builds it before it starts, or build it "
                "ahead with python -m openrs.warmstart <the run's overrides>"
            )
        return str(path)
    if cfg.tiny is not None:
        return str(tiny_model_dir(cfg.tiny))
    return cfg.name_or_path


def _unavailable(cfg: ModelConfig, exc: OSError) -> UsageError:
    """The one-line error for a model that is neither on disk nor downloadable."""
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True") else ""
    return UsageError(
        f"model.name_or_path={cfg.name_or_path}: not a local directory and not loadable from the hub{offline} "
        f"({type(exc).__name__}); download it once where the hub is reachable (huggingface-cli download "
        f"{cfg.name_or_path}), or set model.name_or_path to a local copy"
    )


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_model_path(cfg), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
    except OSError as exc:  # transformers' "not found / cannot connect" errors are OSErrors
        raise _unavailable(cfg, exc) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right
    return tokenizer


_warned_attn: set[str] = set()


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for a one-line reason."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def flash_attn_problem(device: str = "cuda") -> str | None:
    """Why flash-attn cannot run here, or None: it must import and run one tiny forward on ``device``.

    transformers (5.17) checks only that the package is installed and its version; a wheel built for another torch
    or CUDA then fails at import ("undefined symbol") or at the first forward, minutes into a run.
    """
    try:
        import torch
        from flash_attn import flash_attn_func
    except Exception as exc:  # noqa: BLE001 - any failure to import means it cannot run
        if isinstance(exc, ModuleNotFoundError) and exc.name == "flash_attn":
            return "the flash-attn package is not installed (pip install flash-attn --no-build-isolation)"
        return f"flash-attn does not import ({_first_line(exc)})"
    try:
        q = torch.zeros(1, 8, 2, 64, device=device, dtype=torch.bfloat16)  # batch, tokens, heads, head dim
        flash_attn_func(q, q, q, causal=True)
    except Exception as exc:  # noqa: BLE001 - a kernel that fails on this GPU falls back like a missing one
        return f"flash-attn fails a test forward ({_first_line(exc)})"
    return None


def attn_implementation(requested: str | None, use_cpu: bool = False) -> str | None:
    """The attention implementation to load with: ``flash_attention_2`` only where flash-attn runs.

    The paper's presets ask for flash_attention_2 (the seed's setting). Without CUDA, or where flash-attn is missing
    or fails its probe (openrs.models.loading.flash_attn_problem), the model falls back to sdpa with one warning per
    process naming the cause, so the same preset runs everywhere; the choice is recorded in provenance.json.
    """
    if requested != "flash_attention_2":
        return requested
    import torch

    reason = "no CUDA device" if use_cpu or not torch.cuda.is_available() else _flash_attn_problem_once()
    if reason is None:
        return requested
    if reason not in _warned_attn:
        _warned_attn.add(reason)
        log.warning("model.attn_implementation=flash_attention_2 cannot run here (%s): using sdpa", reason)
    return "sdpa"


@functools.cache
def _flash_attn_problem_once() -> str | None:
    """flash_attn_problem on the current CUDA device, probed once per process."""
    return flash_attn_problem("cuda")


def model_init_kwargs(cfg: ModelConfig, dtype: str | None = None, use_cpu: bool = False) -> dict:
    """Keyword arguments for ``AutoModelForCausalLM.from_pretrained``; ``dtype`` overrides ``cfg.dtype``."""
    kwargs: dict = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    dtype = dtype or (cfg.dtype.value if hasattr(cfg.dtype, "value") else str(cfg.dtype))
    if dtype != "auto":
        import torch

        kwargs["dtype"] = getattr(torch, dtype)
    else:
        kwargs["dtype"] = "auto"
    attn = attn_implementation(cfg.attn_implementation, use_cpu)
    if attn:
        kwargs["attn_implementation"] = attn
    return kwargs


def load_model(cfg: ModelConfig, dtype: str | None = None, use_cpu: bool = False) -> PreTrainedModel:
    """The policy; ``dtype`` overrides ``cfg.dtype`` (training picks it from the precision plan)."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(resolve_model_path(cfg), **model_init_kwargs(cfg, dtype, use_cpu))
    except OSError as exc:
        raise _unavailable(cfg, exc) from exc


def load_model_and_tokenizer(cfg: ModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The policy and its tokenizer, from the hub, a local directory, or the tiny recipe."""
    return load_model(cfg), load_tokenizer(cfg)
