"""A run's hyperparameters for TensorBoard's HParams tab, written with tensorboard's own hparams plugin API.

Each run dir's ``tb/`` is one HParams session: a session-start record holds the swept values (experiment, lr,
max_len, reward, seed and every command-line override Hydra recorded in ``.hydra/overrides.yaml``), and a
session-end record marks a finished run. No experiment record is written, so TensorBoard derives the columns
from all sessions under ``--logdir`` (a sweep's runs are compared side by side) and offers every scalar tag,
``hparams/*`` (final and best figures) included, as a metric.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from openrs.records.run_dir import RunDir

if TYPE_CHECKING:
    from tensorboard.compat.proto.summary_pb2 import Summary

    from openrs.config import RunConfig

log = logging.getLogger(__name__)
HParamValue = bool | int | float | str


def hydra_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides of the run (``.hydra/overrides.yaml``), or [] where Hydra left none."""
    path = RunDir(run_dir).hydra_overrides
    try:
        return [str(o) for o in (yaml.safe_load(path.read_text()) or [])]
    except (OSError, yaml.YAMLError):
        return []


def hydra_choice(run_dir: Path, group: str) -> str | None:
    """The option Hydra picked for a config group (``.hydra/hydra.yaml`` runtime.choices), if recorded."""
    path = RunDir(run_dir).hydra_runtime
    try:
        choices = (yaml.safe_load(path.read_text()) or {}).get("hydra", {}).get("runtime", {}).get("choices", {})
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    value = choices.get(group) if isinstance(choices, dict) else None
    return None if value is None else str(value)


def parse_override(override: str) -> tuple[str, HParamValue] | None:
    """``lr=1e-3`` -> ("lr", 0.001); Hydra's own keys and deletions (``~key``) give None."""
    key, sep, raw = override.partition("=")
    key = key.lstrip("+~")
    if not sep or not key or key.startswith("hydra") or override.startswith("~"):
        return None
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        try:
            value = float(value)  # PyYAML reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    if not isinstance(value, (bool, int, float, str)):
        value = raw  # lists, dicts, null: keep the text as typed
    return key, value


def run_hparams(cfg: RunConfig, run_dir: Path) -> dict[str, HParamValue]:
    """The sweep axes every run has, then each override of this run (resolved values win for the axes).

    ``lr`` and ``max_len`` are the values the run trains with (``optimizer.lr``, ``grpo.max_completion_length``),
    not the top-level aliases, which an override of the dotted key leaves behind.
    """
    reward = hydra_choice(run_dir, "reward") or "+".join(cfg.reward.terms)
    hparams: dict[str, HParamValue] = {
        "experiment": cfg.experiment,
        "lr": float(cfg.optimizer.lr),
        "max_len": int(cfg.grpo.max_completion_length),
        "seed": int(cfg.seed),
        "reward": reward,
    }
    for override in hydra_overrides(run_dir):
        parsed = parse_override(override)
        if parsed is not None:
            hparams.setdefault(*parsed)
    return hparams


def session_start(hparams: dict[str, HParamValue], start_time_secs: float | None = None) -> Summary:
    """The HParams session-start summary of one run."""
    from tensorboard.plugins.hparams import summary_v2

    return summary_v2.hparams_pb(hparams, start_time_secs=start_time_secs)


def session_end(status: str = "STATUS_SUCCESS") -> Summary:
    """The HParams session-end summary (``STATUS_SUCCESS``, ``STATUS_FAILURE``, ...)."""
    import time

    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status), end_time_secs=time.time())
    summary = Summary()
    summary.value.add(
        tag=metadata.SESSION_END_INFO_TAG,
        metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=info)),
        tensor=metadata.NULL_TENSOR,
    )
    return summary


def read_session(tb_dir: Path) -> dict[str, Any]:
    """The hparams and end status a run's ``tb/`` holds, read back with tensorboard's event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = EventAccumulator(str(tb_dir), size_guidance={"tensors": 0})
    acc.Reload()
    try:
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:  # no hparams summaries in this run
        content = {}
    out: dict[str, Any] = {"hparams": {}, "status": None}
    if metadata.SESSION_START_INFO_TAG in content:
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        for name, value in start.hparams.items():
            kind = value.WhichOneof("kind")
            out["hparams"][name] = getattr(value, kind) if kind else None
    if metadata.SESSION_END_INFO_TAG in content:
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        out["status"] = api_pb2.Status.Name(end.status)
    return out
