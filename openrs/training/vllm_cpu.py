"""vLLM on CPU: the one piece of TRL's vLLM path a CPU run stands in for, the transfer of the policy's weights.

Why it exists: after each optimizer step TRL 1.16 moves the policy's weights into vLLM. In server mode it streams
them over NCCL (``VLLMClient.init_communicator`` and ``update_named_params`` against vLLM's NCCL weight-transfer
engine), and NCCL needs CUDA: ``init_communicator`` raises NotImplementedError on a CPU device. Colocated, it calls
the model's ``load_weights`` inside vLLM (``VLLMGeneration.sync_weights``), which fails on vLLM's CPU backend once it
has repacked the linear layers after loading ("'Parameter' object has no attribute 'weight_loader'"). Everything
else of the path -- TRL's generation, its weight walk, its log-probs and importance ratios, vLLM's engine and sampler,
openrs's launcher and server supervision -- is the real code a GPU run executes.

What stands in, through public methods of TRL's own classes:

- server mode, :class:`FileWeightClient` (a ``VLLMClient``): ``init_communicator`` opens no NCCL group (it checks that
  the server offers its dev routes); ``update_named_params`` writes the streamed tensors as one safetensors file into
  the run directory and asks the server to load it (vLLM's ``reload_weights`` through ``POST /collective_rpc``).
  TRL's ``sync_weights`` around it is unchanged (the weight walk, then ``reset_prefix_cache``).
- colocate mode, :class:`CpuVLLMGeneration` (a ``VLLMGeneration``): ``sync_weights`` hands TRL's weight walk to
  vLLM's ``reload_weights`` (which redoes the CPU repacking), then resets the prefix cache; and the engine is built
  with the model's dtype, which TRL does not pass (vLLM's CPU platform would run a float32 model in bfloat16, so
  the trainer's and vLLM's log-probs would differ by ~1e-2 instead of ~1e-6).

A model that ties its lm_head to its input embedding (the tiny and mini models do) needs one more step: vLLM
0.31's CPU backend repacks the lm_head for its matmul kernel and a reload never refreshes a tied one, so vLLM would
keep sampling from the first weights. Such a model is served from :func:`untied_copy`, a copy whose config unties
the two and whose lm_head starts as the embedding; every transfer sends the embedding under both names, so vLLM's
lm_head follows the trainer's tied one exactly.

GRPOTrainer builds both inside its ``__init__`` and offers no hook, so :func:`cpu_weight_transfer` swaps these
classes into TRL's modules while the trainer is built, and only then. It refuses on a machine with CUDA, where TRL's
own NCCL transfer is what must run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from openrs.records.atomic import publish_dir

WEIGHTS_FILE = "model.safetensors"
EMBEDDING, LM_HEAD = "model.embed_tokens.weight", "lm_head.weight"


def ties_lm_head(model_dir: str) -> bool:
    """Whether the local model in ``model_dir`` ties its lm_head to its input embedding."""
    config = Path(model_dir) / "config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("tie_word_embeddings"))


def untied_copy(model_dir: str) -> str:
    """What vLLM on CPU serves for ``model_dir``: the model itself, or for a tied one (:func:`ties_lm_head`) a copy
    beside it (``<dir>-untied``, built once) whose config unties lm_head and embedding and whose lm_head holds the
    embedding. The trainer keeps training the tied model."""
    from safetensors.torch import load_file, save_file

    if not ties_lm_head(model_dir):
        return model_dir
    source = Path(model_dir)
    target = source.with_name(f"{source.name}-untied")
    if (target / "config.json").is_file():
        return str(target)
    staging = source.with_name(f".{source.name}-untied.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns("config.json", "*.safetensors*"))
    tensors = {k: v for f in sorted(source.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
    tensors[LM_HEAD] = tensors[EMBEDDING].clone()
    save_file(tensors, str(staging / WEIGHTS_FILE))
    config = json.loads((source / "config.json").read_text())
    (staging / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}, indent=2))
    if not publish_dir(staging, target, finished="config.json"):  # another process published it first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def with_lm_head(named_tensors: Iterable[tuple[str, torch.Tensor]], tied: bool) -> Iterator[tuple[str, torch.Tensor]]:
    """The trainer's weight walk, plus (for a tied model) the embedding again as the untied copy's lm_head."""
    for name, tensor in named_tensors:
        yield name, tensor
        if tied and name == EMBEDDING:
            yield LM_HEAD, tensor


def write_weights(named_tensors: Iterable[tuple[str, torch.Tensor]], directory: Path) -> int:
    """The tensors as ``<directory>/model.safetensors`` (checkpoint names), published whole; returns their count."""
    from safetensors.torch import save_file

    staging = directory.with_name(f".{directory.name}.partial")
    staging.mkdir(parents=True, exist_ok=True)
    # A copy of each: a gathered parameter may be released as soon as the walk moves on.
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in named_tensors}
    save_file(tensors, str(staging / WEIGHTS_FILE))
    publish_dir(staging, directory)
    return len(tensors)


def _client_class(weights_dir: Path, tied: bool) -> type:
    from trl.generation.vllm_client import VLLMClient

    class FileWeightClient(VLLMClient):
        """TRL's client; its weight transfer goes through a file and the server's ``reload_weights``."""

        def init_communicator(self, device: Any = 0) -> None:
            self.get_server_info()  # the dev routes (/server_info, /collective_rpc) answer: VLLM_SERVER_DEV_MODE=1
            self.weights_dir = weights_dir

        def update_named_params(self, metadata: Any, named_params: Iterator[tuple[str, torch.Tensor]]) -> None:
            write_weights(with_lm_head(named_params, tied), self.weights_dir)
            response = self.session.post(
                f"{self.base_url}/collective_rpc",
                json={
                    "method": "reload_weights",
                    "kwargs": {"weights_path": str(self.weights_dir), "is_checkpoint_format": True},
                },
            )
            if response.status_code != 200:
                raise RuntimeError(f"vLLM server refused the weights ({response.status_code}): {response.text[:500]}")

        def close_communicator(self) -> None:
            pass

    return FileWeightClient


def _generation_class(tied: bool) -> type:
    from trl.generation.vllm_generation import VLLMGeneration

    class CpuVLLMGeneration(VLLMGeneration):
        """TRL's vLLM generation; colocated, the weights reach vLLM through its ``reload_weights``."""

        def sync_weights(self) -> None:
            if self.mode != "colocate":
                super().sync_weights()
                return
            # TRL's own walk (the names vLLM expects; gathers and PEFT merges as on a GPU), consumed by vLLM while
            # each tensor is alive. It is TRL's private helper: the stand-in must send exactly what TRL would.
            weights = with_lm_head(self._iter_named_params(), tied)
            self.llm.collective_rpc(
                "reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True}
            )
            self.llm.reset_prefix_cache()

    return CpuVLLMGeneration


@contextlib.contextmanager
def cpu_weight_transfer(weights_dir: Path, dtype: str, kv_cache_gb: int, tied: bool) -> Iterator[None]:
    """While the trainer is built: TRL's vLLM classes with the CPU weight transfer, and the colocated engine built
    from the model's untied copy (``tied``), in ``dtype``, with a ``kv_cache_gb`` KV cache (vLLM's CPU backend would
    otherwise reserve a share of the host's memory, ``vllm_gpu_memory_utilization``, for it)."""
    if torch.cuda.is_available():
        raise RuntimeError(
            "openrs.training.vllm_cpu stands in for TRL's NCCL weight transfer on CPU only; with CUDA, TRL's own "
            "transfer runs (use a GPU hardware preset, not hardware.use_cpu=true with vLLM)"
        )
    import trl.generation.vllm_generation as generation_module
    import trl.trainer.grpo_trainer as trainer_module

    saved = (generation_module.VLLMClient, generation_module.LLM, trainer_module.VLLMGeneration)
    llm = saved[1]

    def colocated_engine(*args: Any, **kwargs: Any) -> Any:
        kwargs["model"] = untied_copy(kwargs["model"])
        return llm(*args, **{**kwargs, "dtype": dtype})

    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gb)
    generation_module.VLLMClient = _client_class(Path(weights_dir), tied)
    generation_module.LLM = colocated_engine
    trainer_module.VLLMGeneration = _generation_class(tied)
    try:
        yield
    finally:
        generation_module.VLLMClient, generation_module.LLM, trainer_module.VLLMGeneration = saved
