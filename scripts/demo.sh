#!/usr/bin/env bash
# The README's first command: installs what is missing (scripts/deps.sh),
# builds the shop example, starts shop-server on a free port in the
# background, runs shop-client against it (printing each result), calls it
# once with curl and JSON, stops the server with SIGTERM and exits 0 when all
# of that worked. Idempotent; reuses build/ (or $BUILD_DIR) when present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target shop-server shop-client

log=$(mktemp)
DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 "$build/examples/shop-server" 2>"$log" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

port=
for _ in $(seq 1 200); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
  [ -n "$port" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: shop-server exited early:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.05
done
if [ -z "$port" ]; then
  echo "demo: shop-server did not report its port:" >&2
  cat "$log" >&2
  exit 1
fi
url="http://127.0.0.1:$port"
echo "== shop-server listening on $url"
echo "== shop-client $url"
"$build/examples/shop-client" "$url"
if command -v curl >/dev/null 2>&1; then
  echo "== curl -H 'Content-Type: application/json' -d '{\"a\": 40, \"b\": 2}' $url/shop.ApiService/add"
  curl -sS --fail-with-body -H 'Content-Type: application/json' -d '{"a": 40, "b": 2}' "$url/shop.ApiService/add"
  echo
fi
echo "== stopping shop-server (SIGTERM: drain, then exit 0)"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
trap - EXIT
echo "== server log"
cat "$log"
rm -f "$log"
if [ "$status" -ne 0 ]; then
  echo "demo: shop-server exited with status $status" >&2
  exit 1
fi
echo "== demo finished"
