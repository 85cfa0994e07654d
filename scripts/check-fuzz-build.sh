#!/usr/bin/env bash
# Type-checks every fuzz target (a full libFuzzer build needs cargo-fuzz; CI only checks).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f fuzz/Cargo.toml ]; then
  # Share the workspace target dir: its lockfile pins the same versions, so the
  # dependencies clippy just built are reused instead of built again.
  CARGO_TARGET_DIR="$PWD/target" cargo check --manifest-path fuzz/Cargo.toml --bins --locked
fi
