#!/usr/bin/env bash
# Fails when a version that must follow Cargo's workspace version has drifted: the chart's
# version and appVersion, its default image tag, and the image of every workload in
# deploy/oxlb.yaml. With TAG (the release workflow passes the pushed git tag), also fails
# unless TAG is "v" + that version, so a release never pushes an image or a chart whose
# version disagrees with its tag.
#
#   scripts/check-versions.sh [TAG]
#
# scripts/set-version.sh VERSION changes them all at once.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(scripts/version.sh)
errors=0
expect() { # WHAT FOUND
  if [ "$2" != "$version" ]; then
    echo "check-versions: $1 is '$2', Cargo's workspace version is '$version'" >&2
    errors=$((errors + 1))
  fi
}
expect "charts/oxlb/Chart.yaml version" "$(sed -n 's/^version: *//p' charts/oxlb/Chart.yaml)"
expect "charts/oxlb/Chart.yaml appVersion" "$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/oxlb/Chart.yaml)"
expect "charts/oxlb/values.yaml image.tag" "$(sed -n 's/^  tag: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/oxlb/values.yaml)"
repository=$(sed -n 's/^  repository: *//p' charts/oxlb/values.yaml)
images=$(sed -n 's/^ *image: *//p' deploy/oxlb.yaml | sort -u)
[ -n "$images" ] || { echo "check-versions: no image in deploy/oxlb.yaml" >&2; errors=$((errors + 1)); }
for image in $images; do
  [ "${image%:*}" = "$repository" ] || {
    echo "check-versions: deploy/oxlb.yaml names image '$image', the chart's repository is '$repository'" >&2
    errors=$((errors + 1))
  }
  expect "the tag of deploy/oxlb.yaml's image $image" "${image##*:}"
done
if [ "$#" -ge 1 ]; then
  [ "$1" = "v$version" ] || {
    echo "check-versions: the tag '$1' is not 'v$version' (Cargo's workspace version)" >&2
    errors=$((errors + 1))
  }
fi
if [ "$errors" -gt 0 ]; then
  echo "check-versions: FAIL: $errors version(s) differ; scripts/set-version.sh VERSION writes them all" >&2
  exit 1
fi
echo "check-versions: $version everywhere (Cargo.toml, charts/oxlb, deploy/oxlb.yaml)${1:+, tag $1}"
