#!/usr/bin/env bash
# The lab demo on a fresh Debian machine: installs FRR and arping if missing (root), builds oxlb and
# runs `oxlb lab demo` — a router, a LAN and three nodes in network namespaces, each
# node running `oxlb run`; curls the service IPs through the router, counts the nodes
# answering ARP for the Layer 2 IP (exactly one), fails a node, checks traffic still
# flows and one other node took over, and removes everything. Exit 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/lib/frr/bgpd ] || ! command -v arping >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the lab needs FRR, arping and root: sudo apt-get install frr arping, then run this as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends frr iproute2 curl arping >/dev/null
fi
cargo build --release --locked -p oxlb
exec target/release/oxlb lab demo "$@"
