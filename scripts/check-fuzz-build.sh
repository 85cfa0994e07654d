#!/usr/bin/env bash
# Type-checks every fuzz target (a full libFuzzer build needs cargo-fuzz; CI only checks).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f fuzz/Cargo.toml ]; then
  cargo check --manifest-path fuzz/Cargo.toml --bins --locked
fi
