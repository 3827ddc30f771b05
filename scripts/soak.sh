#!/usr/bin/env bash
# Soak: loads the example shop-server with N connections for T seconds
# (tests/soak/soak_client.cc checks every answer) and samples the server's
# resident memory and open file descriptors from /proc every few seconds.
# Reports errors, an RSS-over-time table and descriptors before/after.
#
#   scripts/soak.sh [--seconds T] [--connections N] [--check]
#                   [--max-rss-growth-mb M] [--build-dir DIR]
# Defaults: 600 s, 16 connections, build dir $BUILD_DIR or build/.
# --check (what scripts/reliability.sh uses) fails on: any wrong answer; RSS
# growing more than M MiB (default 32) from the first sample after warm-up to
# the end; more descriptors open after the load than before it.
# Not for: throughput numbers (bench/), correctness of single calls (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600
connections=16
check=0
max_growth_mb=32
build=${BUILD_DIR:-build}
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --check) check=1; shift ;;
    --max-rss-growth-mb) max_growth_mb=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "soak: unknown argument '$1' (see the top of $0)" >&2; exit 2 ;;
  esac
done
case $seconds$connections$max_growth_mb in
  *[!0-9]*) echo "soak: --seconds, --connections and --max-rss-growth-mb take whole numbers" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target shop-server dispatch-soak >/dev/null
server_bin=$(find "$build" -type f -name shop-server -perm -u+x | head -1)
client_bin=$(find "$build" -type f -name dispatch-soak -perm -u+x | head -1)

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the server picks a free one and logs it. Calls are logged at info,
# which would be one line per call: warn keeps the log to what matters.
DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 DISPATCH_LOG_LEVEL=warn "$server_bin" 2>"$work/server.log" &
server_pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.log" | head -1 || true)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "soak: shop-server exited" >&2; exit 1; }
  sleep 0.1
done
if [ -z "$url" ]; then
  # The listening line is logged at info; ask the kernel instead.
  port=$(ss -ltnpH 2>/dev/null | grep "pid=$server_pid," | grep -o '127\.0\.0\.1:[0-9]*' | head -1 | cut -d: -f2)
  [ -n "$port" ] && url=http://127.0.0.1:$port
fi
[ -n "$url" ] || { echo "soak: cannot find shop-server's port" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
fds() { ls "/proc/$server_pid/fd" | wc -l; }
fds_before=$(fds)
echo "soak: shop-server pid $server_pid at $url; $connections connections for ${seconds}s"
echo "soak: before load: rss $(( $(rss_kb) / 1024 )) MiB, $fds_before descriptors"

"$client_bin" "$url" "$connections" "$seconds" >"$work/client.log" 2>&1 &
client_pid=$!
interval=$(( seconds >= 120 ? 10 : 5 ))
warm_rss=
printf '%8s %10s %6s\n' "t(s)" "rss(KiB)" "fds"
t=0
while kill -0 "$client_pid" 2>/dev/null; do
  sleep "$interval"
  t=$((t + interval))
  kill -0 "$server_pid" 2>/dev/null || { echo "soak: shop-server died during the load" >&2; cat "$work/server.log" >&2; exit 1; }
  r=$(rss_kb)
  # The first sample after warm-up (pools, caches and allocator arenas filled).
  [ -z "$warm_rss" ] && [ "$t" -ge 10 ] && warm_rss=$r
  printf '%8d %10d %6d\n' "$t" "$r" "$(fds)"
done
client_status=0
wait "$client_pid" || client_status=$?
tail -2 "$work/client.log"
# Clients have closed their connections; give the server a moment to see it.
sleep 2
end_rss=$(rss_kb)
fds_after=$(fds)
warm_rss=${warm_rss:-$end_rss}
growth_kb=$((end_rss - warm_rss))
echo "soak: after load: rss $((end_rss / 1024)) MiB (growth since warm-up $((growth_kb / 1024)) MiB), $fds_after descriptors (before: $fds_before)"
if grep -qiE ' (error|warn) ' "$work/server.log"; then
  echo "soak: server log warnings/errors:"
  grep -iE ' (error|warn) ' "$work/server.log" | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5
fi

[ "$check" = 1 ] || exit 0
failed=0
if [ "$client_status" -ne 0 ]; then
  echo "soak: FAILED: wrong answers (see the client's first error above)" >&2
  failed=1
fi
if [ "$growth_kb" -gt $((max_growth_mb * 1024)) ]; then
  echo "soak: FAILED: RSS grew $((growth_kb / 1024)) MiB, more than the bound of $max_growth_mb MiB" >&2
  failed=1
fi
if [ "$fds_after" -gt "$fds_before" ]; then
  echo "soak: FAILED: $fds_after descriptors open after the load, $fds_before before: a descriptor leak" >&2
  failed=1
fi
[ "$failed" = 0 ] && echo "soak: OK"
exit "$failed"
