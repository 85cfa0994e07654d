#!/usr/bin/env bash
# Sets oxlb's version everywhere it appears: Cargo's workspace version (the source), then
# what follows it: Cargo.lock, the chart's version, appVersion and image tag, and
# deploy/oxlb.yaml (the chart rendered again). scripts/check-versions.sh checks the result.
#
#   scripts/set-version.sh 0.2.0
set -euo pipefail
if [ "$#" -ne 1 ] || ! [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "usage: $0 VERSION (semantic version, e.g. 0.2.0)" >&2
  exit 2
fi
new=$1
cd "$(dirname "$0")/.."
awk -v new="$new" '
  /^\[/ { section = $0 }
  section == "[workspace.package]" && /^version *=/ { $0 = "version = \"" new "\"" }
  { print }
' Cargo.toml > Cargo.toml.new && mv Cargo.toml.new Cargo.toml
sed -i "s/^version: .*/version: $new/; s/^appVersion: .*/appVersion: \"$new\"/" charts/oxlb/Chart.yaml
sed -i "s/^  tag: .*/  tag: \"$new\"/" charts/oxlb/values.yaml
cargo update --workspace --offline --quiet
OXLB_BLESS=1 cargo test --quiet --locked -p oxlb-k8s --test manifests >/dev/null
scripts/check-versions.sh
