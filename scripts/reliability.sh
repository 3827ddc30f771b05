#!/usr/bin/env bash
# What CI runs beyond the main test suite (issue 6), each step timed:
#   fuzz  clang-14 libFuzzer build in build-fuzz/ (ASan+UBSan, coverage over
#         the whole runtime and generator); every fuzz target runs for
#         FUZZ_SECONDS from its committed corpus; any crash, leak, timeout or
#         out-of-memory fails the run (the input is kept under build-fuzz/).
#   asan  the whole tree with -fsanitize=address,undefined in build-asan/,
#         the whole ctest suite.
#   tsan  -fsanitize=thread in build-tsan/, the concurrency tests of server,
#         client and scheduler.
#   soak  scripts/soak.sh for SOAK_SECONDS against the example server.
# Usage: scripts/reliability.sh [fuzz] [asan] [tsan] [soak]   (default: all)
# Environment: FUZZ_SECONDS (45), SOAK_SECONDS (60), JOBS (nproc).
# Not for: the main build and tests (scripts/test.sh runs those first).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-45}
soak_seconds=${SOAK_SECONDS:-60}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(fuzz asan tsan soak)

# Sanitizer reports must fail the run, with a stack to act on.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/fuzz/tsan.supp"

timings=()
timed() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== reliability: $name"
  "$@"
  timings+=("$name: $((SECONDS - start)) s")
}

configure() {  # dir, extra cmake args...
  local dir=$1
  shift
  cmake -S "$root" -B "$root/$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
}

fuzz() {
  # fuzzer-no-link on everything gives libFuzzer coverage inside the
  # libraries (the runtime, the generator), not only in the targets' own code.
  configure build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DDISPATCH_FUZZ=ON -DDISPATCH_SANITIZE=address,undefined \
    -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -DDISPATCH_BUILD_EXAMPLES=OFF
  local targets
  targets=$(ninja -C "$root/build-fuzz" -t targets all | sed -n 's/^\(fuzz_[a-z0-9_]*\): phony$/\1/p' |
            grep -v '_replay$' | sort -u)
  if [ -z "$targets" ]; then
    echo "reliability: no fuzz targets configured" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  cmake --build "$root/build-fuzz" -j"$jobs" --target $targets
  local failed=()
  for t in $targets; do
    local bin
    bin=$(find "$root/build-fuzz" -type f -name "$t" -perm -u+x | head -1)
    [ -n "$bin" ] || continue  # a library (the generated codecs), not a target
    local work=$root/build-fuzz/fuzz-runs/$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    echo "--- $t for ${fuzz_seconds}s"
    # New inputs go to the scratch corpus; the committed one is read only.
    # The libclang front end needs more time and memory per input.
    local timeout=10 rss=2048
    [ "$t" = fuzz_frontend ] && timeout=30 && rss=3072
    if ! (cd "$work" && "$bin" -max_total_time="$fuzz_seconds" -rss_limit_mb=$rss -timeout=$timeout \
            -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
            "$work/corpus" "$root/tests/fuzz/corpus/$t" >"$work/log" 2>&1); then
      failed+=("$t")
      tail -60 "$work/log"
      echo "reliability: $t FAILED; reproducer(s): $(ls "$work/artifacts")" >&2
    else
      grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/log" | sed "s/^/  $t /"
      echo "  $t corpus: $(ls "$work/corpus" | wc -l) new inputs"
    fi
  done
  if [ ${#failed[@]} -ne 0 ]; then
    echo "reliability: fuzz targets failed: ${failed[*]}" >&2
    return 1
  fi
}

asan() {
  configure build-asan -DDISPATCH_SANITIZE=address,undefined
  cmake --build "$root/build-asan" -j"$jobs"
  (cd "$root/build-asan" && ctest --output-on-failure -j"$jobs")
}

tsan() {
  configure build-tsan -DDISPATCH_SANITIZE=thread -DDISPATCH_BUILD_EXAMPLES=OFF
  # The tests with threads that share state: server and client (transport),
  # the scheduler's delivery loop, the bad-input test's concurrent clients.
  local wanted=(transport_test scheduler_test badinput_test)
  local have=()
  for t in "${wanted[@]}"; do
    if ninja -C "$root/build-tsan" -t targets all | grep -q "^$t:"; then have+=("$t"); fi
  done
  cmake --build "$root/build-tsan" -j"$jobs" --target "${have[@]}"
  # By name: dispatch_add_test() applies only the first of several LABELS
  # (gtest_discover_tests splits the list), so labels cannot select these.
  (cd "$root/build-tsan" &&
   ctest --output-on-failure -j"$jobs" \
     -R '^(ServerTest|ServerWithoutDescriptor|HttpClient|SchedulerTest|Served|Table/BadInput)\.')
}

soak() {
  bash "$root/scripts/soak.sh" --seconds "$soak_seconds" --check
}

for step in "${steps[@]}"; do
  case $step in
    fuzz|asan|tsan|soak) timed "$step" "$step" ;;
    *) echo "reliability: unknown step '$step' (fuzz, asan, tsan, soak)" >&2; exit 2 ;;
  esac
done
echo "=== reliability: done"
printf '  %s\n' "${timings[@]}"
