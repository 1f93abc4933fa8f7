"""One source for each default: conf/ holds the values; a dataclass default (kept so code can build the dataclass
directly) must equal the YAML value it mirrors, reward terms' parameters included. Presets say only what differs from
what they build on, and compose to their snapshots (tests/preset_snapshots.py regenerates them: `make snapshots`)."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf
from preset_snapshots import FIXTURES, PRESETS, snapshot

import openrs.config as schema
from openrs.config import CONF_DIR, compose

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
        section = next(
            (t for t in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(t)), None
        )
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


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_compose_to_their_snapshots(preset):
    """A failure here after an intended change: regenerate with `make snapshots` and review `git diff`."""
    kept = _leaves(json.loads((FIXTURES / f"{preset}.json").read_text()))
    now = _leaves(snapshot(preset))
    changed = {k: (v, now.get(k)) for k, v in kept.items() if now.get(k) != v}
    added = {k: now[k] for k in set(now) - set(kept)}
    assert changed == {} and added == {}, (changed, added)


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "reward").glob("*.yaml")))
def test_reward_term_defaults_equal_every_reward_option(option):
    """Each term's typed parameters (openrs.rewards.params) mirror the values conf/reward/ writes for it."""
    from openrs.rewards.terms import term_class

    node = yaml.safe_load((CONF_DIR / "reward" / f"{option}.yaml").read_text())
    found = []
    for name, term in node["terms"].items():
        found += disagreements(term_class(name).PARAMS, term.get("params") or {}, f"reward.terms.{name}.params")
    assert found == []
