#!/usr/bin/env bash
# One prepared benchmark run for the GPU machine (issue 11): paper-size recipes through
# `framework bench` on synthetic batches (compiled, as the paper recipes set train.compile),
# M3AE and MaskVLM side by side with their plain eager PyTorch references, and M3AE eager. The machine lacks deepspeed, jsonschema, webdataset and their
# needs: carry build/wheels (see docs/performance.md) and framework.egg-info (entry points).
#   bash benchmarks/gpu.sh            # paper sizes; results to $OUT (or benchmarks/results/gpu)
#   SET=tiny bash benchmarks/gpu.sh   # the same script on tiny recipes, to check it on a CPU
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}
PY=${PY:-python3}
mkdir -p "$OUT" /tmp/bench
if ls build/wheels/*.whl >/dev/null 2>&1 && ! $PY -c "import deepspeed" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site build/wheels/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/machine.txt"
$PY -c "import torch, deepspeed, timm, transformers; print('torch', torch.__version__, 'deepspeed', deepspeed.__version__, 'timm', timm.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/machine.txt"

if [ "${SET:-paper}" = tiny ]; then
  STEPS="--steps 1 --warmup 1"
  RUNS=(
    "m3ae-tiny 16 200 --compare-reference"
    "maskvlm-tiny 16 300 --compare-reference"
  )
else
  STEPS="--steps 8 --warmup 3"
  RUNS=(
    "m3ae 256 30522 --compare-reference"
    "maskvlm 128 50265 --compare-reference"
    "m3ae 256 30522 --set train.compile=false"
    "vlmae 128 30522"
    "mamo 128 30522"
    "albef 128 30522"
  )
fi

# Runs go in order of importance; none starts after TOTAL_S seconds, so the whole script
# returns within one device call (compiling a paper-size model takes a minute or two).
for run in "${RUNS[@]}"; do
  read -r name batch vocab extra <<<"$run"
  if [ "$SECONDS" -gt "${TOTAL_S:-420}" ]; then
    echo "skipped $name $extra: past TOTAL_S=${TOTAL_S:-420} s" | tee -a "$OUT/log.txt"
    continue
  fi
  tag="$name-b$batch$(printf '%s' "$extra" | tr -cs 'a-z0-9' '-')"
  echo "=== $tag"
  # One process: ZeRO partitions nothing, so every recipe runs at stage 0 (see docs/performance.md).
  timeout "${PER_RUN_S:-240}" $PY -m framework.cli bench "recipes/$name.json" --data synthetic --batch "$batch" \
    --vocab-size "$vocab" --set deepspeed.zero_stage=0 $STEPS $extra --output "/tmp/bench/$tag.json" 2>&1 | grep -v -E "^\[20[0-9-]+ |Warning|warn\(" | tee -a "$OUT/log.txt"
  if [ -f "/tmp/bench/$tag.json" ]; then
    $PY -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" "/tmp/bench/$tag.json" >> "$OUT/results.jsonl"
  else
    echo "no result for $tag" | tee -a "$OUT/log.txt"
  fi
done
