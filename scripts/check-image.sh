#!/usr/bin/env bash
# Checks the oxlb container image without Docker, a registry or a container runtime.
#
#   scripts/check-image.sh --build OUT.tar   builds OUT.tar (scripts/build-image.sh), checks it
#   scripts/check-image.sh IMAGE.tar         checks an OCI archive built elsewhere
#
# What it checks, each failure naming its reason:
# - the config (skopeo inspect): user 65532:65532, entrypoint /usr/local/bin/oxlb, the
#   org.opencontainers.image.* labels, version = Cargo's workspace version, revision = a
#   git commit (HEAD when checking a build of this checkout);
# - the content: one layer, holding that binary and nothing else; the binary static (no
#   program interpreter, no shared libraries);
# - that it works the way a runtime runs it: the layer is unpacked into an empty root and
#   the entrypoint runs there as the image's user under unshare (new mount, PID, network,
#   IPC and UTS namespaces; no /proc, /dev, /tmp or /etc): `--version`, `crds`
#   (byte-identical to deploy/crds.yaml), `check` of a valid and of an invalid file, and
#   a root-only file it must not be able to read;
# - the compressed size (the pull size: the gzip layers) against a budget of 15 MB.
# When it builds, it also checks that the Dockerfile describes the same layout.
# scripts/test-check-image.sh proves every failure on deliberately broken images.
#
# Needs skopeo, jq, file, binutils and util-linux's unshare (scripts/install-test-deps.sh),
# and root for unshare's namespaces and uid change.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-image: FAIL: $*" >&2; exit 1; }
ENTRYPOINT=/usr/local/bin/oxlb
USER_ID=65532:65532
BUDGET=15000000
for tool in skopeo jq file readelf unshare; do
  command -v "$tool" >/dev/null || fail "$tool missing (scripts/install-test-deps.sh installs it)"
done

work=$(mktemp -d /tmp/oxlb-check-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$#" -eq 1 ]; then
  image=$1
  [ -f "$image" ] || fail "no such archive: $image"
  expect_revision=""
elif [ "$#" -eq 2 ] && [ "$1" = --build ]; then
  image=$2
  target="$(uname -m)-unknown-linux-musl"
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  start=$(date +%s)
  scripts/build-image.sh "$image"
  echo "check-image: build-image.sh took $(( $(date +%s) - start )) s"
  expect_revision=$(git rev-parse HEAD)
  # Docker users build with the Dockerfile: same base, path, user and entrypoint.
  for line in 'FROM scratch' "COPY --from=build /oxlb $ENTRYPOINT" "USER $USER_ID" "ENTRYPOINT [\"$ENTRYPOINT\"]"; do
    grep -qxF "$line" Dockerfile || fail "the Dockerfile lacks the line '$line' (it must build the layout build-image.sh builds)"
  done
else
  echo "usage: $0 --build OUT.tar | IMAGE.tar" >&2
  exit 2
fi
checks_start=$(date +%s%N)
ref="oci-archive:$image"

# --- Config.
skopeo inspect --config "$ref" > "$work/config.json" 2> "$work/skopeo.err" \
  || fail "skopeo cannot read $image: $(cat "$work/skopeo.err")"
cfg() { jq -r "$1" "$work/config.json"; }
user=$(cfg '.config.User // ""')
[ "$user" = "$USER_ID" ] || fail "the image's user is '$user', expected '$USER_ID' (non-root, distroless' nonroot)"
entrypoint=$(cfg '.config.Entrypoint // [] | tojson')
[ "$entrypoint" = "[\"$ENTRYPOINT\"]" ] || fail "the entrypoint is $entrypoint, expected [\"$ENTRYPOINT\"]"
[ "$(cfg '.os')" = linux ] || fail "os is '$(cfg '.os')', expected linux"
version=$(scripts/version.sh)
label() { cfg ".config.Labels[\"org.opencontainers.image.$1\"] // \"\""; }
for name in title description version revision created source licenses; do
  [ -n "$(label "$name")" ] || fail "label org.opencontainers.image.$name missing"
done
[ "$(label version)" = "$version" ] || fail "label version is '$(label version)', Cargo's workspace version is '$version'"
[[ "$(label revision)" =~ ^[0-9a-f]{40}$ ]] || fail "label revision '$(label revision)' is not a git commit"
if [ -n "$expect_revision" ] && [ "$(label revision)" != "$expect_revision" ]; then
  fail "label revision is $(label revision), HEAD is $expect_revision"
fi
echo "check-image: user $user, entrypoint $entrypoint, $(cfg '.os')/$(cfg '.architecture'), version $(label version), revision $(label revision)"

# --- Content: unpack the OCI layout and its one layer.
mkdir -p "$work/layout" "$work/root"
tar -xf "$image" -C "$work/layout" || fail "$image is not a tar archive"
blob() { echo "$work/layout/blobs/${1%%:*}/${1#*:}"; }
manifest=$(blob "$(jq -r '.manifests[0].digest' "$work/layout/index.json")")
[ -f "$manifest" ] || fail "the archive has no manifest"
layers=$(jq -r '.layers | length' "$manifest")
[ "$layers" -eq 1 ] || fail "the image has $layers layers, expected exactly 1 (the binary)"
layer=$(blob "$(jq -r '.layers[0].digest' "$manifest")")
compressed=$(jq '[.layers[].size] | add' "$manifest")
tar -tzf "$layer" | sed 's#^\./##; s#/$##' | grep -v '^$' | sort > "$work/files.txt" \
  || fail "the layer is not a gzip tar"
allowed=$(printf '%s\n' usr usr/local usr/local/bin "${ENTRYPOINT#/}" | sort)
extra=$(comm -23 "$work/files.txt" <(echo "$allowed"))
[ -z "$extra" ] || fail "the image holds files it does not need: $(echo "$extra" | tr '\n' ' ')"
tar -xzf "$layer" -C "$work/root"
root="$work/root"
bin="$root$ENTRYPOINT"
[ -f "$bin" ] || fail "the entrypoint $ENTRYPOINT is not in the image"
[ -x "$bin" ] || fail "$ENTRYPOINT is not executable"
[ "$(stat -c %u:%g "$bin")" = 0:0 ] || fail "$ENTRYPOINT is owned by $(stat -c %u:%g "$bin"), expected root (the process must not be able to change it)"
file -b "$bin" > "$work/file.txt"
grep -Eq 'statically linked|static-pie linked' "$work/file.txt" || fail "$ENTRYPOINT is not static: $(cat "$work/file.txt")"
if readelf -lW "$bin" | grep -q 'INTERP'; then fail "$ENTRYPOINT has a program interpreter (PT_INTERP)"; fi
if readelf -dW "$bin" | grep -q '(NEEDED)'; then fail "$ENTRYPOINT needs shared libraries (DT_NEEDED)"; fi
echo "check-image: one layer: $ENTRYPOINT ($(stat -c %s "$bin") bytes, $(grep -Eo "static(-pie)? linked" "$work/file.txt")) and its directories, nothing else"

# --- Run it as a runtime would: the image's root, entrypoint and user.
fixtures=crates/config/tests/fixtures
install -m 0644 "$fixtures/valid/peer-full.yaml" "$root/config.yaml"
install -m 0644 "$fixtures/invalid/port-out-of-range.yaml" "$root/invalid.yaml"
install -m 0600 "$fixtures/valid/peer-full.yaml" "$root/root-only.yaml"
chmod 0755 "$root"
uid=${user%%:*}
gid=${user##*:}
run() {
  unshare --mount --pid --fork --net --ipc --uts --root="$root" --wd=/ \
    --setgid "$gid" --setuid "$uid" "$ENTRYPOINT" "$@"
}
out=$(run --version 2> "$work/err") || fail "oxlb --version exited $?: $(cat "$work/err")"
[ "$out" = "oxlb $version" ] || fail "oxlb --version printed '$out', expected 'oxlb $version'"
echo "check-image: oxlb --version: $out"
run crds > "$work/crds.yaml" 2> "$work/err" || fail "oxlb crds exited $?: $(cat "$work/err")"
cmp -s deploy/crds.yaml "$work/crds.yaml" || fail "oxlb crds differs from deploy/crds.yaml"
echo "check-image: oxlb crds: byte-identical to deploy/crds.yaml ($(wc -l < "$work/crds.yaml") lines)"
run check -f /config.yaml -o json > "$work/check.json" 2> "$work/err" \
  || fail "oxlb check of a valid file exited $?: $(cat "$work/err")"
[ "$(jq -r '.valid' "$work/check.json")" = true ] || fail "oxlb check of a valid file: $(cat "$work/check.json")"
echo "check-image: oxlb check -f /config.yaml: valid"
status=0
run check -f /invalid.yaml > "$work/invalid.txt" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "oxlb check of an invalid file exited $status, expected 1: $(cat "$work/invalid.txt")"
grep -q 'spec.peerPort.*port out of range' "$work/invalid.txt" || fail "oxlb check did not name the bad port: $(cat "$work/invalid.txt")"
echo "check-image: oxlb check -f /invalid.yaml: rejected (spec.peerPort out of range), exit 1"
status=0
run check -f /root-only.yaml > /dev/null 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "a root-only file was readable: the image's process runs as root"
echo "check-image: a root-only file is refused: the process runs as $user"

# --- Size.
echo "check-image: compressed size $compressed bytes ($(( compressed * 100 / BUDGET ))% of the $BUDGET-byte budget); binary $(stat -c %s "$bin") bytes"
[ "$compressed" -le "$BUDGET" ] || fail "compressed size $compressed bytes is over the budget of $BUDGET"
echo "check-image: checks took $(( ($(date +%s%N) - checks_start) / 1000000 )) ms"
echo "check-image: OK"
