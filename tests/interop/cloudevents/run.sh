#!/usr/bin/env bash
# CloudEvents interop driver (see CMakeLists.txt). Arguments:
#   WORK_DIR EVENTS_SERVER CLIENT_MJS
# Installs the pinned CloudEvents JavaScript SDK into WORK_DIR/node (once),
# starts the server on a free port, runs the client, stops the server.
# Exit 77 = skipped (no npm registry).
set -uo pipefail
work=$1 server=$2 client=$3
packages=(cloudevents@10.0.0)
node_dir=$work/node
mkdir -p "$node_dir" && cd "$node_dir" || exit 1
stamp="node_modules/.dispatch-installed-$(echo "${packages[*]}" | md5sum | cut -c1-8)"
if [ ! -f "$stamp" ]; then
  [ -f package.json ] || echo '{"name":"dispatch-cloudevents-interop","private":true,"type":"module"}' >package.json
  if ! npm install --no-audit --no-fund --loglevel=error "${packages[@]}" >npm.log 2>&1; then
    echo "SKIP: npm install of ${packages[*]} failed (no network or registry?):"
    tail -5 npm.log
    exit 77
  fi
  touch "$stamp"
fi
cp "$client" client.mjs

log=$(mktemp)
DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 "$server" 2>"$log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "FAIL: the server did not start:"; cat "$log"; exit 1
fi
node client.mjs "http://127.0.0.1:$port/"
status=$?
[ $status = 0 ] || { echo "--- server log:"; cat "$log"; }
exit $status
