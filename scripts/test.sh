#!/usr/bin/env bash
# The whole test suite: unit, property, corpus and interop tests against real routers
# (FRR, BIRD, GoBGP, ExaBGP) in network namespaces. Interop tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --all-targets --locked "$@"
