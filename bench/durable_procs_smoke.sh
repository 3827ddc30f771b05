#!/usr/bin/env bash
# A short run of bench-durable-procs as bench/run drives it: SQLite with two
# dispatchd, and (when nats-server is installed) JetStream R1 with one and a
# 3-node R3 cluster with two; each row checked for its fields and completed
# calls, and no process of the run left behind. A bad --store is answered
# with what was wrong.
#   durable_procs_smoke.sh BENCH_DURABLE_PROCS
set -euo pipefail
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
configs=("sqlite 2")
if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
  configs+=("nats-r1 1" "nats-r3 2")
else
  echo "nats-server is not installed: SQLite only (scripts/deps.sh installs it)"
fi
for config in "${configs[@]}"; do
  read -r store n <<<"$config"
  row=$("$bin" --store "$store" --dispatchd "$n" --dir "$dir/run" --seconds 1 --warmup-ms 300 --clients 2 --batch 8)
  echo "$row"
  awk -F'\t' -v s="$store" -v n="$n" '
    NF == 16 && $1 == s && $2 == n && $6 > 0 && $7 > 0 && $8 > 0 && $10 > 0 &&
    split($14, d, ",") == n && ($15 == "-") == (s == "sqlite") { ok = 1 } END { exit !ok }' <<<"$row" ||
    { echo "FAIL: $store x $n: unexpected row '$row'" >&2; exit 1; }
  # Every process the run started had its files under $dir/run.
  if pgrep -f -- "$dir/run" >/dev/null; then
    echo "FAIL: $store x $n left processes behind:" >&2
    pgrep -a -f -- "$dir/run" >&2
    exit 1
  fi
done
if "$bin" --store carrier-pigeon --dir "$dir/run" 2>"$dir/err"; then echo "FAIL: an unknown store ran" >&2; exit 1; fi
grep -q "store must be sqlite, nats-r1 or nats-r3, got 'carrier-pigeon'" "$dir/err" ||
  { echo "FAIL: unknown store: $(cat "$dir/err")" >&2; exit 1; }
echo "ok"
