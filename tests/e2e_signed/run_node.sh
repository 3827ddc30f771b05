#!/bin/sh
# Driver for the node signed-call test (see CMakeLists.txt). Arguments:
#   WORK_DIR SHOP_SERVER SHOP_CLIENT NODE_SCRIPT
# Installs the pinned package into WORK_DIR/node once (as
# tests/interop/signatures does, in its own directory so the two tests may run
# at once), then runs the node side, which starts SHOP_SERVER and SHOP_CLIENT.
# Exit 77 = skipped (node present but the registry unreachable).
set -u
work=$1 server=$2 client=$3 script=$4
package=http-message-signatures@1.0.6
command -v node > /dev/null 2>&1 || { echo "SKIP: node not found"; exit 77; }
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
exec node "$script" "$node_dir/node_modules" "$server" "$client"
