#!/usr/bin/env bash
# Connect interop test driver (see CMakeLists.txt). Arguments:
#   WORK_DIR SHOP_SERVER EXAMPLES_BUILD_DIR PROTOC CLIENT_MJS SERVER_MJS PEER_CLIENT
# Installs pinned npm packages into WORK_DIR/node (once), generates JS from
# the shop's emitted .proto, starts shop-server on a free port, runs the
# client with each of connect-node's protocols (Connect, gRPC-Web, gRPC) in
# binary, JSON and gzip over HTTP/1.1 and HTTP/2, stops the server. Then the
# other direction: starts server.mjs (connect-node serving the same .proto)
# and runs PEER_CLIENT (our stubs) against it over Connect (POST, and GET for
# get_order) and gRPC (plain and gzip), checking from the server's request
# log how each call went over the wire. Exit 77 = skipped (no npm).
set -uo pipefail
work=$1 server=$2 examples=$3 protoc=$4 client=$5 server_mjs=$6 peer_client=$7
packages=(@connectrpc/connect@2.2.0 @connectrpc/connect-node@2.2.0
          @bufbuild/protobuf@2.17.0 @bufbuild/protoc-gen-es@2.17.0)
node_dir=$work/node
mkdir -p "$node_dir" && cd "$node_dir" || exit 1
stamp="node_modules/.dispatch-installed-$(echo "${packages[*]}" | md5sum | cut -c1-8)"
if [ ! -f "$stamp" ]; then
  [ -f package.json ] || echo '{"name":"dispatch-connect-interop","private":true,"type":"module"}' >package.json
  if ! npm install --no-audit --no-fund --loglevel=error "${packages[@]}" >npm.log 2>&1; then
    echo "SKIP: npm install of ${packages[*]} failed (no network or registry?):"
    tail -5 npm.log
    exit 77
  fi
  touch "$stamp"
fi

proto=$(find "$examples" -path '*shop/api.proto' -name api.proto | head -1)
if [ -z "$proto" ]; then
  echo "FAIL: no generated shop/api.proto under $examples"
  exit 1
fi
root=${proto%/shop/api.proto}
rm -rf gen && mkdir gen
"$protoc" -I "$root" -I /usr/include --plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es \
  --es_out=gen --es_opt=target=js shop/api.proto || { echo "FAIL: protoc-gen-es on $proto"; exit 1; }
cp "$client" client.mjs
cp "$server_mjs" server.mjs

log=$(mktemp)
DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 DISPATCH_LOG_LEVEL=info "$server" 2>"$log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT
port=
for _ in $(seq 1 200); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://')
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: shop-server exited:"; cat "$log"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: shop-server did not report its port"; cat "$log"; exit 1; }

status=0
# Each of connect-node's protocols: Connect and gRPC-Web over HTTP/1.1 and
# HTTP/2, gRPC over HTTP/2 (what it always uses).
for protocol in connect grpc-web grpc; do
  for version in 1.1 2; do
    [ "$protocol" = grpc ] && [ "$version" = 1.1 ] && continue
    for format in binary json gzip; do
      node client.mjs "http://127.0.0.1:$port" "$format" "$version" "$protocol" || status=1
    done
  done
done
kill -TERM "$pid"
wait "$pid"
server_status=$?
trap - EXIT
rm -f "$log"
if [ "$server_status" -ne 0 ]; then
  echo "FAIL: shop-server exited with $server_status after SIGTERM"
  status=1
fi

# The other direction: our stubs calling connect-node.
peer_log=$(mktemp)
node server.mjs >"$peer_log" 2>&1 &
peer=$!
trap 'kill "$peer" 2>/dev/null; wait "$peer" 2>/dev/null; rm -f "$peer_log"' EXIT
http1= http2=
for _ in $(seq 1 200); do
  http1=$(sed -n 's/^listening http1 //p' "$peer_log")
  http2=$(sed -n 's/^listening http2 //p' "$peer_log")
  [ -n "$http1" ] && [ -n "$http2" ] && break
  kill -0 "$peer" 2>/dev/null || { echo "FAIL: server.mjs exited:"; cat "$peer_log"; exit 1; }
  sleep 0.05
done
[ -n "$http2" ] || { echo "FAIL: server.mjs did not report its ports"; cat "$peer_log"; exit 1; }

# peer MODE URL WANT_GET_ORDER WANT_OTHERS: runs the client, then checks the
# request lines the server logged meanwhile: "METHOD content-type encoding"
# of get_order, and of every other function.
peer() {
  local mode=$1 url=$2 want_get=$3 want_others=$4 from
  from=$(($(wc -l <"$peer_log") + 1))
  "$peer_client" "$mode" "$url" || status=1
  local seen
  seen=$(tail -n "+$from" "$peer_log" | grep '^request ')
  local got_get others
  got_get=$(echo "$seen" | awk '$3 == "/shop.ApiService/get_order" {print $2, $4, $5}' | sort -u)
  others=$(echo "$seen" | awk '$3 != "/shop.ApiService/get_order" {print $2, $4, $5}' | sort -u)
  if [ "$got_get" = "$want_get" ] && [ "$others" = "$want_others" ]; then
    echo "ok   [$mode] connect-node saw get_order as '$got_get', the other calls as '$others'"
  else
    echo "FAIL [$mode] connect-node saw get_order as '$got_get' (want '$want_get'), the other calls as '$others' (want '$want_others')"
    status=1
  fi
}
peer connect "http://127.0.0.1:$http1" "POST application/proto -" "POST application/proto -"
peer connect-get "http://127.0.0.1:$http1" "GET - -" "POST application/proto -"
peer grpc "127.0.0.1:$http2" "POST application/grpc -" "POST application/grpc -"
peer grpc-gzip "127.0.0.1:$http2" "POST application/grpc gzip" "POST application/grpc gzip"
if grep -v -e '^request ' -e '^listening ' "$peer_log"; then
  echo "FAIL: server.mjs printed the above"
  status=1
fi
exit $status
