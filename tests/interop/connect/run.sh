#!/usr/bin/env bash
# Connect interop test driver (see CMakeLists.txt). Arguments:
#   WORK_DIR SHOP_SERVER EXAMPLES_BUILD_DIR PROTOC CLIENT_MJS
# Installs pinned npm packages into WORK_DIR/node (once), generates JS from
# the shop's emitted .proto, starts shop-server on a free port, runs the
# client with each of connect-node's protocols (Connect, gRPC-Web, gRPC) in
# binary, JSON and gzip over HTTP/1.1 and HTTP/2, stops the server. Exit 77 =
# skipped (no npm).
set -uo pipefail
work=$1 server=$2 examples=$3 protoc=$4 client=$5
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
exit $status
