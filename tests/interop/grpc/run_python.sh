#!/usr/bin/env bash
# gRPC Python interop driver (see CMakeLists.txt). Arguments:
#   WORK_DIR SERVER PROTO_ROOT PROTO_FILE PROTOC CLIENT_PY PYTHON3
# Generates Python messages from the server's emitted .proto (PROTO_FILE
# under PROTO_ROOT; protoc --python_out, python3-protobuf reads them),
# starts SERVER (a dispatch_add_server() executable) on a free port, runs
# the grpcio client against it, stops the server.
set -uo pipefail
work=$1 server=$2 proto_root=$3 proto_file=$4 protoc=$5 client=$6 python=$7
"$python" -c 'import grpc, google.protobuf, prometheus_client' 2>/dev/null ||
  { echo "FAIL: python3-grpcio / python3-protobuf / python3-prometheus-client missing (scripts/deps.sh installs them)"; exit 1; }
rm -rf "$work" && mkdir -p "$work/gen" || exit 1
"$protoc" -I "$proto_root" --python_out="$work/gen" "$proto_file" || { echo "FAIL: protoc --python_out"; exit 1; }

log=$(mktemp)
DISPATCH_ENDPOINT_ADDR=127.0.0.1:0 DISPATCH_LOG_LEVEL=info "$server" 2>"$log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT
port=
for _ in $(seq 1 200); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://')
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: $(basename "$server") exited:"; cat "$log"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: $(basename "$server") did not report its port"; cat "$log"; exit 1; }

PYTHONPATH="$work/gen" "$python" "$client" "127.0.0.1:$port"
status=$?
if [ $status -ne 0 ]; then echo "--- server log"; cat "$log"; fi
exit $status
