#!/usr/bin/env bash
# A short run of bench-events as bench/run drives it: one server, one second
# of every mode at 2 connections, each row checked for a rate; any failed
# call (a wrong status or answer) fails the load and this script.
#   events_smoke.sh BENCH_EVENTS
set -euo pipefail
bin=$1
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin" serve >"$dir/port" </dev/null &
pid=$!
for _ in $(seq 100); do
  [ -s "$dir/port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: the server exited before listening" >&2; exit 1; }
  sleep 0.1
done
port=$(head -1 "$dir/port")
[ -n "$port" ] || { echo "FAIL: no port within 10 s" >&2; exit 1; }
for mode in connect connect-json binary binary-proto structured; do
  row=$("$bin" load "$port" 2 "$mode" 1)
  echo "$row"
  awk -F'\t' -v m="$mode" '$1 == m && $2 == 2 && $3 > 0 && $6 > 0 { ok = 1 } END { exit !ok }' <<<"$row" ||
    { echo "FAIL: $mode: unexpected row '$row'" >&2; exit 1; }
done
if "$bin" load "$port" 2 carrier-pigeon 1 2>"$dir/err"; then echo "FAIL: an unknown mode ran" >&2; exit 1; fi
grep -q "MODE must be connect" "$dir/err" || { echo "FAIL: unknown mode: $(cat "$dir/err")" >&2; exit 1; }
echo "ok"
