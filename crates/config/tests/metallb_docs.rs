//! MetalLB's documented objects deserialize unchanged and get MetalLB's defaults.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::time::Duration;

use oxlb_config::{Community, PeerAddress, PeerAsn, build_config, load_str};

const DOCS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: first-pool
  namespace: metallb-system
spec:
  addresses:
  - 192.168.10.0/24
  - 192.168.9.1-192.168.9.5
  - fc00:f853:0ccd:e799::/124
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: local
  namespace: metallb-system
spec:
  ipAddressPools:
  - first-pool
  localPref: 100
  communities:
  - 65535:65282
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: sample
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
---
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata:
  name: old
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64500
  peerAddress: 10.0.0.2
  keepaliveTime: 20s
"#;

#[test]
fn documented_bgp_setup_gets_metallb_defaults() {
    let snapshot = load_str(DOCS, None, "metallb-system").unwrap();
    let built = build_config(&snapshot);
    let config = built.config.unwrap();
    let pool = &config.pools["first-pool"];
    assert!(pool.auto_assign);
    assert!(!pool.avoid_buggy_ips);
    assert_eq!(pool.ranges.len(), 3);
    let adv = &config.bgp_advertisements["local"];
    assert_eq!(
        (adv.aggregation_length_v4, adv.aggregation_length_v6),
        (32, 128)
    );
    assert_eq!(adv.local_pref, Some(100));
    assert_eq!(
        adv.communities.iter().copied().collect::<Vec<_>>(),
        vec![Community::Standard((65535 << 16) | 65282)]
    );
    let peer = &config.peers["sample"];
    assert_eq!(peer.peer_asn, PeerAsn::Fixed(64501));
    assert_eq!(peer.address, PeerAddress::Ip("10.0.0.1".parse().unwrap()));
    assert_eq!(peer.port, 179);
    assert_eq!(peer.hold_time, Duration::from_secs(90));
    assert_eq!(peer.keepalive_time, Duration::from_secs(30));
    assert!(!peer.is_ibgp());
    let old = &config.peers["old"];
    assert!(old.is_ibgp());
    assert_eq!(old.hold_time, Duration::from_secs(60));
    assert_eq!(old.keepalive_time, Duration::from_secs(20));
}

#[test]
fn serialized_objects_use_metallb_field_names() {
    let snapshot = load_str(DOCS, None, "metallb-system").unwrap();
    let peer = serde_json::to_value(&snapshot.bgp_peers[0].object).unwrap();
    assert_eq!(peer["apiVersion"], "metallb.io/v1beta2");
    assert_eq!(peer["spec"]["myASN"], 64500);
    assert_eq!(peer["spec"]["peerASN"], 64501);
    assert_eq!(peer["spec"]["peerAddress"], "10.0.0.1");
    // v1beta1 objects are converted to v1beta2.
    let old = serde_json::to_value(&snapshot.bgp_peers[1].object).unwrap();
    assert_eq!(old["apiVersion"], "metallb.io/v1beta2");
}

#[test]
fn directories_are_read_recursively() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    // The whole valid corpus at once overlaps (many files reuse 192.168.10.0/24): it
    // must load, and building must report those overlaps rather than fail to load.
    let snapshot = oxlb_config::load_paths(&[examples], "metallb-system").unwrap();
    assert!(snapshot.ip_address_pools.len() > 30);
    assert!(build_config(&snapshot).config.is_err());
}
