#!/usr/bin/env bash
# Builds the OCI image of one server executable for dispatch_add_image()
# (cmake/DispatchServer.cmake): no Docker daemon, no base image pulled. The
# image's only layer holds the executable (without its debug information),
# the shared libraries it loads
# (as ldd resolves them, with the dynamic loader), the CA certificates and
# an empty /tmp; its config sets the entrypoint, PORT, SSL_CERT_FILE, the
# exposed port and a non-root user. umoci writes the OCI layout, skopeo
# copies it into a docker-archive that `docker load` and `podman load` take.
#
#   dispatch-image.sh EXECUTABLE NAME TAG PORT OUT_DIR ARCHIVE
#
# Writes OUT_DIR/oci (an OCI image layout, tag TAG) and ARCHIVE
# (docker-archive, NAME:TAG). File times and the image's creation time are
# SOURCE_DATE_EPOCH (default 0), so the same inputs give the same digest.
set -euo pipefail
exe=$1 name=$2 tag=$3 port=$4 out=$5 archive=$6

for tool in umoci skopeo ldd; do
  command -v "$tool" >/dev/null || { echo "dispatch-image: $tool not found (apt-get install umoci skopeo)" >&2; exit 1; }
done
[ -x "$exe" ] || { echo "dispatch-image: $exe is not an executable" >&2; exit 1; }

case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
epoch=${SOURCE_DATE_EPOCH:-0}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
stage=$out/rootfs
rm -rf "$stage" "$out/oci" "$archive"
mkdir -p "$stage/usr/local/bin" "$stage/tmp" "$stage/etc/ssl/certs"
chmod 1777 "$stage/tmp"

install -m 0755 "$exe" "$stage/usr/local/bin/$name"
# Debug information stays in the build tree; symbol names stay for backtraces.
if command -v objcopy >/dev/null; then objcopy --strip-debug "$stage/usr/local/bin/$name"; fi

# Shared libraries as the loader resolves them on this machine, each at the
# path ldd names (so the loader in the image finds them where it looks).
# "statically linked" / "not a dynamic executable": nothing to copy.
if ldd_out=$(ldd "$exe" 2>&1); then
  while read -r line; do
    lib=
    case $line in
      *"=> not found"*) echo "dispatch-image: $exe needs a library ldd cannot find: $line" >&2; exit 1 ;;
      *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
      /*) lib=${line%% (*} ;;
    esac
    [ -n "$lib" ] || continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done <<<"$ldd_out"
fi

# CA certificates for https:// calls out of the container; OpenSSL reads
# SSL_CERT_FILE, set in the config below.
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "dispatch-image: $ca not found (apt-get install ca-certificates)" >&2; exit 1; }
cp -L "$ca" "$stage/etc/ssl/certs/ca-certificates.crt"
# Name lookups: files first, then DNS (the runtime provides /etc/hosts and
# /etc/resolv.conf).
echo "hosts: files dns" >"$stage/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
  >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"

find "$stage" -exec touch -h -d "@$epoch" {} +

image="$out/oci:$tag"
ids=()
if [ "$(id -u)" -ne 0 ]; then
  # Files in the image belong to root whoever builds it.
  ids=(--rootless --uid-map "0:$(id -u):1" --gid-map "0:$(id -g):1")
fi
umoci init --layout "$out/oci"
umoci new --image "$image"
umoci insert "${ids[@]}" --image "$image" --history.created "$created" \
  --history.created_by "dispatch_add_image($name)" "$stage" /
umoci config --image "$image" --created "$created" --history.created "$created" \
  --history.created_by "dispatch_add_image($name)" \
  --os linux --architecture "$arch" \
  --config.entrypoint "/usr/local/bin/$name" \
  --config.env "PORT=$port" \
  --config.env "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
  --config.env "PATH=/usr/local/bin" \
  --config.exposedports "$port/tcp" \
  --config.user 65534:65534 \
  --config.workingdir / \
  --config.stopsignal SIGTERM \
  --config.label "org.opencontainers.image.title=$name"
umoci gc --layout "$out/oci"
skopeo copy --quiet "oci:$out/oci:$tag" "docker-archive:$archive:$name:$tag"
rm -rf "$stage"
echo "dispatch-image: $out/oci ($name:$tag) and $archive"
