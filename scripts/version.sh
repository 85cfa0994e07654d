#!/usr/bin/env bash
# Prints oxlb's version: `version` under [workspace.package] in Cargo.toml, the one place
# it is set. The chart (version, appVersion, image.tag), deploy/oxlb.yaml and the image
# tag follow it: scripts/set-version.sh writes them, scripts/check-versions.sh (CI and
# the release workflow) fails when they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk '
  /^\[/ { section = $0 }
  section == "[workspace.package]" && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }
' Cargo.toml)
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "version.sh: no semantic version under [workspace.package] in Cargo.toml (got '$version')" >&2
  exit 1
fi
echo "$version"
