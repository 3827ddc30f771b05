#!/bin/sh
# Rewrites tests/golden/expected/ from the current dispatch-gen's output.
# Usage: tests/golden/update.sh [BUILD_DIR]   (default: build)
# Review the diff (git diff tests/golden/expected) before committing it.
set -eu
build=${1:-build}
cmake --build "$build" --target golden_update
