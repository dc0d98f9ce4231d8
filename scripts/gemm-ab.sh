#!/usr/bin/env bash
# A/B of the CPU GEMM: BASE (a commit) against the working tree, in one process, call by call
# (bench/gemm_ab.cpp). Needs a dev build (scripts/dev-build.sh) for the FMA peak probe.
#   scripts/gemm-ab.sh BASE THREADS SECONDS MxKxN[NN|NT|TN|TT] ...
# e.g. scripts/gemm-ab.sh HEAD 1 8 1024x1024x1024 256x784x1024NT
# BASE = openblas: side A is numpy's OpenBLAS with the kernel it picks for this CPU (the machine's
# environment may set OPENBLAS_CORETYPE=Haswell, which is unset here; GEMM_AB_CORETYPE=Haswell
# forces its AVX2 kernel); 1 thread only (idle workers of one library spin and slow the other's
# next call).
# GEMM_AB_BETA=1: C += A B on both sides (as bench/gemm.ts times addmm_); default C = A B.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$1; shift
if [ "$base" = openblas ]; then
  GEMM_AB_OPENBLAS=$(python3 -c 'import glob, os, numpy; d = os.path.join(os.path.dirname(numpy.__file__), "..", "numpy.libs"); print(glob.glob(d + "/libscipy_openblas64_*.so")[0])')
  export GEMM_AB_OPENBLAS
  if [ -n "${GEMM_AB_CORETYPE:-}" ]; then export OPENBLAS_CORETYPE=$GEMM_AB_CORETYPE; else unset OPENBLAS_CORETYPE; fi
  base=HEAD
fi
work=$(mktemp -d /tmp/joule-gemm-ab.XXXXXX)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
# The GEMM and what it links against, with namespace joule renamed per side.
sources=(kernels/gemm/gemm.cpp kernels/gemm/gemm_avx512.cpp kernels/gemm/gemm_avx2.cpp kernels/gemm/gemm_generic.cpp
         core/threadpool.cpp core/cpu_features.cpp core/error.cpp)
compile() {  # root namespace outdir
  mkdir -p "$3"
  for f in "${sources[@]}"; do
    g++ -O3 -DNDEBUG -std=gnu++17 -D"joule=$2" -I"$1/cpp" -c "$1/cpp/$f" -o "$3/$(basename "$f" .cpp).o" &
  done
  wait
}
compile "$work/base" ja "$work/a"
compile "$PWD" jb "$work/b"
g++ -O2 -std=gnu++17 bench/gemm_ab.cpp "$work"/a/*.o "$work"/b/*.o build/libjoule_core.a -lpthread -ldl -o "$work/gemm_ab"
"$work/gemm_ab" "$@"
