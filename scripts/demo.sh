#!/usr/bin/env bash
# The README's first command: installs what is missing (scripts/deps.sh),
# builds the shop example and the scheduler, then shows two things.
#  1. Direct calls: starts shop-server on a free port, runs shop-client
#     against it (printing each result), calls it once with curl and JSON,
#     stops it with SIGTERM.
#  2. Durable calls: starts dispatchd (SQLite store in a temporary
#     directory, Run calls signed with a fresh Ed25519 key) and a
#     shop-server that verifies those signatures; shop-dispatch hands it a
#     batch of calls through the generated stubs' dispatch() form; the
#     server is killed with SIGKILL while they are pending and started
#     again; every call must then complete once with its right result
#     (dispatchctl shows the store).
# Exits 0 when all of that worked. Everything it starts it stops, also on
# failure. Idempotent; reuses build/ (or $BUILD_DIR) when present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target shop-server shop-client shop-dispatch dispatchd dispatchctl \
  dispatch-keygen

shop_server=$build/examples/shop-server
dispatchd=$build/runtime/tools/dispatchd/dispatchd
dispatchctl=$build/runtime/tools/dispatchctl/dispatchctl
keygen=$build/runtime/tools/keygen/dispatch-keygen

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "demo: $1" >&2
  [ -n "${2:-}" ] && [ -f "$2" ] && cat "$2" >&2
  exit 1
}

# The port a server of ours names in its "listening on" line in $2.
server_port() {
  local pid=$1 log=$2 port=
  for _ in $(seq 1 200); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | tail -1 | sed 's/.*://') || true
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || fail "shop-server exited early:" "$log"
    sleep 0.05
  done
  fail "shop-server did not report its port:" "$log"
}

# ---- 1. Direct calls -------------------------------------------------------

log=$work/shop-direct.log
DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 "$shop_server" 2>"$log" &
pid=$!
pids+=("$pid")
port=$(server_port "$pid" "$log")
url="http://127.0.0.1:$port"
echo "== shop-server listening on $url"
echo "== shop-client $url"
"$build/examples/shop-client" "$url"
echo "== curl -H 'Content-Type: application/json' -d '{\"a\": 40, \"b\": 2}' $url/shop.ApiService/add"
curl -sS --fail-with-body -H 'Content-Type: application/json' -d '{"a": 40, "b": 2}' "$url/shop.ApiService/add"
echo
echo "== stopping shop-server (SIGTERM: drain, then exit 0)"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
echo "== server log"
cat "$log"
[ "$status" -eq 0 ] || fail "shop-server exited with status $status"

# ---- 2. Durable calls across a SIGKILL --------------------------------------

echo
echo "== durable dispatch: shop-dispatch -> dispatchd -> shop-server, which is killed meanwhile"
"$keygen" --out "$work/dispatch" >/dev/null 2>&1 || fail "dispatch-keygen failed"
export DISPATCH_API_KEY=demo-api-key
DISPATCH_SIGNING_KEY="$(cat "$work/dispatch.key")" DISPATCH_LOG_LEVEL=warn \
  "$dispatchd" --db "$work/dispatch.db" --listen 127.0.0.1:0 --port-file "$work/dispatchd.port" \
  --min-backoff-ms 50 --max-backoff-ms 400 2>"$work/dispatchd.log" &
pids+=("$!")
for _ in $(seq 1 200); do
  [ -s "$work/dispatchd.port" ] && break
  kill -0 "${pids[-1]}" 2>/dev/null || fail "dispatchd exited early:" "$work/dispatchd.log"
  sleep 0.05
done
[ -s "$work/dispatchd.port" ] || fail "dispatchd did not start:" "$work/dispatchd.log"
export DISPATCH_API_URL="http://127.0.0.1:$(cat "$work/dispatchd.port")"

# shop-server verifying dispatchd's signatures, on port $1 (0: a free one),
# its log in $2.
start_shop() {
  DISPATCH_VERIFICATION_KEY="$(cat "$work/dispatch.pub")" DISPATCH_ENDPOINT_ADDR="127.0.0.1:$1" \
    "$shop_server" 2>"$2" &
  shop_pid=$!
  pids+=("$shop_pid")
}
start_shop 0 "$work/shop-durable.log"
shop_port=$(server_port "$shop_pid" "$work/shop-durable.log")
export DISPATCH_ENDPOINT_URL="http://127.0.0.1:$shop_port"
echo "== dispatchd at $DISPATCH_API_URL: SQLite store in $work, signs its Run calls (Ed25519, dispatch-keygen)"
echo "== shop-server at $DISPATCH_ENDPOINT_URL verifies them; an unsigned Run request gets:"
curl -sS -H 'Content-Type: application/proto' --data-binary '' \
  -w ' (HTTP %{http_code})\n' "$DISPATCH_ENDPOINT_URL/dispatch.sdk.v1.FunctionService/Run"

calls=8
out=$work/shop-dispatch.out
echo "== shop-dispatch --calls $calls: each call persisted by dispatchd before its ID comes back"
"$build/examples/shop-dispatch" --calls "$calls" --slow-ms 600 --delay-ms 400 >"$out" 2>&1 &
client=$!
pids+=("$client")
for _ in $(seq 1 200); do
  grep -q '^awaiting' "$out" && break
  kill -0 "$client" 2>/dev/null || fail "shop-dispatch exited early:" "$out"
  sleep 0.05
done
grep -q '^awaiting' "$out" || fail "shop-dispatch did not dispatch its calls:" "$out"
sed -n "1,$((calls + 1))p" "$out"

# Kill the server once the slow calls are running there.
running=0
for _ in $(seq 1 100); do
  running=$("$dispatchctl" --json list running | jq '.calls | length') || fail "dispatchctl list failed"
  [ "$running" -gt 0 ] && break
  sleep 0.02
done
echo "== SIGKILL shop-server (pid $shop_pid) while $running calls run in it"
# (The braces keep bash's "Killed" job notice out of the output.)
{ kill -KILL "$shop_pid" && wait "$shop_pid"; } 2>/dev/null || true
sleep 0.7
echo "== dispatchctl list, 0.7 s later: nothing lost; the calls wait for their next attempt"
"$dispatchctl" list

start_shop "$shop_port" "$work/shop-again.log"
server_port "$shop_pid" "$work/shop-again.log" >/dev/null
echo "== shop-server started again on port $shop_port; shop-dispatch awaits each result as its C++ type"
status=0
wait "$client" || status=$?
sed -n "$((calls + 2)),\$p" "$out"
[ "$status" -eq 0 ] || fail "shop-dispatch exited with status $status"

echo "== dispatchctl list: one row per call, each completed once"
"$dispatchctl" list
listing=$("$dispatchctl" --json list)
rows=$(jq '.calls | length' <<<"$listing")
completed=$(jq '[.calls[] | select(.state == "CALL_STATE_COMPLETED")] | length' <<<"$listing")
again=$(jq '[.calls[] | select(.attempts > 1)] | length' <<<"$listing")
echo "== $calls calls dispatched, $rows in the store, $completed completed; $again of them delivered" \
  "more than once (the kill, or the server being down when they came due)"
[ "$rows" -eq "$calls" ] && [ "$completed" -eq "$calls" ] || fail "the store does not hold each call once, completed"
echo "== demo finished"
