#!/usr/bin/env bash
# The lab demo on a fresh Debian machine: installs FRR if missing (root), builds oxlb and
# runs `oxlb lab demo` — a router, a LAN and three nodes in network namespaces, each
# node running `oxlb run`; curls the service IPs through the router, fails a node,
# checks traffic still flows, and removes everything. Exit 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/lib/frr/bgpd ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the lab needs FRR and root: sudo apt-get install frr, then run this as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends frr iproute2 curl >/dev/null
fi
cargo build --release --locked -p oxlb
exec target/release/oxlb lab demo "$@"
