//! Property: building a Config never panics on arbitrary object graphs (random names,
//! references to objects that may not exist, garbage and edge-case values), and when it
//! succeeds the result keeps its promises (no overlap, every reference resolved).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use oxlb_api::{
    BFDProfile, BFDProfileSpec, BGPAdvertisement, BGPAdvertisementSpec, BGPPeer, BGPPeerSpec,
    Community, CommunityAlias, CommunitySpec, DynamicASNMode, IPAddressPool, IPAddressPoolSpec,
    L2Advertisement, L2AdvertisementSpec,
};
use oxlb_config::{Code, Diagnostic, Origin, Snapshot, Sourced, build_config, load_bytes};
use proptest::prelude::*;

fn meta(name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        ..ObjectMeta::default()
    }
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just(String::new()),
        Just("Bad_Name".to_string())
    ]
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..4, 0u8..=255, 0u8..=32).prop_map(|(a, b, len)| format!("10.{a}.{b}.0/{len}")),
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("10.0.0.{a}-10.0.0.{b}")),
        (0u16..4, 0u8..=128).prop_map(|(a, len)| format!("fd00:{a:x}::/{len}")),
        Just("10.0.0.1-fd00::1".to_string()),
        Just("0.0.0.0/0".to_string()),
        Just("::/0".to_string()),
        Just("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".to_string()),
        ".{0,12}",
    ]
}

fn duration() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (0u64..200).prop_map(|s| Some(format!("{s}s"))),
        Just(Some("1.5s".into())),
        ".{0,6}".prop_map(Some)
    ]
}

fn community() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| format!("{a}:{b}")),
        (any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(a, b, c)| format!("large:{a}:{b}:{c}")),
        name(),
        ".{0,10}",
    ]
}

prop_compose! {
    fn pool()(n in name(), addresses in prop::collection::vec(address(), 0..4), auto in any::<Option<bool>>()) -> IPAddressPool {
        IPAddressPool { metadata: meta(n), spec: IPAddressPoolSpec { addresses, auto_assign: auto, ..Default::default() }, status: None }
    }
}

prop_compose! {
    fn peer()(n in name(), my in prop_oneof![Just(0u32), Just(64500), any::<u32>()], asn in any::<Option<u32>>(),
              dynamic in prop::option::of(prop_oneof![Just(DynamicASNMode::Internal), Just(DynamicASNMode::External)]),
              address in prop::option::of(prop_oneof![Just("10.0.0.1".to_string()), ".{0,8}"]),
              interface in prop::option::of(Just("eth0".to_string())),
              hold in duration(), keepalive in duration(), connect in duration(),
              port in any::<Option<u16>>(), multihop in any::<Option<bool>>(), bfd in prop::option::of(name()),
              password in prop::option::of(Just("x".to_string()))) -> BGPPeer {
        BGPPeer { metadata: meta(n), spec: BGPPeerSpec {
            my_asn: my, peer_asn: asn, dynamic_asn: dynamic, peer_address: address, interface,
            hold_time: hold, keepalive_time: keepalive, connect_time: connect, peer_port: port,
            ebgp_multi_hop: multihop, bfd_profile: bfd, password, ..Default::default() } }
    }
}

prop_compose! {
    fn bgp_adv()(n in name(), v4 in any::<Option<i32>>(), v6 in any::<Option<i32>>(), lp in any::<Option<u32>>(),
                 communities in prop::option::of(prop::collection::vec(community(), 0..3)),
                 pools in prop::option::of(prop::collection::vec(name(), 0..3)),
                 peers in prop::option::of(prop::collection::vec(name(), 0..3))) -> BGPAdvertisement {
        BGPAdvertisement { metadata: meta(n), spec: BGPAdvertisementSpec {
            aggregation_length: v4, aggregation_length_v6: v6, local_pref: lp, communities,
            ip_address_pools: pools, peers, ..Default::default() } }
    }
}

prop_compose! {
    fn snapshot()(pools in prop::collection::vec(pool(), 0..5), peers in prop::collection::vec(peer(), 0..4),
                  advs in prop::collection::vec(bgp_adv(), 0..4),
                  l2 in prop::collection::vec((name(), prop::option::of(prop::collection::vec(name(), 0..3))), 0..3),
                  bfd in prop::collection::vec((name(), any::<Option<u32>>(), any::<Option<u32>>()), 0..3),
                  aliases in prop::collection::vec((name(), community()), 0..3)) -> Snapshot {
        let o = Origin::default();
        let mut s = Snapshot::new("metallb-system");
        s.ip_address_pools = pools.into_iter().map(|p| Sourced::new(p, o.clone())).collect();
        s.bgp_peers = peers.into_iter().map(|p| Sourced::new(p, o.clone())).collect();
        s.bgp_advertisements = advs.into_iter().map(|p| Sourced::new(p, o.clone())).collect();
        s.l2_advertisements = l2.into_iter().map(|(n, pools)| Sourced::new(L2Advertisement { metadata: meta(n),
            spec: L2AdvertisementSpec { ip_address_pools: pools, ..Default::default() } }, o.clone())).collect();
        s.bfd_profiles = bfd.into_iter().map(|(n, rx, mult)| Sourced::new(BFDProfile { metadata: meta(n),
            spec: BFDProfileSpec { receive_interval: rx, detect_multiplier: mult, ..Default::default() } }, o.clone())).collect();
        s.communities = vec![Sourced::new(Community { metadata: meta("aliases".into()), spec: CommunitySpec {
            communities: Some(aliases.into_iter().map(|(n, v)| CommunityAlias { name: Some(n), value: Some(v) }).collect()) } }, o)];
        s
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn build_never_panics_and_keeps_promises(s in snapshot()) {
        let built = build_config(&s);
        match built.config {
            Ok(config) => {
                let mut ranges: Vec<_> = config.pools.values().flat_map(|p| p.ranges.iter().copied()).collect();
                ranges.sort();
                for pair in ranges.windows(2) {
                    prop_assert!(!pair[0].overlaps(&pair[1]), "{:?}", pair);
                }
                for adv in config.bgp_advertisements.values() {
                    prop_assert!(adv.pools.iter().all(|p| config.pools.contains_key(p)));
                    // A name no BGPPeer has is kept (it matches no session: MetalLB's
                    // rule) and warned about on this advertisement and field.
                    for name in adv.peers.iter().filter(|p| !config.peers.contains_key(*p)) {
                        prop_assert!(
                            built.warnings.iter().any(|w| w.code == Code::UnknownPeer
                                && w.name == adv.name
                                && w.value.as_deref() == Some(name.as_str())),
                            "no warning for the missing peer {name:?} of {:?}: {:?}",
                            adv.name,
                            built.warnings
                        );
                    }
                    prop_assert!((1..=32).contains(&adv.aggregation_length_v4));
                }
                for peer in config.peers.values() {
                    prop_assert!(peer.keepalive_time <= peer.hold_time);
                    prop_assert!(peer.hold_time.is_zero() || peer.hold_time.as_secs() >= 3);
                    prop_assert!(!(peer.ebgp_multihop && peer.is_ibgp()));
                }
            }
            Err(errors) => prop_assert!(!errors.is_empty() && errors.iter().all(Diagnostic::is_error)),
        }
    }

    #[test]
    fn loading_arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = load_bytes(text.as_bytes(), "metallb-system").map(|s| build_config(&s));
    }

    #[test]
    fn loading_yamlish_text_never_panics(lines in prop::collection::vec(prop_oneof![
        Just("---".to_string()), Just("apiVersion: metallb.io/v1beta1".to_string()), Just("kind: IPAddressPool".to_string()),
        Just("kind: BGPPeer".to_string()), Just("apiVersion: metallb.io/v1beta2".to_string()), Just("metadata:".to_string()),
        Just("  name: a".to_string()), Just("spec:".to_string()), Just("  addresses:".to_string()), Just("  - 10.0.0.0/24".to_string()),
        Just("  myASN: 1".to_string()), Just("configInline:".to_string()), Just("  address-pools: []".to_string()),
        Just("kind: ConfigMap".to_string()), Just("apiVersion: v1".to_string()), Just("data:".to_string()), Just("  config: |".to_string()),
        "[ a-z:-]{0,20}",
    ], 0..40)) {
        let text = lines.join("\n");
        let _ = load_bytes(text.as_bytes(), "metallb-system").map(|s| build_config(&s));
    }
}
