#!/bin/sh
# dispatch-keygen end to end: files written with the right modes, refusal to
# overwrite without --force, and keys that the runtime's parsers accept
# (checked by signing and verifying with dispatch-sigtool).
# Usage: keygen_test.sh <dispatch-keygen> <dispatch-sigtool>
set -eu
keygen=$1
sigtool=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$keygen" --out "$dir/k" > "$dir/env.txt"
[ "$(stat -c %a "$dir/k.key")" = 600 ] || fail "private key mode is $(stat -c %a "$dir/k.key"), expected 600"
grep -q 'BEGIN PRIVATE KEY' "$dir/k.key" || fail "k.key is not a PKCS#8 PEM"
grep -q 'BEGIN PUBLIC KEY' "$dir/k.pub" || fail "k.pub is not an SPKI PEM"
grep -q '^DISPATCH_SIGNING_KEY="-----BEGIN PRIVATE KEY-----\\n' "$dir/env.txt" || fail "no DISPATCH_SIGNING_KEY line"
grep -q '^DISPATCH_VERIFICATION_KEY="-----BEGIN PUBLIC KEY-----\\n' "$dir/env.txt" || fail "no DISPATCH_VERIFICATION_KEY line"

before=$(cat "$dir/k.key")
if "$keygen" --out "$dir/k" 2> "$dir/err.txt"; then fail "overwrote an existing key without --force"; fi
grep -q 'exists (use --force' "$dir/err.txt" || fail "refusal does not say why: $(cat "$dir/err.txt")"
[ "$(cat "$dir/k.key")" = "$before" ] || fail "refusal changed the key"
"$keygen" --out "$dir/k" --force > /dev/null
[ "$(cat "$dir/k.key")" != "$before" ] || fail "--force did not replace the key"
[ "$(stat -c %a "$dir/k.key")" = 600 ] || fail "replaced private key mode is not 600"
ls "$dir" | grep -q tmp && fail "temporary file left behind"

if "$keygen" --out 2> /dev/null; then fail "--out without PREFIX accepted"; fi
if "$keygen" --bogus 2> /dev/null; then fail "unknown argument accepted"; fi

printf 'hello' > "$dir/body"
"$sigtool" sign --key "$dir/k.key" --method POST --target /a.B/C --authority h:1 \
  --content-type application/proto --body "$dir/body" > "$dir/headers"
echo "Content-Type: application/proto" >> "$dir/headers"
"$sigtool" verify --pub "$dir/k.pub" --method POST --target /a.B/C --authority h:1 \
  --headers "$dir/headers" --body "$dir/body" > /dev/null || fail "generated pair does not sign/verify"
echo "keygen ok"
