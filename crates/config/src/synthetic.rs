//! A large, valid, generated configuration for benchmarks and scale tests: `pools`
//! IPAddressPools (an IPv4 /24 and an IPv6 /120 each), `peers` BGPPeers and
//! `advertisements` BGPAdvertisements spread over them. `oxlb check` must handle
//! 1,000 / 1,000 / 2,000 in well under a second.

use std::fmt::Write as _;

pub fn synthetic_config(pools: usize, peers: usize, advertisements: usize) -> String {
    let mut out = String::new();
    let pools = pools.min(65_536);
    for i in 0..pools {
        let _ = write!(
            out,
            "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool-{i}\n  namespace: metallb-system\n  labels:\n    group: g{g}\nspec:\n  addresses:\n  - 10.{a}.{b}.0/24\n  - fd00:0:0:{i:x}::/120\n",
            g = i % 10,
            a = i / 256,
            b = i % 256,
        );
    }
    for i in 0..peers.min(65_536) {
        let _ = write!(
            out,
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: peer-{i}\n  namespace: metallb-system\nspec:\n  myASN: 64500\n  peerASN: {asn}\n  peerAddress: 172.16.{a}.{b}\n  holdTime: 90s\n  nodeSelectors:\n  - matchLabels:\n      rack: r{r}\n",
            asn = 65_000 + i,
            a = i / 256,
            b = i % 256,
            r = i % 20,
        );
    }
    for j in 0..advertisements {
        // Two advertisements per pool: /32 + /128 with localPref 100, /24 + /120 with 200.
        let pool = if pools == 0 { 0 } else { j % pools };
        let peer = if peers == 0 { 0 } else { j % peers };
        let (length, length_v6, pref) = if (j / pools.max(1)).is_multiple_of(2) {
            (32, 128, 100)
        } else {
            (24, 120, 200)
        };
        let _ = write!(
            out,
            "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: adv-{j}\n  namespace: metallb-system\nspec:\n  ipAddressPools:\n  - pool-{pool}\n  peers:\n  - peer-{peer}\n  aggregationLength: {length}\n  aggregationLengthV6: {length_v6}\n  localPref: {pref}\n  communities:\n  - 65535:65282\n  - large:64500:{j}:1\n"
        );
    }
    out
}
