"""From Hydra's composed config to a checked RunConfig: compose as ``python -m openrs.train`` does, resolve, type,
and check what spans groups (each group checks its own ranges in its ``__post_init__``).

The checks run before any file is written or any model loads; each error names the keys and the way out.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from openrs.config.groups import DatasetSource, HardwareConfig, VllmMode
from openrs.config.run import CONF_DIR, RunConfig, register_configs
from openrs.errors import UsageError


def validate_hardware(hw: HardwareConfig) -> None:
    """Fail early, naming the field, on a hardware preset that cannot be launched."""
    if hw.num_processes < 1:
        raise UsageError(f"hardware.num_processes={hw.num_processes}: must be >= 1")
    if hw.cpu_threads is not None and hw.cpu_threads < 1:
        raise UsageError(
            f"hardware.cpu_threads={hw.cpu_threads}: must be >= 1, or null for this job's share of the cores"
        )
    server = hw.use_vllm and VllmMode(hw.vllm_mode) is VllmMode.server
    if hw.use_vllm and not server and hw.vllm_enforce_eager:
        raise UsageError(
            "hardware.vllm_enforce_eager=true has no effect with vllm_mode=colocate: TRL 1.16 builds the colocated "
            "vLLM engine without that option; set it to null"
        )
    if hw.use_cpu:
        if hw.num_gpus or hw.vllm_gpus:
            raise UsageError(
                f"hardware.use_cpu=true runs on CPU cores only (a vLLM server too): set hardware.num_gpus=0 and "
                f"hardware.vllm_gpus=0 (they are {hw.num_gpus} and {hw.vllm_gpus})"
            )
    else:
        if server and hw.vllm_gpus < 1:
            raise UsageError("hardware.vllm_mode=server needs hardware.vllm_gpus >= 1 (the server's own GPU)")
        if not server and hw.vllm_gpus:
            raise UsageError(f"hardware.vllm_gpus={hw.vllm_gpus} only applies to vllm_mode=server (use_vllm=true)")
        used = hw.num_processes + (hw.vllm_gpus if server else 0)
        if hw.num_gpus != used:
            raise UsageError(
                f"hardware.num_gpus={hw.num_gpus} but num_processes ({hw.num_processes}) + vllm_gpus "
                f"({hw.vllm_gpus if server else 0}) = {used}: every GPU of the preset must have a job"
            )
    if hw.ddp_backend not in (None, "nccl", "gloo"):
        raise UsageError(f"hardware.ddp_backend={hw.ddp_backend!r}: choose null, nccl or gloo")


# Head dims vLLM 0.31's CPU attention implements (vllm/v1/attention/backends/cpu_attn.py).
VLLM_CPU_HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def validate_vllm_on_cpu(cfg: RunConfig) -> None:
    """A locally built model must have a head dim vLLM's CPU attention runs; said before a server starts."""
    tiny = cfg.model.tiny
    if not (cfg.hardware.use_cpu and cfg.hardware.use_vllm) or tiny is None:
        return
    head_dim, rest = divmod(tiny.hidden_size, tiny.num_attention_heads)
    if rest or head_dim not in VLLM_CPU_HEAD_DIMS:
        raise UsageError(
            f"model.tiny: hidden_size {tiny.hidden_size} / num_attention_heads {tiny.num_attention_heads} gives a "
            f"head dim vLLM's CPU attention does not run (it runs {', '.join(map(str, VLLM_CPU_HEAD_DIMS))}); "
            "change model.tiny.num_attention_heads (or generate with hardware=cpu)"
        )


def validate_run(cfg: RunConfig) -> None:
    """Checks that span groups; each error names the keys and the way out."""
    validate_hardware(cfg.hardware)
    validate_vllm_on_cpu(cfg)
    g, hw, ds = cfg.grpo, cfg.hardware, cfg.dataset
    if DatasetSource(ds.source) in (DatasetSource.hub, DatasetSource.local) and not ds.path:
        source = DatasetSource(ds.source).value
        raise UsageError(
            f"dataset.path is required with dataset.source={source}: "
            + (
                "a .jsonl, .json or .parquet file (dataset=jsonl dataset.path=/data/problems.jsonl)"
                if source == "local"
                else "a hub dataset id"
            )
        )
    if DatasetSource(ds.source) is DatasetSource.local and not Path(ds.path).expanduser().is_file():
        raise UsageError(f"dataset.path: no such file {ds.path} (a .jsonl, .json or .parquet file)")
    needed = cfg.dataset.max_prompt_length + g.max_completion_length
    if hw.use_vllm and hw.vllm_max_model_length is not None and hw.vllm_max_model_length < needed:
        raise UsageError(
            f"hardware.vllm_max_model_length={hw.vllm_max_model_length} < dataset.max_prompt_length "
            f"({cfg.dataset.max_prompt_length}) + grpo.max_completion_length ({g.max_completion_length}) = {needed}: "
            "vLLM would cut completions short; set it to null (derived) or >= " + str(needed)
        )
    steps = g.steps_per_generation or hw.gradient_accumulation_steps
    batch = hw.per_device_train_batch_size * hw.world_size * steps
    if batch % g.num_generations:
        ranks = f"num_processes={hw.num_processes}" if hw.nodes == 1 else f"{hw.world_size} ranks on {hw.nodes} nodes"
        raise UsageError(
            f"a generation batch of {batch} completions (hardware.per_device_train_batch_size="
            f"{hw.per_device_train_batch_size} x {ranks} x grpo.steps_per_generation={steps}) "
            f"does not split into groups of grpo.num_generations={g.num_generations}: make it a multiple"
        )
    if "temperature" in g.generation_kwargs:
        raise UsageError("grpo.generation_kwargs.temperature: set grpo.temperature (sampling) instead")
    mismatched = g.logprob_temperature is not None and g.logprob_temperature != g.temperature
    if g.importance_sampling_correction and mismatched:
        raise UsageError(
            f"grpo.importance_sampling_correction=true compares vLLM's log-probs at grpo.temperature={g.temperature} "
            f"with the trainer's at grpo.logprob_temperature={g.logprob_temperature}: set logprob_temperature=null"
        )


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Resolve interpolations, turn the composed DictConfig into typed dataclasses, and check across groups."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, RunConfig), f"expected RunConfig, got {type(obj).__name__}"
    validate_run(obj)
    return obj


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the config as ``python -m openrs.train`` would, for tools and tests."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides or [], return_hydra_config=False)
