#!/usr/bin/env bash
# The GPU checks, run from the repository root on a bare GPU machine (nothing downloaded: the models are built
# with random weights in the Phi-4 shape; the Python packages the image lacks travel as wheels in .whl/):
#
#   bash eval/bench/gpu_checks.sh OUT bench bench-large train     # within DEADLINE seconds (default 540)
#
#   bench   eval/bench/train_gpu.py: Imprint's training step vs plain HF peft, one run, JSON + table
#   bench-large   Imprint's step (checkpointing on) at 16384 useful tokens per step
#   train   real training jobs (python -m training.train, as `imprint train` runs them) on a random
#           Phi-4-shaped base: bf16, then 4-bit (QLoRA) while time is left
#
# Each phase gets at most the time left before DEADLINE, so a slow one cannot eat the others' results.
# .whl/ (git-ignored; `pip download --no-deps` for the GPU machine's Python): liger-kernel, bitsandbytes, and what
# the training package needs beyond a CUDA PyTorch image — Imprint's transformers and peft pins, pydantic,
# pydantic-settings (+ pydantic-core, annotated-types, typing-inspection, python-dotenv, typing-extensions),
# regex and jieba.
set -uo pipefail
out=${1:?OUT folder}
shift
mkdir -p "$out"
scratch=$(mktemp -d) # the wheels' install target, the model folder, the jobs' homes
trap 'rm -rf "$scratch"' EXIT
deadline=${DEADLINE:-540}
left() { # seconds left before the deadline, capped at $1
  local rest=$((deadline - SECONDS))
  ((rest < $1)) && echo "$rest" || echo "$1"
}
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$scratch/site" \
    .whl/*.whl 2>&1 | grep -v -i "warn"
  export PYTHONPATH=$scratch/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)"

for phase in "$@"; do
  case "$phase" in
  bench)
    timeout "$(left "${BENCH_S:-300}")" python3 -m eval.bench.train_gpu --out "$out/train_bench_gpu.json" 2>&1 |
      grep -v -i "warn" | tee "$out/bench.log"
    ;;
  bench-large)
    timeout "$(left "${BENCH_S:-300}")" python3 -m eval.bench.train_gpu --step-tokens 16384 --steps 3 \
      --variants imprint-ckpt --out "$out/train_bench_gpu_16k.json" 2>&1 | grep -v -i "warn" | tee "$out/bench-16k.log"
    ;;
  train)
    model=$scratch/phi4-shaped
    start=$SECONDS
    timeout "$(left 150)" python3 -m eval.bench.train_gpu --save-model "$model" ${LAYERS:+--layers $LAYERS} ||
      continue
    echo "random Phi-4-shaped base written in $((SECONDS - start)) s: $(du -sh $model | cut -f1)"
    for variant in ${TRAIN_VARIANTS:-bf16 4bit}; do
      ((deadline - SECONDS < 90)) && echo "no time left for the $variant job" && break
      flag=false
      [ "$variant" = 4bit ] && flag=true
      home=$scratch/imprint-$variant
      IMPRINT_HOME=$home IMPRINT_TRAIN_BASE_MODEL=$model IMPRINT_TRAIN_LOAD_IN_4BIT=$flag \
        IMPRINT_TRAIN_OUTPUT=$home/adapter IMPRINT_TRAIN_PROGRESS=false \
        timeout "$(left "${TRAIN_S:-240}")" python3 -m training.train eval/examples/family/train.jsonl 2>&1 |
        grep -v -i "warn" | tee "$out/train-$variant.log"
      cp "$home/adapter/metrics.json" "$out/metrics-$variant.json" 2>/dev/null
    done
    ;;
  esac
done
echo "done in $SECONDS s"
ls -la "$out"
