"""One source for each default: conf/ holds the values; a dataclass default (kept so code can build the dataclass
directly) must equal the YAML value it mirrors. Presets say only what differs from what they build on, and the
paper presets compose to the configs captured before the structure pass."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

import openrs.config as schema
from openrs.config import CONF_DIR, compose, to_run_config

FIXTURES = Path(__file__).parent / "fixtures" / "presets"
# Dicts whose schema default must stay empty: OmegaConf merges dicts, so a default entry would leak into every
# option (reward=cosine would also get accuracy).
MERGED_DICTS = {"system_prompts", "reward.terms"}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def disagreements(cls: type, node: dict, path: str = "") -> list[str]:
    """Fields whose dataclass default differs from the composed YAML value (MISSING and absent keys skipped)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        if f.name not in node or key in MERGED_DICTS:
            continue
        default, value = _default(f), node[f.name]
        section = next((t for t in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(t)), None)
        if section is not None and isinstance(value, dict):
            if default is None:
                continue  # an optional section (tiny, warm_start): compared through the option that sets it, below
            out += disagreements(section, value, key)  # a group (hardware, grpo, ...): its fields one by one
            continue
        if default is dataclasses.MISSING or default == "???":
            continue
        if isinstance(value, str) and value.startswith("${"):
            continue  # conf ties it to another key (dataset.arithmetic.seed: ${seed}); no literal to mirror
        if getattr(default, "value", default) != value:
            out.append(f"{key}: schema {getattr(default, 'value', default)!r} != conf {value!r}")
    return out


def composed(*overrides: str) -> dict:
    return OmegaConf.to_container(compose(list(overrides)), resolve=False)


def test_schema_defaults_equal_the_base_config():
    assert disagreements(schema.RunConfig, composed("~experiment")) == []


@pytest.mark.parametrize(
    ("overrides", "path", "cls"),
    [
        (["model=tiny"], "model.tiny", schema.TinyModelConfig),
        (["experiment=mini"], "model.warm_start", schema.WarmStartConfig),
        (["dataset=mini_arith"], "dataset.mini_arith", schema.MiniArithConfig),
        (["dataset=arithmetic"], "dataset.arithmetic", schema.ArithmeticConfig),
        (["peft=lora"], "peft.lora", schema.LoraConfig),
    ],
)
def test_schema_defaults_equal_the_option_that_sets_each_section(overrides, path, cls):
    node = composed("~experiment", *overrides) if "experiment=mini" not in overrides else composed(*overrides)
    for part in path.split("."):
        node = node[part]
    assert disagreements(cls, node, path) == []


def _leaves(node: Any, path: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, val in node.items() for k, v in _leaves(val, f"{path}.{key}" if path else key).items()}
    return {path: node}


def _preset_lines(path: Path) -> dict[str, Any]:
    """A preset file's own keys (its defaults list and package header aside)."""
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("defaults", None)
    return _leaves(data)


@pytest.mark.parametrize("preset", ["rs1", "rs2", "rs3"])
def test_paper_presets_set_only_what_differs_from_the_base(preset):
    base = _leaves(composed("~experiment"))
    own = _preset_lines(CONF_DIR / "experiment" / f"{preset}.yaml")
    restated = sorted(k for k, v in own.items() if k != "experiment" and base.get(k) == v)
    assert restated == [], f"{preset}.yaml restates the base: {restated}"


@pytest.mark.parametrize(("preset", "parent"), [("a40x4_colocate", "a40x4"), ("a40x1", "a40x4"), ("cpu", "a40x4")])
def test_hardware_presets_set_only_what_differs_from_their_parent(preset, parent):
    data = yaml.safe_load((CONF_DIR / "hardware" / f"{preset}.yaml").read_text())
    assert data["defaults"][0] == parent, f"{preset}.yaml should build on {parent}"
    base = yaml.safe_load((CONF_DIR / "hardware" / f"{parent}.yaml").read_text())
    restated = sorted(k for k, v in _preset_lines(CONF_DIR / "hardware" / f"{preset}.yaml").items() if base.get(k) == v)
    assert restated == [], f"{preset}.yaml restates {parent}: {restated}"


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return getattr(x, "value", x)


# What the structure pass changed on purpose: a key renamed (it never turned off only the text diagnostics), and
# the keys Hydra's instantiate needs to build peft.LoraConfig (the same task type the hand-written builder passed).
RENAMED = {"diagnostics.enabled": "diagnostics.text"}
ADDED = {"peft.lora._target_": "peft.LoraConfig", "peft.lora.task_type": "CAUSAL_LM"}


@pytest.mark.parametrize("preset", ["rs1", "rs2", "rs3", "smoke", "mini", "gpu_check"])
def test_presets_compose_to_the_configs_captured_before_the_pass(preset):
    captured = {RENAMED.get(k, k): v for k, v in _leaves(json.loads((FIXTURES / f"{preset}.json").read_text())).items()}
    now = _leaves(_plain(dataclasses.asdict(to_run_config(compose([f"experiment={preset}"])))))
    changed = {k: (v, now.get(k)) for k, v in captured.items() if now.get(k) != v}
    added = {k: now[k] for k in set(now) - set(captured)}
    assert changed == {} and added == ADDED, (changed, added)
