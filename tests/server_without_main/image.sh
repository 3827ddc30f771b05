#!/usr/bin/env bash
# Checks the OCI image dispatch_add_image() built of a dispatch_add_server()
# executable: tools that read OCI images accept its manifest and config
# (skopeo inspect, umoci stat), the config says what a platform needs
# (entrypoint, PORT, non-root user, exposed port), the docker-archive loads
# as the same image, and its root filesystem alone runs the server: the
# unpacked rootfs is the whole root (chroot, as the config's user), the
# process gets only the config's environment, in a network namespace of its
# own, and answers a call on the image's PORT. Needs root (chroot, unshare).
#   image.sh OCI_LAYOUT TAG ARCHIVE
set -euo pipefail
layout=$1 tag=$2 archive=$3
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: running the image's root filesystem needs root (chroot, unshare)"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

skopeo inspect --raw "oci:$layout:$tag" >"$dir/manifest.json" || fail "skopeo cannot read the manifest"
jq -e '.schemaVersion == 2 and .config.mediaType == "application/vnd.oci.image.config.v1+json"
       and (.layers | length) == 1' "$dir/manifest.json" >/dev/null || fail "manifest: $(cat "$dir/manifest.json")"
skopeo inspect --config "oci:$layout:$tag" >"$dir/config.json" || fail "skopeo cannot read the config"
umoci stat --image "$layout:$tag" >/dev/null || fail "umoci stat refuses the image"
jq -e '.os == "linux" and .architecture != null
       and .config.Entrypoint == ["/usr/local/bin/two-libraries-server"]
       and (.config.Env | index("PORT=8080")) != null
       and .config.User == "65534:65534"
       and (.config.ExposedPorts | has("8080/tcp"))
       and .config.StopSignal == "SIGTERM"' "$dir/config.json" >/dev/null || fail "config: $(cat "$dir/config.json")"
# The docker-archive `docker load` / `podman load` read holds the same config.
skopeo inspect --config "docker-archive:$archive" >"$dir/archive_config.json" || fail "skopeo cannot read $archive"
jq -e --slurpfile oci "$dir/config.json" '.config == $oci[0].config' "$dir/archive_config.json" >/dev/null ||
  fail "the docker-archive's config differs from the OCI layout's"

umoci unpack --image "$layout:$tag" "$dir/bundle" >/dev/null || fail "umoci cannot unpack the image"
rootfs=$dir/bundle/rootfs
[ ! -e "$rootfs/bin/sh" ] || fail "the image has a shell: a base image crept in"
[ -f "$rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA certificates in the image"

mapfile -t env < <(jq -r '.config.Env[]' "$dir/config.json")
entry=$(jq -r '.config.Entrypoint[0]' "$dir/config.json")
user=$(jq -r '.config.User' "$dir/config.json")
chroot_bin=$(command -v chroot)
export rootfs entry user dir chroot_bin
unshare --net bash -euo pipefail -c '
  ip link set lo up
  env -i "$@" "$chroot_bin" --userspec="$user" "$rootfs" "$entry" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "listening on http://0.0.0.0:8080" "$dir/log" && break
    kill -0 $pid 2>/dev/null || { echo "FAIL: the server exited: $(cat "$dir/log")" >&2; exit 1; }
    sleep 0.1
  done
  got=$(curl -s -X POST -H "Content-Type: application/json" --data "{\"n\":\"4\"}" \
    http://127.0.0.1:8080/tally.TallyService/twice)
  [ "$got" = "{\"result\":\"8\"}" ] || { echo "FAIL: call: $got; log: $(cat "$dir/log")" >&2; kill -KILL $pid; exit 1; }
  kill -TERM $pid
  wait $pid || { echo "FAIL: exit status $? after SIGTERM" >&2; exit 1; }
' image "${env[@]}"
echo "ok: image $layout:$tag runs in its own root"
