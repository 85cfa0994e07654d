#!/usr/bin/env bash
# Builds the statically linked (musl) oxlb binary that the container image ships, strips
# it and copies it to OUTPUT. scripts/build-image.sh (the image CI checks and the release
# pushes) and the Dockerfile both run this same script.
#
#   scripts/build-static.sh OUTPUT
#
# Installs nothing. Needs the rustup target "$(uname -m)-unknown-linux-musl" and musl-gcc
# (Debian: musl-tools) for ring's C and assembly; scripts/install-test-deps.sh installs
# musl-tools and scripts/check-image.sh --build adds the target when missing. Honours CARGO_TARGET_DIR (the Dockerfile's cache mount).
set -euo pipefail
if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTPUT" >&2
  exit 2
fi
out=$1
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-musl"
target_dir=${CARGO_TARGET_DIR:-target}
# The binary is stripped below, so the release profile's line tables would only cost
# build time.
CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release --locked -p oxlb --target "$target"
install -m 0755 "$target_dir/$target/release/oxlb" "$out"
strip "$out"
