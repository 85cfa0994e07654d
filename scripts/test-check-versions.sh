#!/usr/bin/env bash
# Tests scripts/check-versions.sh itself on copies of the files it reads (the checkout is
# not touched): as they are it passes; each drift, and a release tag that is not
# "v" + Cargo's version, fails with the file named.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/oxlb-test-check-versions.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
version=$(scripts/version.sh)

fresh() { # a copy of what check-versions.sh reads
  rm -rf "$work/tree"
  mkdir -p "$work/tree/scripts" "$work/tree/charts/oxlb" "$work/tree/deploy"
  cp scripts/version.sh scripts/check-versions.sh "$work/tree/scripts/"
  cp Cargo.toml "$work/tree/"
  cp charts/oxlb/Chart.yaml charts/oxlb/values.yaml "$work/tree/charts/oxlb/"
  cp deploy/oxlb.yaml "$work/tree/deploy/"
}
# NAME EXPECT(pass|FILE-NAMED-IN-THE-ERROR) [TAG] -- SED-EXPRESSION FILE
case_() {
  local name=$1 expect=$2 tag=$3 expr=$4 file=$5 status=0
  fresh
  [ -z "$expr" ] || sed -i "$expr" "$work/tree/$file"
  "$work/tree/scripts/check-versions.sh" ${tag:+"$tag"} > "$work/out" 2>&1 || status=$?
  if { [ "$expect" = pass ] && [ "$status" -eq 0 ]; } \
    || { [ "$expect" != pass ] && [ "$status" -eq 1 ] && grep -qF "$expect" "$work/out"; }; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAILED: $name: expected $expect, exit $status:" >&2
    sed 's/^/  /' "$work/out" >&2
    failed=$((failed + 1))
  fi
}
case_ "as committed" pass "" "" Cargo.toml
case_ "the matching tag" pass "v$version" "" Cargo.toml
case_ "another tag" "the tag 'v9.9.9' is not 'v$version'" v9.9.9 "" Cargo.toml
case_ "a tag without v" "the tag '$version' is not" "$version" "" Cargo.toml
case_ "chart version" "charts/oxlb/Chart.yaml version is '9.9.9'" "" 's/^version: .*/version: 9.9.9/' charts/oxlb/Chart.yaml
case_ "chart appVersion" "charts/oxlb/Chart.yaml appVersion is '9.9.9'" "" 's/^appVersion: .*/appVersion: "9.9.9"/' charts/oxlb/Chart.yaml
case_ "image tag" "charts/oxlb/values.yaml image.tag is '9.9.9'" "" 's/^  tag: .*/  tag: "9.9.9"/' charts/oxlb/values.yaml
case_ "manifest image" "the tag of deploy/oxlb.yaml's image" "" "0,/image: \(.*\):$version/s//image: \1:9.9.9/" deploy/oxlb.yaml
case_ "manifest repository" "deploy/oxlb.yaml names image 'example.org/other:$version'" "" "s#image: .*:#image: example.org/other:#" deploy/oxlb.yaml
case_ "Cargo moved alone" "Cargo's workspace version is '9.9.9'" "" '/^\[workspace.package\]/,/^\[/s/^version = .*/version = "9.9.9"/' Cargo.toml
echo "test-check-versions: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
