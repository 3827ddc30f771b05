#!/usr/bin/env bash
# Starts a dispatch_add_server() executable the way a platform does (all
# configuration from the environment, a free port on loopback, Knative's
# K_SERVICE/K_REVISION) and checks that it serves both libraries' functions,
# the built-in Run route and the health probes, labels its log lines,
# exits 0 after SIGTERM drains it, and refuses a bad configuration in its
# log format.
#   run.sh SERVER
set -euo pipefail
server=$1
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- server log:" >&2; cat "$dir/log" >&2; exit 1; }

DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 K_SERVICE=swm K_REVISION=swm-00001 "$server" 2>"$dir/log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$dir/log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited before listening"
  sleep 0.1
done
[ -n "$port" ] || fail "no 'listening on' line within 10 s"
grep -q 'listening on .* service=swm revision=swm-00001' "$dir/log" || fail "log lines do not name the Knative revision"
url=http://127.0.0.1:$port

call() {  # call PATH JSON -> "STATUS BODY"
  curl -s -o "$dir/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data "$2" "$url$1"
  echo " $(cat "$dir/body")"
}
expect() {  # expect WHAT GOT WANT
  [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

expect "greet.hello" "$(call /greet.GreetService/hello '{"name":"ada"}')" '200 {"result":"hello, ada"}'
expect "tally.twice" "$(call /tally.TallyService/twice '{"n":"21"}')" '200 {"result":"42"}'
got=$(call /greet.GreetService/hello '{"name":""}')
[ "${got%% *}" = 400 ] || fail "an empty name: got '$got', want 400 invalid_argument"
# The Dispatch protocol's Run is served too: an empty body is a request it
# refuses, not a path nobody serves.
got=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/proto' \
  --data-binary 'x' "$url/dispatch.sdk.v1.FunctionService/Run")
[ "$got" != 404 ] || fail "the Run route is not served"
got=$(call /nobody.Service/none '{}')
[ "${got%% *}" = 404 ] || fail "an unknown path: got '$got', want 404"
for probe in /healthz /health/liveness /health/readiness /_/health /_/ready; do
  expect "GET $probe" "$(curl -s -w ' %{http_code}' "$url$probe")" "ok
 200"
done

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "exit status $status after SIGTERM, want 0"
# A configuration it cannot serve: exit status 2, the reason said as its
# log lines are (a JSON object with DISPATCH_LOG_FORMAT=json).
status=0
PORT=abc DISPATCH_LOG_FORMAT=json "$server" 2>"$dir/bad" || status=$?
[ "$status" = 2 ] || fail "PORT=abc: exit status $status, want 2"
jq -e '.level == "error" and (.message | endswith("invalid_argument: PORT='"'abc'"' is not a port number (0-65535)"))' \
  "$dir/bad" >/dev/null || fail "PORT=abc: not one JSON error line: $(cat "$dir/bad")"
status=0
PORT=abc "$server" 2>"$dir/bad" || status=$?
[ "$status" = 2 ] || fail "PORT=abc (text): exit status $status, want 2"
grep -q " error .*: invalid_argument: PORT='abc' is not a port number" "$dir/bad" ||
  fail "PORT=abc (text): $(cat "$dir/bad")"
status=0
PORT=abc DISPATCH_LOG_LEVEL=off "$server" 2>"$dir/bad" || status=$?
[ "$status" = 2 ] || fail "PORT=abc (logs off): exit status $status, want 2"
grep -q "invalid_argument: PORT='abc' is not a port number" "$dir/bad" ||
  fail "PORT=abc (logs off): the reason is not said: $(cat "$dir/bad")"
echo "ok: two libraries served on port $port"
