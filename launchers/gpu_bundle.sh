#!/usr/bin/env bash
# Build, on a CPU machine with a package index, the wheels an offline GPU machine needs for `make gpu-check`
# beyond what it already has (torch, transformers, accelerate, peft, tensorboard and their dependencies).
#
#   PY=.venv/bin/python bash launchers/gpu_bundle.sh [OUT_DIR]        # OUT_DIR defaults to .whl (git-ignored)
#
# Versions are this venv's (the set the tests ran with). Wheels with compiled code (pyarrow and pandas, which
# datasets and trl require, and a few small ones) are fetched for the target interpreter and platform
# (TARGET_PY, TARGET_PLATFORMS); the two projects published only as source (antlr4-python3-runtime 4.9.3 and
# deepspeed) are built here as pure-Python wheels (DS_BUILD_OPS=0: DeepSpeed compiles an op only when one is
# used, and ZeRO-2 with the Trainer's AdamW uses none; optimizer offload needs CPU Adam: prebuild it on the GPU
# machine with DS_BUILD_CPU_ADAM=1, README "First GPU run"). Everything is fetched --no-deps: the list below is the
# closure the GPU machine may lack. The wheels are split into parts of at most PART_MIB MiB (OUT_DIR/part1,
# part2, ...), for transports with a size limit. Install them there with pip resolving against what is already
# installed, so a package the machine has is kept and only what is missing comes from the bundle:
#   pip install --no-index --find-links .whl/part1 --find-links .whl/part2 \
#       trl datasets hydra-core math-verify submitit hydra-submitit-launcher deepspeed
# (benchmarks/README.md has the whole recipe).
set -euo pipefail

PY=${PY:-.venv/bin/python}
OUT=${1:-.whl}
TARGET_PY=${TARGET_PY:-3.12}
TARGET_PLATFORMS=${TARGET_PLATFORMS:-"manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64"}
PART_MIB=${PART_MIB:-56}

# What openrs imports on the training path, and their dependencies missing beside torch/transformers/accelerate/peft.
PACKAGES=(
    trl datasets pyarrow pandas python-dateutil tzdata dill multiprocess xxhash
    hydra-core omegaconf math-verify latex2sympy2_extended submitit cloudpickle hydra-submitit-launcher
    einops hjson msgpack ninja py-cpuinfo pydantic pydantic_core annotated-types typing-inspection
    accelerate fsspec  # present there, but possibly outside trl's and datasets' bounds: pip takes these only then
)
SOURCE_ONLY=(antlr4-python3-runtime deepspeed)

pin() {  # name==version as installed in $PY's environment
    "$PY" -c "import importlib.metadata as m, sys; print(f'{sys.argv[1]}=={m.version(sys.argv[1])}')" "$1"
}

staging="$OUT/.staging"
rm -rf "$staging" && mkdir -p "$staging"
platform_args=()
for p in $TARGET_PLATFORMS; do platform_args+=(--platform "$p"); done
pins=()
for p in "${PACKAGES[@]}"; do pins+=("$(pin "$p")"); done
"$PY" -m pip download --no-deps --only-binary=:all: --python-version "$TARGET_PY" --implementation cp \
    "${platform_args[@]}" -d "$staging" "${pins[@]}"
source_pins=()
for p in "${SOURCE_ONLY[@]}"; do source_pins+=("$(pin "$p")"); done
DS_BUILD_OPS=0 "$PY" -m pip wheel --no-deps --no-build-isolation -w "$staging" "${source_pins[@]}"

# Largest first, each wheel into the first part it fits in.
rm -rf "$OUT"/part*
limit=$((PART_MIB * 1024 * 1024))
declare -a used=()
while read -r size file; do
    (( size > limit )) && { echo "$file alone is over PART_MIB=$PART_MIB MiB" >&2; exit 1; }
    i=0
    while (( i < ${#used[@]} )) && (( used[i] + size > limit )); do i=$((i + 1)); done
    used[i]=$(( ${used[i]:-0} + size ))
    mkdir -p "$OUT/part$((i + 1))" && mv "$file" "$OUT/part$((i + 1))/"
done < <(find "$staging" -name '*.whl' -printf '%s %p\n' | sort -rn)
rm -rf "$staging"

for d in "$OUT"/part*; do echo "$d: $(ls "$d" | wc -l) wheels, $(du -sb "$d" | awk '{printf "%.1f MiB", $1 / 1048576}')"; done
echo "bundle: $(find "$OUT"/part* -name '*.whl' | wc -l) wheels, $(du -sbc "$OUT"/part* | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}') in $OUT"
