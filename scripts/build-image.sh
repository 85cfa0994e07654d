#!/usr/bin/env bash
# Builds the oxlb container image as an OCI archive, without Docker and without a registry:
# the static binary from scripts/build-static.sh, FROM scratch, with nothing else in it.
#
#   scripts/build-image.sh OUT.tar
#
# The image: one layer holding /usr/local/bin/oxlb (root-owned, 0755) and nothing else (no
# shell, libc, passwd or CA bundle: the binary is static, the in-cluster API CA comes
# from the ServiceAccount mount); entrypoint the binary; user 65532:65532 (distroless'
# "nonroot"); the org.opencontainers.image.* labels with the version from Cargo's
# workspace and the revision from git; the git commit's time as creation time, so the
# same commit gives the same layer. The Dockerfile builds the same layout (scripts/
# check-image.sh checks that it says so) for Docker users.
#
# Environment:
#   OXLB_IMAGE_BINARY  use this already built static binary instead of building one
#                      (the release workflow builds the binary once for the asset and
#                      the image)
#   CARGO_TARGET_DIR   as for scripts/build-static.sh
#
# Needs buildah (Debian: buildah; scripts/install-test-deps.sh installs it) and, to build
# the binary, what scripts/build-static.sh needs. Uses a private container storage under
# a temporary directory, so it neither reads nor changes the machine's image store.
set -euo pipefail
if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUT.tar" >&2
  exit 2
fi
out=$1
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."
fail() { echo "build-image: FAIL: $*" >&2; exit 1; }
command -v buildah >/dev/null || fail "buildah missing (scripts/install-test-deps.sh installs it)"

# The layout, in one place (the Dockerfile repeats it; scripts/check-image.sh compares).
ENTRYPOINT=/usr/local/bin/oxlb
USER_ID=65532:65532

version=$(scripts/version.sh)
revision=$(git rev-parse HEAD 2>/dev/null) || fail "not a git checkout: no revision for the label"
epoch=$(git log -1 --format=%ct HEAD)
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
repository=$(sed -n 's/^  repository: *//p' charts/oxlb/values.yaml | head -n1)
source_url=$(sed -n 's/^home: *//p' charts/oxlb/Chart.yaml | head -n1)
description=$(sed -n 's/^description = "\(.*\)"/\1/p' crates/oxlb/Cargo.toml | head -n1)
license=$(sed -n 's/^license = "\(.*\)"/\1/p' Cargo.toml | head -n1)
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) fail "unsupported architecture $(uname -m)" ;;
esac

work=$(mktemp -d /tmp/oxlb-image.XXXXXX)
buildah_() {
  buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"
}
cleanup() {
  # vfs layers are plain directories; buildah's own rm first, then the files.
  buildah_ rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bin="$work/oxlb"
if [ -n "${OXLB_IMAGE_BINARY:-}" ]; then
  install -m 0755 "$OXLB_IMAGE_BINARY" "$bin"
else
  scripts/build-static.sh "$bin"
fi

ctr=$(buildah_ from --quiet scratch)
buildah_ copy --quiet --chown 0:0 --chmod 0755 "$ctr" "$bin" "$ENTRYPOINT" >/dev/null
buildah_ config \
  --entrypoint "[\"$ENTRYPOINT\"]" \
  --cmd '[]' \
  --user "$USER_ID" \
  --port 7472/tcp \
  --os linux \
  --arch "$arch" \
  --created-by "scripts/build-image.sh" \
  --label "org.opencontainers.image.title=oxlb" \
  --label "org.opencontainers.image.description=$description" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.created=$created" \
  --label "org.opencontainers.image.source=$source_url" \
  --label "org.opencontainers.image.licenses=$license" \
  "$ctr"
# gzip layers, as a registry stores them: the archive's size is the pull size.
buildah_ commit --quiet --format oci --disable-compression=false --timestamp "$epoch" \
  "$ctr" "oci-archive:$out:$repository:$version" >/dev/null
echo "build-image: $out ($repository:$version, $arch, revision $revision, $(stat -c %s "$out") bytes)"
