#!/usr/bin/env bash
# One prepared benchmark run for the GPU machine (issues 11, 21): paper-size recipes through
# `framework bench` on synthetic batches, at ZeRO stage 0 (one process partitions nothing),
# compiled as the paper recipes set train.compile: MFU, samples/s beside the plain eager
# PyTorch reference (MaskVLM, M3AE), peak memory, and MaskVLM at batch 512 with and without
# train.activation_checkpointing (eager, so neither pays a compile) for the checkpointing cost.
# The machine has torch, timm and transformers but no package index: carry build/wheels
# (built with `pip wheel --no-deps`, see docs/performance.md) and framework.egg-info (the
# entry points); only the wheels of modules the machine lacks are installed.
#   bash benchmarks/gpu.sh            # paper sizes; results to $OUT (or benchmarks/results/gpu)
#   SET=tiny bash benchmarks/gpu.sh   # the same script on tiny recipes, to check it on a CPU
# DEADLINE_S (540) bounds the whole script: a run gets at most PER_RUN_S (240) and what is
# left before the deadline, and none starts with under MIN_RUN_S (60) left, so it returns
# within one 10-minute device call.
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}
PY=${PY:-python3}
DEADLINE_S=${DEADLINE_S:-540}
mkdir -p "$OUT" /tmp/bench
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

# Distributions the framework needs beyond torch/timm/transformers, and the module each provides.
missing=$($PY - <<'EOF'
import importlib.util
needs = {"deepspeed": "deepspeed", "hjson": "hjson", "pydantic": "pydantic", "pydantic_core": "pydantic_core",
         "annotated_types": "annotated_types", "typing_inspection": "typing_inspection", "jsonschema": "jsonschema",
         "jsonschema_specifications": "jsonschema_specifications", "referencing": "referencing", "rpds": "rpds_py",
         "webdataset": "webdataset", "braceexpand": "braceexpand", "pluggy": "pluggy", "einops": "einops",
         "msgpack": "msgpack", "ninja": "ninja", "cpuinfo": "py_cpuinfo", "psutil": "psutil"}
print(" ".join(dist for module, dist in needs.items() if importlib.util.find_spec(module) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "installing from build/wheels: $missing"
  wheels=()
  for dist in $missing; do
    found=$(ls build/wheels/"$dist"-*.whl build/wheels/"${dist//_/-}"-*.whl 2>/dev/null | head -1)
    [ -n "$found" ] || { echo "no wheel for $dist in build/wheels: build it here with pip wheel --no-deps (docs/performance.md)"; exit 1; }
    wheels+=("$found")
  done
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${wheels[@]}" || exit 1
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/machine.txt"
$PY -c "import sys, torch, deepspeed, timm, transformers; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'deepspeed', deepspeed.__version__, 'timm', timm.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/machine.txt" || exit 1
$PY -c "from framework.registry import default_registry; r = default_registry(); [print('plugin failure:', f) for f in r.failures]; print(len(r.specs()), 'components')" || exit 1

if [ "${SET:-paper}" = tiny ]; then
  STEPS="--steps 1 --warmup 1"
  RUNS=(
    "maskvlm-tiny 16 300 --compare-reference"
    "m3ae-tiny 16 200 --compare-reference"
    "maskvlm-tiny 32 300 --loading-images 0 --set train.activation_checkpointing=true"
    "maskvlm-tiny 32 300 --loading-images 0"
  )
else
  STEPS="--steps 8 --warmup 3"
  RUNS=(
    "maskvlm 128 50265 --compare-reference"
    "maskvlm 512 50265 --loading-images 0 --set train.compile=false --set train.activation_checkpointing=true"
    "maskvlm 512 50265 --loading-images 0 --set train.compile=false"
    "m3ae 256 30522 --compare-reference"
    "vlmae 128 30522 --loading-images 0"
    "mamo 128 30522 --loading-images 0"
    "albef 128 30522 --loading-images 0"
  )
fi

# Runs go in order of importance (compiling a paper-size model takes a minute or two).
for run in "${RUNS[@]}"; do
  read -r name batch vocab extra <<<"$run"
  left=$((DEADLINE_S - SECONDS))
  if [ "$left" -lt "${MIN_RUN_S:-60}" ]; then
    echo "skipped $name b$batch $extra: ${left}s left before DEADLINE_S=$DEADLINE_S" | tee -a "$OUT/log.txt"
    continue
  fi
  limit=$(( left < ${PER_RUN_S:-240} ? left : ${PER_RUN_S:-240} ))
  tag="$name-b$batch$(printf '%s' "$extra" | tr -cs 'a-z0-9' '-')"
  echo "=== $tag (at most ${limit}s)" | tee -a "$OUT/log.txt"
  timeout "$limit" $PY -m framework.cli bench "$name" --data synthetic --batch "$batch" --vocab-size "$vocab" \
    --set deepspeed.zero_stage=0 $STEPS $extra --output "/tmp/bench/$tag.json" 2>&1 \
    | grep -v -E "^\[20[0-9-]+ |Warning|warn\(" | tail -n 12 | tee -a "$OUT/log.txt"
  if [ -f "/tmp/bench/$tag.json" ]; then
    $PY -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" "/tmp/bench/$tag.json" >> "$OUT/results.jsonl"
  else
    echo "no result for $tag (out of memory or past its time: see the lines above)" | tee -a "$OUT/log.txt"
  fi
done

# One table of what was measured, and the activation-checkpointing cost at equal batch.
$PY - "$OUT/results.jsonl" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
print(f"{'recipe':14} {'batch':>5} {'compile':>7} {'act.ckpt':>8} {'samples/s':>9} {'MFU':>6} {'fw/ref':>6} {'peak GB':>7} {'syncs':>5}")
speed = {}
for r in rows:
    fw, opts = r["framework"], r["options"]
    ckpt = opts.get("activation_checkpointing", False)
    mfu = f"{fw['mfu']:.1%}" if fw.get("mfu") is not None else "-"
    ratio = f"{r['framework_over_reference']:.2f}" if "framework_over_reference" in r else "-"
    peak = fw.get("peak_memory_gb", fw.get("peak_rss_gb", float("nan")))
    name = Path(r["recipe"]).stem
    print(f"{name:14} {opts['batch']:>5} {str(opts['compile']):>7} {str(ckpt):>8} {fw['samples_per_s']:>9.1f} {mfu:>6} {ratio:>6} {peak:>7.1f} {fw['host_syncs_per_step']:>5}")
    speed[(name, opts["batch"], opts["compile"], bool(ckpt))] = (fw["samples_per_s"], peak)
for (name, batch, compiled, ckpt), (with_ckpt, peak) in speed.items():
    if ckpt:
        plain = speed.get((name, batch, compiled, False))
        cost = (f"{plain[0] / with_ckpt - 1:+.1%} step time, peak {plain[1]:.1f} -> {peak:.1f} GB" if plain
                else f"no plain run at this batch (out of memory or not reached); {peak:.1f} GB with it")
        print(f"activation checkpointing, {name} batch {batch}: {cost}")
EOF
