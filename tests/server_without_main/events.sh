#!/usr/bin/env bash
# Delivers CloudEvents to a dispatch_add_server() executable serving
# [[dispatch::event]] functions (orders/orders.h), as Knative Eventing does:
# binary and structured mode with reply events checked, no-reply (202),
# malformed (400), an undeclared type (404), a failed function (500), the
# same function still a Connect method, and functions taking and returning
# whole events (dispatch::CloudEvent) answering with whole reply events in
# binary and structured mode.
#   events.sh SERVER
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

DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 DISPATCH_EVENT_SOURCE=/orders "$server" 2>"$dir/log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$dir/log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited before listening"
  sleep 0.1
done
[ -n "$port" ] || fail "no 'listening on' line within 10 s"
url=http://127.0.0.1:$port

# post ARGS... : the status; headers in $dir/headers, body in $dir/body.
post() { curl -s -D "$dir/headers" -o "$dir/body" -w '%{http_code}' -X POST "$@"; }
header() { tr -d '\r' <"$dir/headers" | sed -n "s/^$1: //Ip" | head -1; }
binary() {  # binary TYPE ID DATA
  post -H 'ce-specversion: 1.0' -H "ce-id: $2" -H 'ce-source: /test' -H "ce-type: $1" \
    -H 'Content-Type: application/json' --data "$3" "$url/"
}

status=$(binary com.example.order.placed evt-1 '{"id":"o-1","amount":21}')
[ "$status" = 200 ] || fail "binary: status $status, want 200: $(cat "$dir/body")"
[ "$(header ce-type)" = com.example.receipt.issued ] || fail "binary reply type: $(cat "$dir/headers")"
[ "$(header ce-source)" = /orders ] || fail "binary reply source: $(cat "$dir/headers")"
[ "$(header ce-specversion)" = 1.0 ] || fail "binary reply specversion"
[ -n "$(header ce-id)" ] || fail "binary reply has no id"
jq -e '.orderId == "o-1" and .total == "42"' "$dir/body" >/dev/null || fail "binary reply data: $(cat "$dir/body")"

status=$(post -H 'Content-Type: application/cloudevents+json' --data \
  '{"specversion":"1.0","id":"evt-2","source":"/test","type":"com.example.order.placed",
    "datacontenttype":"application/json","data":{"id":"o-2","amount":5}}' "$url/")
[ "$status" = 200 ] || fail "structured: status $status: $(cat "$dir/body")"
header content-type | grep -q '^application/cloudevents+json' || fail "structured reply is not structured"
jq -e '.type == "com.example.receipt.issued" and .specversion == "1.0" and .source == "/orders"
       and .data.orderId == "o-2" and .data.total == "10"' "$dir/body" >/dev/null ||
  fail "structured reply: $(cat "$dir/body")"

status=$(binary com.example.order.cancelled evt-3 '{"id":"o-1"}')
[ "$status" = 202 ] || fail "no reply: status $status, want 202"
[ ! -s "$dir/body" ] || fail "a 202 has a body: $(cat "$dir/body")"

status=$(post -H 'ce-specversion: 1.0' -H 'ce-source: /test' -H 'ce-type: com.example.order.placed' \
  -H 'Content-Type: application/json' --data '{}' "$url/")
[ "$status" = 400 ] || fail "an event without an id: status $status, want 400"
status=$(binary com.example.nobody evt-4 '{}')
[ "$status" = 404 ] || fail "an undeclared type: status $status, want 404"
status=$(binary com.example.order.placed evt-5 '{"id":"o-3","amount":-1}')
[ "$status" = 400 ] || fail "invalid_argument: status $status, want 400"
status=$(binary com.example.order.placed evt-6 '{"id":"boom","amount":1}')
[ "$status" = 500 ] || fail "a failed function: status $status, want 500"

status=$(post -H 'Content-Type: application/json' --data '{"order":{"id":"o-4","amount":"2"}}' \
  "$url/orders.OrdersService/on_order_placed")
[ "$status" = 200 ] || fail "Connect call: status $status: $(cat "$dir/body")"
jq -e '.result.orderId == "o-4" and .result.total == "4"' "$dir/body" >/dev/null ||
  fail "Connect call: $(cat "$dir/body")"

# Whole events: the order and the event's attributes in, the function's own
# reply event out (binary mode), every attribute it set on the headers.
status=$(post -H 'ce-specversion: 1.0' -H 'ce-id: evt-10' -H 'ce-source: /test' \
  -H 'ce-type: com.example.order.shipped' -H 'Content-Type: application/json' \
  --data '{"id":"o-7","amount":3}' "$url/")
[ "$status" = 200 ] || fail "whole event, binary: status $status: $(cat "$dir/body")"
[ "$(header ce-type)" = com.example.shipment.tracked ] || fail "whole reply type: $(cat "$dir/headers")"
[ "$(header ce-id)" = shipment-o-7 ] || fail "whole reply id: $(cat "$dir/headers")"
[ "$(header ce-source)" = /carrier ] || fail "whole reply source: $(cat "$dir/headers")"
[ "$(header ce-subject)" = o-7 ] || fail "whole reply subject: $(cat "$dir/headers")"
[ "$(header ce-causedby)" = evt-10 ] || fail "whole reply extension: $(cat "$dir/headers")"
header content-type | grep -q '^text/plain' || fail "whole reply content type: $(cat "$dir/headers")"
[ "$(cat "$dir/body")" = "shipped o-7" ] || fail "whole reply data: $(cat "$dir/body")"

# The whole event in and back (structured mode): its extension and JSON data
# kept, the id and source the function left empty filled in by the server.
status=$(post -H 'Content-Type: application/cloudevents+json' --data \
  '{"specversion":"1.0","id":"evt-11","source":"/test","type":"com.example.audit","subject":"s-1",
    "traceparent":"00-abc","datacontenttype":"application/json","data":{"k":[1,2]}}' "$url/")
[ "$status" = 200 ] || fail "whole event, structured: status $status: $(cat "$dir/body")"
header content-type | grep -q '^application/cloudevents+json' || fail "whole reply is not structured"
jq -e '.type == "com.example.audited" and .subject == "s-1" and .traceparent == "00-abc"
       and .source == "/orders" and (.id | length) == 36 and .data.k == [1,2]' "$dir/body" >/dev/null ||
  fail "whole structured reply: $(cat "$dir/body")"
status=$(binary com.example.audit evt-12 '{}')
[ "$status" = 202 ] || fail "an empty optional reply: status $status, want 202"

kill -TERM "$pid"
wait "$pid" || fail "exit status $? after SIGTERM"
pid=
echo "ok: events delivered on port $port"
