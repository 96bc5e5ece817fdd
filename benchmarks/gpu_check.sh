#!/usr/bin/env bash
# GPU readiness check of reidnb (issue 13): one script, meant to take < 8 min on one GPU.
#
#   benchmarks/gpu_check.sh [--cpu-dry] [--list] [OUT_DIR]   (OUT_DIR relative to the repository
#                                                             root; default outputs/gpu_check)
#
# Steps, each timed:
#   1. pytest -m gpu                    the CUDA tests (bf16 + channels_last vs fp32, engine, ...)
#   2. train_throughput.py --backbone   training img/s, fp32 vs bf16+channels_last: ResNet-50
#                                       256x128 and 384x192, DGD 144x56, ResNet-101 224x224;
#                                       rows appended to the user-local throughput table
#                                       (reidnb.core.cost.user_table_path(): $REIDNB_THROUGHPUT or
#                                       ~/.cache/reidnb/throughput.csv) that the notebooks' cost
#                                       estimate reads, and to OUT_DIR/throughput.csv
#   3. torchrun --nproc_per_node=1 benchmarks/ddp_smoke.py     DDP / NCCL smoke
#   4. python -m reidnb report --profile paper --dataset synthetic -p max_iters=50
#      -p batch_size=16, once per paper notebook (01-04): every code path of the paper
#      profile on the synthetic set (ImageNet weights when they load, else random init)
#
# --cpu-dry (or REIDNB_GPU_CHECK_CPU_DRY=1): a tiny self-check on a machine without a GPU:
#   step 1 (skips), step 2 with ResNet-18 at 64x32 on the CPU (rows to OUT_DIR only, never the
#   user table), step 3 on gloo; step 4 only printed.
# --list: print the commands of every step and exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python; fi
fi
TORCHRUN="$(dirname "$PY")/torchrun"
[[ -x "$TORCHRUN" ]] || TORCHRUN=torchrun

CPU_DRY="${REIDNB_GPU_CHECK_CPU_DRY:-0}"
LIST=0
OUT=outputs/gpu_check
for arg in "$@"; do
  case "$arg" in
    --cpu-dry) CPU_DRY=1 ;;
    --list) LIST=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $arg (expected --cpu-dry, --list, OUT_DIR)" >&2; exit 2 ;;
    *) OUT="$arg" ;;
  esac
done

TP="$PY benchmarks/train_throughput.py --num-classes 751"
if [[ "$CPU_DRY" == 1 ]]; then
  PYTEST_CMD="$PY -m pytest -q -m gpu tests/test_gpu.py"
  THROUGHPUT_CMDS=("$TP --device cpu --backbone resnet18 --height 64 --width 32 --batch-size 4 --iters 1 --warmup 0 --append $OUT/throughput.csv")
  DDP_CMD="$TORCHRUN --standalone --nproc_per_node=1 benchmarks/ddp_smoke.py --device cpu --steps 2"
else
  PYTEST_CMD="$PY -m pytest -q -m gpu"
  TPG="$TP --device cuda --precision both --warmup 5 --append user"
  THROUGHPUT_CMDS=(
    "$TPG --backbone resnet50 --height 256 --width 128 --batch-size 64 --iters 30"
    "$TPG --backbone resnet50 --height 384 --width 192 --batch-size 64 --iters 20"
    "$TPG --backbone dgd --height 144 --width 56 --batch-size 64 --iters 30"
    "$TPG --backbone resnet101 --height 224 --width 224 --batch-size 128 --iters 10"
  )
  DDP_CMD="$TORCHRUN --standalone --nproc_per_node=1 benchmarks/ddp_smoke.py --device cuda"
fi
# the notebooks run on the GPU only (printed, not run, by --cpu-dry)
REPORT="$PY -m reidnb report --profile paper --dataset synthetic --device cuda --output-dir $OUT/report -p max_iters=50 -p batch_size=16"
NOTEBOOK_CMDS=(
  "$REPORT --only 01 -p runs=1"
  "$REPORT --only 02"
  "$REPORT --only 03"
  "$REPORT --only 04"
)

if [[ "$LIST" == 1 ]]; then
  echo "[1 gpu tests] $PYTEST_CMD"
  for c in "${THROUGHPUT_CMDS[@]}"; do echo "[2 throughput] $c"; done
  echo "[3 ddp smoke] $DDP_CMD"
  for c in "${NOTEBOOK_CMDS[@]}"; do echo "[4 notebooks] $c"; done
  exit 0
fi

mkdir -p "$OUT"
T0=$(date +%s.%N)
SUMMARY=()
step() {   # step NAME CMD...: run, time, remember the time
  local name="$1"; shift
  echo
  echo "=== $name: $*"
  local t=$(date +%s.%N)
  "$@"
  local dt
  dt=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "=== $name: ${dt} s"
  SUMMARY+=("$(printf '%-44s %8s s' "$name" "$dt")")
}

if [[ "$CPU_DRY" == 1 ]]; then
  echo "gpu_check.sh --cpu-dry: no GPU used (self-check of the script on the CPU)"
else
  command -v nvidia-smi >/dev/null || { echo "gpu_check.sh: nvidia-smi not found (no NVIDIA GPU?); use --cpu-dry" >&2; exit 1; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())"
fi

step "1 pytest -m gpu" $PYTEST_CMD
i=0
for c in "${THROUGHPUT_CMDS[@]}"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  step "2.$i throughput" $c
done
if [[ "$CPU_DRY" != 1 ]]; then
  # keep a copy of the rows appended to the user-local table beside this run's outputs
  $PY -c "from reidnb.core import cost; import shutil; p = cost.user_table_path(); shutil.copy(p, '$OUT/throughput.csv'); print('throughput table:', p, '(copy in $OUT/throughput.csv)')"
fi
# shellcheck disable=SC2086
step "3 torchrun DDP smoke" $DDP_CMD
if [[ "$CPU_DRY" == 1 ]]; then
  echo
  echo "=== 4 notebooks: skipped in --cpu-dry (paper-size networks); on the GPU box:"
  for c in "${NOTEBOOK_CMDS[@]}"; do echo "    $c"; done
else
  j=0
  for c in "${NOTEBOOK_CMDS[@]}"; do
    j=$((j + 1))
    # shellcheck disable=SC2086
    step "4.$j notebook $(echo "$c" | grep -o -- '--only [0-9]*')" $c
  done
fi

TOTAL=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo
echo "=== gpu_check summary ($([[ "$CPU_DRY" == 1 ]] && echo "CPU dry run" || echo "GPU"); outputs in $OUT)"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
echo "  total                                        ${TOTAL} s (budget 480 s on one GPU)"
echo "gpu_check OK"
