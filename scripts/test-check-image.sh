#!/usr/bin/env bash
# Tests scripts/check-image.sh itself: a checker that cannot fail proves nothing. From a
# good image (an OCI archive that check-image.sh accepts), builds deliberately broken
# variants with buildah and expects check-image.sh to reject each one, exit 1, with the
# reason named.
#
#   scripts/test-check-image.sh GOOD.tar
#
# Needs what build-image.sh and check-image.sh need (buildah, skopeo, jq, root).
set -euo pipefail
if [ "$#" -ne 1 ]; then
  echo "usage: $0 GOOD.tar" >&2
  exit 2
fi
good=$1
case "$good" in /*) ;; *) good="$PWD/$good" ;; esac
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/oxlb-test-check-image.XXXXXX)
buildah_() {
  buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"
}
cleanup() {
  buildah_ rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0

# NAME EXPECTED-REASON MUTATION [layered]: the good image, changed by the mutation (a
# function given the working container), committed (squashed into one layer, unless
# "layered": then the change is a layer of its own) and checked.
case_() {
  local name=$1 reason=$2 mutation=$3 layered=${4:-}
  local ctr archive="$work/$name.tar" status=0 options=(--squash)
  [ "$layered" != layered ] || options=()
  ctr=$(buildah_ from --quiet "oci-archive:$good")
  "$mutation" "$ctr"
  buildah_ commit --quiet --format oci --disable-compression=false ${options[@]+"${options[@]}"} --rm \
    "$ctr" "oci-archive:$archive" >/dev/null
  scripts/check-image.sh "$archive" > "$work/$name.out" 2>&1 || status=$?
  if [ "$status" -eq 1 ] && grep -q "check-image: FAIL: .*$reason" "$work/$name.out"; then
    echo "ok: $name: $(grep 'check-image: FAIL' "$work/$name.out")"
    passed=$((passed + 1))
  else
    echo "FAILED: $name: expected exit 1 naming '$reason', got exit $status:" >&2
    sed 's/^/  /' "$work/$name.out" >&2
    failed=$((failed + 1))
  fi
  rm -f "$archive"
}

unchanged() { :; }
no_binary() {
  local mnt
  mnt=$(buildah_ mount "$1")
  rm "$mnt/usr/local/bin/oxlb"
  buildah_ umount "$1" >/dev/null
}
root_user() { buildah_ config --user 0:0 "$1"; }
no_user() { buildah_ config --user '' "$1"; }
shell_entrypoint() { buildah_ config --entrypoint '["/bin/sh"]' "$1"; }
no_revision() { buildah_ config --label org.opencontainers.image.revision- "$1"; }
wrong_version() { buildah_ config --label org.opencontainers.image.version=0.0.0-wrong "$1"; }
extra_file() {
  printf 'root:x:0:0::/:/bin/sh\n' > "$work/passwd"
  buildah_ copy --quiet "$1" "$work/passwd" /etc/passwd >/dev/null
}
dynamic_binary() { buildah_ copy --quiet --chmod 0755 "$1" /usr/bin/true /usr/local/bin/oxlb >/dev/null; }
not_executable() { buildah_ copy --quiet --chmod 0644 "$1" "$work/oxlb" /usr/local/bin/oxlb >/dev/null; }

# The good image first: the broken ones below differ from it in one thing each.
status=0
scripts/check-image.sh "$good" > "$work/good.out" 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
  echo "ok: the good image passes"
  passed=$((passed + 1))
else
  echo "FAILED: the good image is rejected:" >&2
  sed 's/^/  /' "$work/good.out" >&2
  failed=$((failed + 1))
fi
# Its binary, for the variant that changes only the file mode.
mkdir -p "$work/good"
tar -xf "$good" -C "$work/good"
manifest=$(jq -r '.manifests[0].digest | sub(":"; "/")' "$work/good/index.json")
layer=$(jq -r '.layers[0].digest | sub(":"; "/")' "$work/good/blobs/$manifest")
tar -xzf "$work/good/blobs/$layer" -C "$work/good" usr/local/bin/oxlb
cp "$work/good/usr/local/bin/oxlb" "$work/oxlb"
rm -rf "$work/good"

case_ missing-binary "entrypoint /usr/local/bin/oxlb is not in the image" no_binary
case_ root-user "user is '0:0', expected '65532:65532'" root_user
case_ no-user "user is '', expected '65532:65532'" no_user
case_ shell-entrypoint 'entrypoint is \["/bin/sh"\]' shell_entrypoint
case_ no-revision-label "label org.opencontainers.image.revision missing" no_revision
case_ wrong-version-label "label version is '0.0.0-wrong'" wrong_version
case_ extra-file "files it does not need: etc etc/passwd" extra_file
case_ dynamic-binary "/usr/local/bin/oxlb is not static" dynamic_binary
case_ not-executable "/usr/local/bin/oxlb is not executable" not_executable
# Not squashed: the change is a second layer.
case_ second-layer "the image has 2 layers, expected exactly 1" extra_file layered
echo "test-check-image: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
