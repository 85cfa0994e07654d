#!/usr/bin/env bash
# Fails when a committed generated file (CRDs) differs from what the code generates.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f deploy/crds.yaml ]; then
  cargo run --quiet --locked -p oxlb -- crds > target/crds.generated.yaml
  diff -u deploy/crds.yaml target/crds.generated.yaml || {
    echo "deploy/crds.yaml is stale: run 'cargo run -p oxlb -- crds > deploy/crds.yaml'" >&2
    exit 1
  }
fi
