#!/usr/bin/env bash
# The one script a GPU session runs on a GPU machine (which may have no Node.js): builds the native GPU tools, checks
# every CUDA kernel against the CPU (joule_cuda_check), times Joule (joule_cuda_bench) and PyTorch/cuBLAS
# (bench/gpu_torch.py) in the same run, and compares them (bench/gpu_compare.py).
#
#   OUT=/path/to/results scripts/gpu-check.sh      (or: scripts/gpu-check.sh /path/to/results)
#
# Needs cmake (>= 3.19), nvcc, a C++17 compiler and python3 with PyTorch; ninja is used when present. Everything it
# writes goes to $OUT (at most 8 files, so that a device session gets them all back):
#   gpu-check.log  this script's own output (the machine, each step, the comparison)
#   build.log      the configure and build output
#   check.log      joule_cuda_check's output (PASS/FAIL per check, with the failure messages)
#   bench.log      joule_cuda_bench's output; the bench writes its JSON into $OUT itself
#   torch_gpu_bench.json, gpu_compare.md
# It keeps going after a failed step (each step's exit status is recorded and shown at the end) and puts a time
# limit on every step, so that the whole run fits in about 8 minutes (GPU_CHECK_BUDGET_S, default 470 s) and a hang
# cannot eat the session. Exit status: 0 when every step succeeded, else 1.
#
# Environment: JOULE_GPU_ARCH (default 90: only the H200's architecture, to save build time),
# JOULE_GPU_BUILD_DIR (default /tmp/joule-gpu-build, outside the working tree), GPU_CHECK_BUDGET_S.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

OUT="${1:-${OUT:-}}"
if [ -z "$OUT" ]; then
  echo "usage: OUT=/path/to/results scripts/gpu-check.sh   (or scripts/gpu-check.sh /path/to/results)" >&2
  exit 64
fi
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
BUILD="${JOULE_GPU_BUILD_DIR:-/tmp/joule-gpu-build}"
ARCH="${JOULE_GPU_ARCH:-90}"
BUDGET="${GPU_CHECK_BUDGET_S:-470}"
mkdir -p "$BUILD"
STEPS="$BUILD/steps.tsv"
: >"$STEPS"
rm -f "$BUILD/check.json"  # an earlier run's result must not be reported as this one's
START=$(date +%s)
FAILED=0

# Everything this script prints also goes to $OUT/gpu-check.log.
exec > >(tee "$OUT/gpu-check.log") 2>&1
TEE_PID=$!

say() { printf '\n=== %s (%ds into the run)\n' "$*" "$(($(date +%s) - START))"; }

# The seconds a step may take: its own cap, but never past the budget minus what later steps are promised.
limit() {
  local cap=$1 reserve=$2 left
  left=$((BUDGET - ($(date +%s) - START) - reserve))
  [ "$left" -lt "$cap" ] && cap=$left
  [ "$cap" -lt 5 ] && cap=5
  echo "$cap"
}

# step NAME CAP RESERVE LOG COMMAND...: runs COMMAND under a time limit, its output to the screen and to LOG (appended),
# and records NAME, exit status, seconds and a note in $STEPS.
step() {
  local name=$1 cap=$2 reserve=$3 log=$4 t0 rc secs lim note=""
  shift 4
  lim=$(limit "$cap" "$reserve")
  say "$name (limit ${lim}s): $*"
  t0=$(date +%s)
  timeout -k 10 "$lim" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  secs=$(($(date +%s) - t0))
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note="timed out after ${lim}s"; fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$note" >>"$STEPS"
  [ "$rc" -ne 0 ] && FAILED=1
  echo "--- $name: exit $rc in ${secs}s${note:+ ($note)}"
  return "$rc"
}

skip() {
  printf '%s\t-\t0\t%s\n' "$1" "skipped: $2" >>"$STEPS"
  FAILED=1
  say "$1 skipped: $2"
}

# ---- tools: cmake and ninja may live only in the PyTorch venv's bin folder
PYBIN=$(dirname "$(command -v python3 2>/dev/null || echo /usr/bin/python3)")
find_tool() {
  command -v "$1" 2>/dev/null && return
  [ -x "$PYBIN/$1" ] && { echo "$PYBIN/$1"; return; }
  [ -x "/usr/local/cuda/bin/$1" ] && { echo "/usr/local/cuda/bin/$1"; return; }
  return 1
}
CMAKE=$(find_tool cmake)
NINJA=$(find_tool ninja)
NVCC=$(find_tool nvcc)
JOBS=$(nproc 2>/dev/null || echo 4)

say "machine"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host: $(uname -srm), $JOBS CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) memory"
  if command -v git >/dev/null && git rev-parse HEAD >/dev/null 2>&1; then
    echo "tree: $(git rev-parse --short HEAD) with $(git status --porcelain 2>/dev/null | wc -l) changed/untracked paths"
  fi
  if command -v nvidia-smi >/dev/null; then
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
      --format=csv 2>&1
    timeout 20 nvidia-smi 2>&1 | head -20
  else
    echo "nvidia-smi: not found"
  fi
  echo "nvcc: ${NVCC:-not found}"; [ -n "$NVCC" ] && "$NVCC" --version | tail -2
  echo "cmake: ${CMAKE:-not found}"; [ -n "$CMAKE" ] && "$CMAKE" --version | head -1
  echo "ninja: ${NINJA:-not found}"; [ -n "$NINJA" ] && echo "ninja $("$NINJA" --version)"
  echo "c++: $(c++ --version 2>&1 | head -1)"
  echo "python3: $(command -v python3) $(python3 --version 2>&1)"
  timeout 60 python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1 | tail -1
} 2>&1

# ---- build: joule_core, joule_cuda_check, joule_cuda_bench (only this GPU's architecture)
: >"$OUT/build.log"
if [ -z "$CMAKE" ]; then
  skip build "no cmake found (PATH or $PYBIN)"
else
  GEN=()
  [ -n "$NINJA" ] && GEN=(-G Ninja -DCMAKE_MAKE_PROGRAM="$NINJA")
  # CMakeLists.txt looks in /usr/local/cuda/bin itself; elsewhere, CUDACXX points CMake at nvcc. (Not
  # -DCMAKE_CUDA_COMPILER: a value that differs from a cached one makes CMake drop the whole cache, our options too.)
  [ -n "$NVCC" ] && [ ! -x /usr/local/cuda/bin/nvcc ] && export CUDACXX="$NVCC"
  # Stale executables from an earlier run must not be taken for this run's.
  rm -f "$BUILD/joule_cuda_check" "$BUILD/joule_cuda_bench"
  # Reserves: the check 100 s, the bench 90 s, PyTorch 70 s, the comparison 10 s.
  step configure 90 270 "$OUT/build.log" "$CMAKE" -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DJOULE_CUDA=ON -DJOULE_CUDA_ARCHITECTURES="$ARCH" -DJOULE_BUILD_GPU_TOOLS=ON
  # The check first: a compile error in the bench must not cost the correctness run.
  step build-check 240 270 "$OUT/build.log" "$CMAKE" --build "$BUILD" --target joule_cuda_check -j "$JOBS"
  if grep -q joule_cuda_bench "$BUILD/build.ninja" "$BUILD/Makefile" 2>/dev/null; then
    step build-bench 240 250 "$OUT/build.log" "$CMAKE" --build "$BUILD" --target joule_cuda_bench -j "$JOBS"
  else
    skip build-bench "no joule_cuda_bench target (cuda/tools/bench.cpp missing?)"
  fi
fi

# ---- correctness: every CUDA kernel against the CPU
if [ -x "$BUILD/joule_cuda_check" ]; then
  step check 150 170 "$OUT/check.log" "$BUILD/joule_cuda_check" --timeout 60 --json "$BUILD/check.json"
else
  skip check "joule_cuda_check was not built (see build.log)"
fi

# ---- speed: Joule, then PyTorch on the same GPU
if [ -x "$BUILD/joule_cuda_bench" ]; then
  step bench 150 80 "$OUT/bench.log" "$BUILD/joule_cuda_bench" "$OUT"
else
  skip bench "joule_cuda_bench was not built"
fi
step torch 120 10 "$BUILD/torch.log" env PYTHONUNBUFFERED=1 python3 "$ROOT/bench/gpu_torch.py" "$OUT"

# ---- the report (also the last thing printed, so that it ends the device tool's output tail)
say "comparison"
printf '%s\t%s\t%s\t%s\n' "total" "$FAILED" "$(($(date +%s) - START))" "1 = some step failed" >>"$STEPS"
timeout 30 python3 "$ROOT/bench/gpu_compare.py" --dir "$OUT" --check-json "$BUILD/check.json" \
  --check-log "$OUT/check.log" --steps "$STEPS" --out "$OUT/gpu_compare.md" ||
  { echo "gpu_compare.py failed; the steps were:"; cat "$STEPS"; FAILED=1; }

# The device tool brings back at most 8 files: pack the rest rather than lose it.
count=$(find "$OUT" -type f | wc -l)
if [ "$count" -gt 8 ]; then
  echo "more than 8 files in $OUT ($count): packing all but gpu-check.log and gpu_compare.md into logs.tar.gz"
  (cd "$OUT" && find . -type f ! -name gpu-check.log ! -name gpu_compare.md ! -name logs.tar.gz -print0 |
    tar --null -czf logs.tar.gz -T - --remove-files)
fi
# Let tee finish writing gpu-check.log before the script (and with it the device command) ends.
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit "$FAILED"
