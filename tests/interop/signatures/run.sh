#!/bin/sh
# Signature interop driver (see CMakeLists.txt). Arguments:
#   WORK_DIR SIGTOOL INTEROP_CJS
# Installs the pinned package into WORK_DIR/node once, then runs the node
# side, which calls SIGTOOL. Exit 77 = skipped (registry unreachable).
set -u
work=$1 sigtool=$2 script=$3
package=http-message-signatures@1.0.6
node_dir=$work/node
mkdir -p "$node_dir" || exit 1
stamp="$node_dir/node_modules/.dispatch-installed-$package"
if [ ! -f "$stamp" ]; then
  if ! timeout 240 npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
       "$package" > "$node_dir/npm.log" 2>&1; then
    echo "SKIP: npm install $package failed (no network or registry?):"
    tail -5 "$node_dir/npm.log"
    exit 77
  fi
  touch "$stamp"
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
node "$script" "$node_dir/node_modules" "$sigtool" "$scratch"
