"""The sweep files in experiments/ compose, sweep the axis they name, and cite the paper's numbers."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from openrs.config import CONF_DIR, register_configs, to_run_config

EXPERIMENTS = CONF_DIR.parent / "experiments"
SWEEPS = {
    "reward": ("reward", ["accuracy", "cosine"]),
    "max_len": ("max_len", ["3584", "4096"]),
    "lr": ("lr", ["1e-06", "3e-06", "5e-06"]),
    "paper_runs": ("experiment", ["rs1", "rs2", "rs3"]),
}


def compose_sweep_file(name: str, *overrides: str, hydra_cfg: bool = False):
    """Compose experiments/<name>.yaml as ``--config-dir experiments --config-name <name>`` does."""
    register_configs()
    with initialize_config_dir(config_dir=str(EXPERIMENTS), version_base="1.3"):
        return compose(
            config_name=name,
            overrides=[f"hydra.searchpath=[file://{CONF_DIR}]", *overrides],
            return_hydra_config=hydra_cfg,
        )


def sweep_points(name: str) -> tuple[dict, list[list[str]]]:
    """The file's hydra.sweeper.params and, for each point, the override Hydra's basic sweeper would run."""
    params = dict(compose_sweep_file(name, hydra_cfg=True).hydra.sweeper.params)
    (override,) = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return params, [[f"{override.key_or_group}={v}"] for v in override.sweep_string_iterator()]


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_file_names_its_axis_and_every_point_composes(name):
    axis, values = SWEEPS[name]
    params, points = sweep_points(name)
    assert list(params) == [axis]
    assert [p[0].split("=", 1)[1] for p in points] == values
    for point in points:
        cfg = to_run_config(compose_sweep_file(name, *point))
        value = point[0].split("=", 1)[1]
        if axis == "reward":
            assert set(cfg.reward.terms) == {"format", value} and cfg.experiment == "rs2"
        elif axis == "max_len":
            assert cfg.grpo.max_completion_length == int(value)
        elif axis == "lr":
            assert cfg.optimizer.lr == float(value) and cfg.experiment == "rs3"
        else:
            assert cfg.experiment == value
        assert cfg.hardware.name == "a40x4"  # a paper setting, not the CPU smoke default


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_file_documents_its_command_and_paper_numbers(name):
    text = (EXPERIMENTS / f"{name}.yaml").read_text()
    assert f"--config-dir experiments --config-name {name}" in text
    assert "AIME24" in text and "AMC23" in text
    assert ("46.7" in text) or ("80.0" in text)  # a published number, copied from the paper's logs


def test_paper_runs_land_in_one_dir_per_run():
    cfg = compose_sweep_file("paper_runs", "experiment=rs3", hydra_cfg=True)
    assert cfg.hydra.sweep.subdir == "rs3"
