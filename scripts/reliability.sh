#!/usr/bin/env bash
# What CI runs beyond the main test suite, each step timed:
#   fuzz  clang-14 libFuzzer build in build-fuzz/ (ASan+UBSan, coverage over
#         the whole runtime and generator); every fuzz target runs for
#         FUZZ_SECONDS from its committed corpus; any crash, leak, timeout or
#         out-of-memory fails the run (the input is kept under build-fuzz/).
#   asan  the whole tree with -fsanitize=address,undefined in build-asan/,
#         the whole ctest suite.
#   tsan  -fsanitize=thread in build-tsan/, the tests labelled transport,
#         scheduler and badinput (server, client, scheduler concurrency).
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
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
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
  # -O1 -g1: what ASan's documentation suggests for reasonable speed; it
  # compiles faster than -O2 (this build is the slowest step of CI on 2
  # cores) and -g1's line tables are enough for the reports' stacks. No
  # NDEBUG, so the asserts are checked too. Examples stay ON: the e2e and
  # interop tests of the whole suite run against the example servers.
  configure build-asan -DDISPATCH_SANITIZE=address,undefined \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1"
  cmake --build "$root/build-asan" -j"$jobs"
  (cd "$root/build-asan" && ctest --output-on-failure -j"$jobs")
}

tsan() {
  configure build-tsan -DDISPATCH_SANITIZE=thread -DDISPATCH_BUILD_EXAMPLES=OFF
  # The tests with threads that share state, by ctest label: transport
  # (server and client), scheduler (the delivery loop, the store), badinput
  # (concurrent raw clients, slow loris, disconnects, bad signatures). The
  # scheduler label spans the engine and its stores.
  # Whole directories are built, so a test added to one is run here too.
  local labels=(transport scheduler badinput)
  local dirs=(runtime/src/transport runtime/src/scheduler runtime/src/sqlite tests/badinput)
  # Captured, not piped into grep -q: grep exiting early kills the writer
  # with SIGPIPE, which pipefail turns into "not found".
  local all targets=()
  all=$(ninja -C "$root/build-tsan" -t targets all)
  for d in "${dirs[@]}"; do
    if ! grep -q "^$d/all:" <<<"$all"; then
      echo "reliability: tsan: no build directory $d (moved?)" >&2
      return 1
    fi
    targets+=("$d/all")
  done
  cmake --build "$root/build-tsan" -j"$jobs" --target "${targets[@]}"
  # dispatch_add_test() keeps only the first of several labels (the list is
  # split by gtest_discover_tests), so each test has one; a label that
  # selects nothing means a directory moved, which must not pass silently.
  local regex
  regex="^($(IFS='|'; echo "${labels[*]}"))\$"
  for l in "${labels[@]}"; do
    local listed
    listed=$(cd "$root/build-tsan" && ctest -N -L "^$l\$")
    if ! grep -q 'Total Tests: [1-9]' <<<"$listed"; then
      echo "reliability: tsan: no test labelled '$l'" >&2
      return 1
    fi
  done
  (cd "$root/build-tsan" && ctest --output-on-failure -j"$jobs" -L "$regex")
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
