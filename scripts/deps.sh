#!/usr/bin/env bash
# Installs the Debian bookworm packages the build, tests, demo and bench/run need.
# Idempotent: asks apt only for what is missing. Sourced or run.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  libclang-dev clang-14 libclang-rt-14-dev llvm-14-dev
  libprotobuf-dev libprotoc-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libssl-dev libsodium-dev
  libsqlite3-dev sqlite3 libnats-dev nats-server libjemalloc-dev
  libyaml-cpp-dev
  libgrpc++-dev protobuf-compiler-grpc
  libnghttp2-dev nghttp2-client zlib1g-dev grpc-proto python3-grpcio python3-protobuf python3-prometheus-client
  nodejs
  jq
  nlohmann-json3-dev libsimdjson-dev
  umoci skopeo
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# npm: node's own package manager is used for interop test tooling only; the
# machine image ships one, Debian's package is the fallback.
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq npm >&2 || true
fi
