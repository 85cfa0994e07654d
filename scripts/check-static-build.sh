#!/usr/bin/env bash
# Builds the container image's binary with scripts/build-static.sh (the Dockerfile runs the
# same script) and checks it without Docker: statically linked, and working the way
# gcr.io/distroless/static-debian12:nonroot runs it, i.e. with no libc, no shell and no
# other file around it, as uid:gid 65532:65532. The root here is stricter than distroless
# (no /etc/passwd, /tmp, CA bundle, /proc or /dev): what runs here runs there.
# Installs musl-tools (Debian) and the rustup musl target when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(uname -m)
target="$arch-unknown-linux-musl"
fail() { echo "check-static-build: FAIL: $*" >&2; exit 1; }

if ! command -v musl-gcc >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    fail "musl-gcc missing; run as root or: sudo apt-get install musl-tools"
  fi
  echo "installing musl-tools"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
fi
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi

work=$(mktemp -d /tmp/oxlb-static.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/usr/local/bin"
bin="$root/usr/local/bin/oxlb"

start=$(date +%s)
scripts/build-static.sh "$bin"
echo "build-static.sh: $(( $(date +%s) - start ))s; binary $(stat -c %s "$bin") bytes"

# Statically linked: no program interpreter (PT_INTERP) and no shared-library needs.
file -b "$bin" | tee "$work/file.txt"
grep -Eq 'statically linked|static-pie linked' "$work/file.txt" || fail "file does not say static"
if readelf -lW "$bin" | grep -q 'INTERP'; then fail "PT_INTERP present"; fi
if readelf -dW "$bin" | grep -q '(NEEDED)'; then fail "DT_NEEDED present"; fi
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "ldd: $ldd_out"
echo "$ldd_out" | grep -Eq 'not a dynamic executable|statically linked' || fail "ldd sees a dynamic executable"

# The distroless-like root: only the binary, a config file and one root-only file (to
# prove the process really is not root).
fixture=crates/config/tests/fixtures/valid/peer-full.yaml
invalid=crates/config/tests/fixtures/invalid/port-out-of-range.yaml
install -m 0644 "$fixture" "$root/config.yaml"
install -m 0644 "$invalid" "$root/invalid.yaml"
install -m 0600 "$fixture" "$root/root-only.yaml"
chmod 0755 "$root" "$root/usr" "$root/usr/local" "$root/usr/local/bin"
# New mount, PID, network, IPC and UTS namespaces; chroot; then uid/gid 65532 with no
# supplementary groups, as the image's USER 65532:65532.
in_root() {
  unshare --mount --pid --fork --net --ipc --uts --root="$root" --wd=/ \
    --setgid 65532 --setuid 65532 /usr/local/bin/oxlb "$@"
}

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
out=$(in_root --version) || fail "oxlb --version exited $?"
echo "oxlb --version: $out"
[ "$out" = "oxlb $version" ] || fail "expected 'oxlb $version'"

in_root crds > "$work/crds.yaml" || fail "oxlb crds exited $?"
diff -u deploy/crds.yaml "$work/crds.yaml" >/dev/null || fail "oxlb crds differs from deploy/crds.yaml"
echo "oxlb crds: identical to deploy/crds.yaml ($(wc -l < "$work/crds.yaml") lines)"

in_root check -f /config.yaml -o json > "$work/check.json" || fail "oxlb check of a valid file exited $?"
grep -q '"valid": true' "$work/check.json" || fail "check output lacks \"valid\": true"
grep -q '"name": "full"' "$work/check.json" || fail "check output lacks the peer 'full'"
echo "oxlb check -f /config.yaml: valid"

status=0
in_root check -f /invalid.yaml > "$work/invalid.txt" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "oxlb check of an invalid file exited $status, expected 1"
grep -q 'spec.peerPort.*port out of range' "$work/invalid.txt" || fail "bad port not reported: $(cat "$work/invalid.txt")"
echo "oxlb check -f /invalid.yaml: rejected (spec.peerPort out of range), exit 1"

status=0
in_root check -f /root-only.yaml > "$work/denied.txt" 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "a root-only file was readable: not running as uid 65532"
echo "oxlb check -f /root-only.yaml: refused as expected (runs as 65532:65532)"
echo "check-static-build: OK"
