#!/usr/bin/env bash
# Incremental CPU-only build of the addon for development, serialised with a lock so that
# several builds started at once do not corrupt build/ (the full build: npm run build).
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/joule-dev-build.lock node node_modules/cmake-js/bin/cmake-js compile --out build --CDJOULE_CUDA=OFF --parallel 2 "$@"
