#!/usr/bin/env bash
# The test command from the README: installs what is missing, builds
# everything (warnings are errors), bench/ included so its binaries cannot
# rot unseen and its tests and smoke runs (label bench, about 25 s; no
# benchmark) are in the suite, and runs the whole ctest suite.
# Idempotent; reuses build/ when present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDISPATCH_WERROR=ON \
  -DDISPATCH_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
