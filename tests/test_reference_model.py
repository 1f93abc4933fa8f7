"""The KL reference model starts where the policy starts: at its pinned hub revision.

TRL 1.16 builds the reference model itself, from the loaded policy's name and ``GRPOConfig.model_init_kwargs``; the
test serves a model with two revisions from a local Hugging Face cache (offline), pins the older one, and compares
the weights of policy and reference with each revision's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from openrs.config import compose, to_run_config
from openrs.models.tiny import tiny_model_dir

REPO = Path(__file__).resolve().parents[1]
HUB_ID = "openrs-test/tiny-two-revisions"
MAIN, PINNED = "a" * 40, "b" * 40

BUILD = r"""
import json, sys
from pathlib import Path

from openrs.config import compose, to_run_config
from openrs.runtime.worker import weights_digest
from openrs.training.trainer import build_grpo_trainer

trainer = build_grpo_trainer(to_run_config(compose(json.loads(sys.argv[1]))), Path(sys.argv[2]))
print(json.dumps({"policy": weights_digest(trainer.model), "reference": weights_digest(trainer.ref_model)}))
"""


def _digest(directory: Path) -> str:
    from transformers import AutoModelForCausalLM

    from openrs.runtime.worker import weights_digest

    return weights_digest(AutoModelForCausalLM.from_pretrained(directory))


def _hub_cache_with_two_revisions(root: Path) -> dict[str, Path]:
    """A Hugging Face cache holding HUB_ID at two commits (tiny models of two init seeds); main is MAIN."""
    repo = root / "hub" / f"models--{HUB_ID.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(MAIN)
    snapshots = {}
    for commit, seed in ((MAIN, 0), (PINNED, 1)):
        tiny = to_run_config(compose(["experiment=smoke", f"model.tiny.init_seed={seed}"])).model.tiny
        snapshots[commit] = repo / "snapshots" / commit
        shutil.copytree(tiny_model_dir(tiny), snapshots[commit])
    return snapshots


@pytest.mark.slow
def test_the_reference_model_is_built_at_the_policys_pinned_revision(tmp_path):
    snapshots = _hub_cache_with_two_revisions(tmp_path / "hf")
    main, pinned = _digest(snapshots[MAIN]), _digest(snapshots[PINNED])
    assert main != pinned
    overrides = [
        "experiment=smoke",
        "model=r1_distill_qwen_1_5b",
        f"model.name_or_path={HUB_ID}",
        f"model.revision={PINNED}",
        "model.dtype=float32",
        "model.attn_implementation=eager",
        "model.gradient_checkpointing=false",
        "grpo.beta=0.04",  # a KL term, so TRL builds a reference model
    ]
    out = subprocess.run(
        [sys.executable, "-c", BUILD, json.dumps(overrides), str(tmp_path / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    digests = json.loads(out.stdout.strip().splitlines()[-1])
    assert digests["policy"] == pinned, "the policy did not start at the pinned revision"
    assert digests["reference"] == pinned, "the KL reference model was built from another revision than the policy"
    assert "model_init_kwargs` will be ignored" not in out.stderr
