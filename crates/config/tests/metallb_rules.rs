//! MetalLB's own validation as the judge: the cases of MetalLB's `internal/config`
//! tests (config_test.go: TestParse, TestServiceSelectors) and of its FRR-mode
//! validation (validation.go: DiscardNativeOnly, validateConfig), restated as objects
//! and run through `build_config`. Each row says what MetalLB decides; oxlb must decide
//! the same, except in rows with a `deviation`, where oxlb deliberately differs and the
//! row says why. Where MetalLB's native and FRR modes differ, FRR mode (its Helm
//! default) is the reference.
//!
//! An expectation lists errors (`code Kind/name field`, exactly) or, for valid inputs,
//! warnings that must be among those reported.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;

use oxlb_config::{Diagnostic, build_config, load_str};

enum Expect {
    /// MetalLB accepts; oxlb reports no error and at least these warnings.
    Valid(&'static [&'static str]),
    /// MetalLB refuses; oxlb reports exactly these errors.
    Invalid(&'static [&'static str]),
}
use Expect::{Invalid, Valid};

struct Row {
    /// The case's name in MetalLB's tests (or what it checks, for FRR-mode rules).
    case: &'static str,
    objects: String,
    expect: Expect,
    /// Where oxlb decides differently from MetalLB on purpose, why.
    deviation: Option<&'static str>,
}

fn api_version(kind: &str) -> &'static str {
    match kind {
        "BGPPeer" => "metallb.io/v1beta2",
        "Node" | "Secret" | "Namespace" => "v1",
        _ => "metallb.io/v1beta1",
    }
}

/// One document; `body` is the YAML under `spec:` (or, for core kinds, the top level
/// after metadata), written with two-space indentation relative to `spec`.
fn obj(kind: &str, name: &str, body: &str) -> String {
    let core = matches!(kind, "Node" | "Namespace" | "Secret");
    let namespace = if matches!(kind, "Node" | "Namespace") {
        ""
    } else {
        "  namespace: metallb-system\n"
    };
    let indent = if core { "" } else { "  " };
    let body: String = body
        .trim_matches('\n')
        .lines()
        .map(|l| format!("{indent}{l}\n"))
        .collect();
    let head = if core { "" } else { "spec:\n" };
    format!(
        "---\napiVersion: {}\nkind: {kind}\nmetadata:\n  name: {name}\n{namespace}{head}{body}",
        api_version(kind)
    )
}

fn node(name: &str, labels: &str) -> String {
    format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {labels}\n")
}

fn pool(name: &str, addresses: &str) -> String {
    obj("IPAddressPool", name, &format!("addresses: {addresses}"))
}

fn peer(name: &str, extra: &str) -> String {
    obj("BGPPeer", name, extra)
}

fn cat(parts: &[String]) -> String {
    parts.concat()
}

fn rows() -> Vec<Row> {
    let test_pool = || pool("testpool", "[10.20.0.0/16]");
    let echo_profile = obj(
        "BFDProfile",
        "nondefault",
        "receiveInterval: 50\ntransmitInterval: 51\ndetectMultiplier: 52\nechoInterval: 54\nechoMode: true\npassiveMode: true\nminimumTtl: 55",
    );
    let two_nodes = || cat(&[node("node1", "{}"), node("node2", "{}")]);
    let row = |case, objects, expect| Row {
        case,
        objects,
        expect,
        deviation: None,
    };
    vec![
        // ---- TestParse: whole configurations ----
        row("empty config", String::new(), Valid(&[])),
        row(
            "config using all features",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\npeerPort: 1179\nholdTime: 180s\nconnectTime: 1s\nrouterID: 10.20.30.40\nsourceAddress: 10.20.30.40\nenableGracefulRestart: true\nebgpMultiHop: true\nvrf: foo",
                ),
                peer(
                    "peer2",
                    "myASN: 100\npeerASN: 200\npeerAddress: 2.3.4.5\nconnectTime: 1s\nnodeSelectors:\n- matchLabels: {foo: bar}\n  matchExpressions:\n  - {key: bar, operator: In, values: [quux]}",
                ),
                obj(
                    "IPAddressPool",
                    "pool1",
                    "addresses: [10.20.0.0/16, 10.50.0.0/24]\navoidBuggyIPs: true\nautoAssign: false",
                ),
                pool("pool2", "[30.0.0.0/8]"),
                pool(
                    "pool3",
                    "[40.0.0.0/25, 40.0.0.150-40.0.0.200, 40.0.0.210 - 40.0.0.240, 40.0.0.250 - 40.0.0.250]",
                ),
                pool("pool4", "[\"2001:db8::/64\"]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "aggregationLength: 32\nlocalPref: 100\ncommunities: [bar]\nipAddressPools: [pool1]\npeers: [peer1]",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv2",
                    "aggregationLength: 24\naggregationLengthV6: 64\nipAddressPools: [pool1]",
                ),
                obj("BGPAdvertisement", "adv3", "ipAddressPools: [pool2]"),
                obj("L2Advertisement", "l2adv1", "ipAddressPools: [pool3]"),
                obj("L2Advertisement", "l2adv2", "{}"),
                obj(
                    "Community",
                    "community",
                    "communities:\n- {name: bar, value: \"64512:1234\"}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "ip address pool with namespace selection",
            cat(&[
                obj(
                    "IPAddressPool",
                    "pool1",
                    "addresses: [10.20.0.0/16]\nserviceAllocation: {priority: 1, namespaces: [test-ns1]}",
                ),
                obj(
                    "IPAddressPool",
                    "pool2",
                    "addresses: [30.0.0.0/8]\nserviceAllocation:\n  priority: 2\n  namespaceSelectors:\n  - matchLabels: {team: metallb}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "ip address pool with duplicate namespace selection",
            obj(
                "IPAddressPool",
                "pool1",
                "addresses: [10.20.0.0/16]\nserviceAllocation: {priority: 1, namespaces: [test-ns1, test-ns1]}",
            ),
            Invalid(&["duplicate-entry IPAddressPool/pool1 spec.serviceAllocation.namespaces[1]"]),
        ),
        row(
            "ip address pool with duplicate namespace selectors",
            obj(
                "IPAddressPool",
                "pool1",
                "addresses: [10.20.0.0/16]\nserviceAllocation:\n  priority: 1\n  namespaceSelectors:\n  - matchLabels: {foo: bar}\n  - matchLabels: {foo: bar}",
            ),
            Invalid(&[
                "duplicate-entry IPAddressPool/pool1 spec.serviceAllocation.namespaceSelectors[1]",
            ]),
        ),
        row(
            "ip address pool with service selection",
            obj(
                "IPAddressPool",
                "pool1",
                "addresses: [30.0.0.0/8]\nserviceAllocation:\n  priority: 2\n  serviceSelectors:\n  - matchLabels: {team: metallb}",
            ),
            Valid(&[]),
        ),
        row(
            "ip address pool with duplicate service selection",
            obj(
                "IPAddressPool",
                "pool1",
                "addresses: [30.0.0.0/8]\nserviceAllocation:\n  priority: 2\n  serviceSelectors:\n  - matchExpressions:\n    - {key: foo, operator: In, values: [bar, bar]}",
            ),
            Invalid(&[
                "duplicate-entry IPAddressPool/pool1 spec.serviceAllocation.serviceSelectors[0]",
            ]),
        ),
        row(
            "ip address pool with only priority",
            obj(
                "IPAddressPool",
                "pool1",
                "addresses: [10.20.0.0/16]\nserviceAllocation: {priority: 1}",
            ),
            Valid(&[]),
        ),
        Row {
            case: "negative serviceAllocation priority (MetalLB: any int)",
            objects: obj(
                "IPAddressPool",
                "pool1",
                "addresses: [10.20.0.0/16]\nserviceAllocation: {priority: -1}",
            ),
            expect: Valid(&[
                "invalid-priority IPAddressPool/pool1 spec.serviceAllocation.priority",
            ]),
            deviation: None,
        },
        // ---- TestParse: peers ----
        row(
            "peer-only",
            peer("peer1", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4"),
            Valid(&[]),
        ),
        row(
            "invalid peer-address",
            peer("peer1", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.400"),
            Invalid(&["invalid-address BGPPeer/peer1 spec.peerAddress"]),
        ),
        row(
            "invalid my-asn",
            peer("peer1", "myASN: 0\npeerASN: 42\npeerAddress: 1.2.3.4"),
            Invalid(&["invalid-asn BGPPeer/peer1 spec.myASN"]),
        ),
        row(
            "invalid peer-asn",
            peer("peer1", "myASN: 42\npeerAddress: 1.2.3.4"),
            Invalid(&["asn-choice BGPPeer/peer1 spec.peerASN"]),
        ),
        row(
            "invalid ebgp-multihop",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nebgpMultiHop: true",
            ),
            Invalid(&["multi-hop-ibgp BGPPeer/peer1 spec.ebgpMultiHop"]),
        ),
        row(
            "ebgpMultiHop with dynamicASN internal (MetalLB compares peerASN with myASN only)",
            peer(
                "peer1",
                "myASN: 42\ndynamicASN: internal\npeerAddress: 1.2.3.4\nebgpMultiHop: true",
            ),
            Valid(&["multi-hop-ibgp BGPPeer/peer1 spec.ebgpMultiHop"]),
        ),
        row(
            "invalid interface with newline",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\ninterface: \"eth0\\nrouter bgp 666\"",
            ),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.interface"]),
        ),
        row(
            "invalid password with newline",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\npassword: \"password\\n\"",
            ),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.password"]),
        ),
        row(
            "invalid password secret with newline",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\npasswordSecret: {name: bgpsecret, namespace: metallb-system}",
                ),
                obj(
                    "Secret",
                    "bgpsecret",
                    "type: kubernetes.io/basic-auth\nstringData: {password: \"nopass\\n\"}",
                ),
            ]),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.passwordSecret.name"]),
        ),
        row(
            "invalid VRF name with newline",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\nvrf: \"vrf\\n\"",
            ),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.vrf"]),
        ),
        row(
            "invalid interface with carriage return",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\ninterface: \"eth0\\rrouter bgp 666\"",
            ),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.interface"]),
        ),
        row(
            "invalid password with carriage return",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\npassword: \"password\\r\"",
            ),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.password"]),
        ),
        row(
            "invalid VRF name with carriage return",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\nvrf: \"vrf\\r\"",
            ),
            Invalid(&["invalid-characters BGPPeer/peer1 spec.vrf"]),
        ),
        row(
            "invalid keepalivetime larger than holdtime",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nholdTime: 30s\nkeepaliveTime: 90s",
            ),
            Invalid(&["keepalive-time BGPPeer/peer1 spec.keepaliveTime"]),
        ),
        row(
            "invalid hold time (too short)",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nholdTime: 1s",
            ),
            Invalid(&["hold-time BGPPeer/peer1 spec.holdTime"]),
        ),
        row(
            "peer with holdtime only",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nholdTime: 180s",
            ),
            Valid(&[]),
        ),
        row(
            "peer with keepalive only",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nkeepaliveTime: 60s",
            ),
            Valid(&[]),
        ),
        row(
            "peer with zero hold/keepalive timers",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nholdTime: 0s\nkeepaliveTime: 0s",
            ),
            Valid(&[]),
        ),
        row(
            "peer without hold/keepalive timers",
            peer("peer1", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4"),
            Valid(&[]),
        ),
        row(
            "invalid RouterID",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nrouterID: oh god how do I BGP",
            ),
            Invalid(&["invalid-address BGPPeer/peer1 spec.routerID"]),
        ),
        row(
            "empty node selector (select everything)",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nnodeSelectors: []",
            ),
            Valid(&[]),
        ),
        row(
            "invalid expression node selector (missing key)",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nnodeSelectors:\n- matchLabels: {foo: bar}\n  matchExpressions:\n  - {key: \"\", operator: In, values: [quux]}",
            ),
            Invalid(&["invalid-selector BGPPeer/peer1 spec.nodeSelectors[0]"]),
        ),
        row(
            "invalid expression node selector (missing operator)",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nnodeSelectors:\n- matchLabels: {foo: bar}\n  matchExpressions:\n  - {key: bar, operator: \"\", values: [quux]}",
            ),
            Invalid(&["invalid-selector BGPPeer/peer1 spec.nodeSelectors[0]"]),
        ),
        row(
            "invalid expression node selector (invalid operator)",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nnodeSelectors:\n- matchLabels: {foo: bar}\n  matchExpressions:\n  - {key: bar, operator: surrounds, values: [quux]}",
            ),
            Invalid(&["invalid-selector BGPPeer/peer1 spec.nodeSelectors[0]"]),
        ),
        row(
            "duplicate values node selector match expression",
            peer(
                "peer",
                "myASN: 100\npeerASN: 200\npeerAddress: 2.3.4.5\nnodeSelectors:\n- matchLabels: {foo: bar}\n  matchExpressions:\n  - {key: bar, operator: In, values: [quux, quux]}",
            ),
            Invalid(&["duplicate-entry BGPPeer/peer spec.nodeSelectors[0]"]),
        ),
        row(
            "duplicate peers (FRR mode: same address and VRF)",
            cat(&[
                peer("peer1", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4"),
                peer("peer2", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4"),
            ]),
            Invalid(&["duplicate-peer BGPPeer/peer2 spec.peerAddress"]),
        ),
        row(
            "BGP Peer with both password and secret ref set",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\npassword: nopass\npasswordSecret: {name: nosecret, namespace: metallb-system}",
            ),
            Invalid(&["password-both BGPPeer/peer1 spec.password"]),
        ),
        row(
            "BGP Peer with invalid secret type",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\npasswordSecret: {name: bgpsecret, namespace: metallb-system}",
                ),
                obj(
                    "Secret",
                    "bgpsecret",
                    "type: Opaque\nstringData: {password: nopass}",
                ),
            ]),
            Invalid(&["secret-type BGPPeer/peer1 spec.passwordSecret.name"]),
        ),
        row(
            "BGP Peer without password set in the secret",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\npasswordSecret: {name: bgpsecret, namespace: metallb-system}",
                ),
                obj(
                    "Secret",
                    "bgpsecret",
                    "type: kubernetes.io/basic-auth\nstringData: {username: x}",
                ),
            ]),
            Invalid(&["secret-key-missing BGPPeer/peer1 spec.passwordSecret.name"]),
        ),
        row(
            "BGP Peer with a valid secret",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 42\npeerPort: 179\npeerAddress: 1.2.3.4\npasswordSecret: {name: bgpsecret, namespace: metallb-system}",
                ),
                obj(
                    "Secret",
                    "bgpsecret",
                    "type: kubernetes.io/basic-auth\nstringData: {password: nopass}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "BGP Peer with unavailable secret ref",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\npasswordSecret: {name: nosecret, namespace: metallb-system}",
            ),
            Invalid(&["unknown-secret BGPPeer/peer1 spec.passwordSecret.name"]),
        ),
        row(
            "Session with default BFD Profile",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nbfdProfile: default",
                ),
                pool("pool1", "[1.2.3.0/24]"),
                obj("BFDProfile", "default", "{}"),
                obj("BGPAdvertisement", "adv3", "{}"),
            ]),
            Valid(&[]),
        ),
        row(
            "Peer with non existing BFD Profile",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4\nbfdProfile: default",
                ),
                pool("pool1", "[1.2.3.0/24]"),
                obj("BGPAdvertisement", "adv3", "{}"),
            ]),
            Invalid(&["unknown-bfd-profile BGPPeer/peer1 spec.bfdProfile"]),
        ),
        row(
            "Multiple BFD Profiles with the same name",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj("BFDProfile", "default", "{}"),
                obj("BFDProfile", "foo", "{}"),
                obj("BFDProfile", "foo", "{}"),
            ]),
            Invalid(&["duplicate-name BFDProfile/foo metadata.name"]),
        ),
        row(
            "Session with nondefault BFD Profile (echo mode accepted)",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                echo_profile.clone(),
                obj("BGPAdvertisement", "adv3", "{}"),
            ]),
            Valid(&[]),
        ),
        row(
            "BFD Profile with too low receive interval",
            obj("BFDProfile", "default", "receiveInterval: 2"),
            Invalid(&["bfd-range BFDProfile/default spec.receiveInterval"]),
        ),
        row(
            "BFD Profile with too high receive interval",
            obj("BFDProfile", "default", "receiveInterval: 90000"),
            Invalid(&["bfd-range BFDProfile/default spec.receiveInterval"]),
        ),
        row(
            "Session with ipv6 and bfd echo mode",
            cat(&[
                pool("pool1", "[\"fc00:f853:0ccd:e793::/64\"]"),
                echo_profile.clone(),
                obj("BGPAdvertisement", "adv3", "{}"),
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\npeerPort: 1179\nholdTime: 180s\nrouterID: 10.20.30.40\nsourceAddress: 10.20.30.40\nebgpMultiHop: true\nbfdProfile: nondefault",
                ),
            ]),
            Invalid(&["bfd-echo-ipv6 BGPAdvertisement/adv3 spec.peers"]),
        ),
        row(
            "Session with ipv4 and bfd echo mode",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj("BFDProfile", "with-echo", "echoMode: true"),
                obj("BGPAdvertisement", "adv", "{}"),
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\npeerPort: 1179\nbfdProfile: with-echo",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "peer with dynamic asn",
            peer(
                "peer1",
                "myASN: 42\ndynamicASN: internal\npeerAddress: 1.2.3.4",
            ),
            Valid(&[]),
        ),
        row(
            "peer without asn or dynamic asn",
            peer("peer1", "myASN: 42\npeerASN: 0"),
            Invalid(&[
                "asn-choice BGPPeer/peer1 spec.peerASN",
                "address-choice BGPPeer/peer1 spec.peerAddress",
            ]),
        ),
        row(
            "peer with both asn and dynamic asn",
            peer("peer1", "myASN: 42\npeerASN: 42\ndynamicASN: internal"),
            Invalid(&[
                "asn-choice BGPPeer/peer1 spec.peerASN",
                "address-choice BGPPeer/peer1 spec.peerAddress",
            ]),
        ),
        row(
            "unnumbered peer without address with interface ok",
            peer("peer1", "myASN: 42\ndynamicASN: internal\ninterface: net0"),
            Valid(&[]),
        ),
        row(
            "unnumbered peer without address without interface nok",
            peer("invalid", "myASN: 42\ndynamicASN: internal"),
            Invalid(&["address-choice BGPPeer/invalid spec.peerAddress"]),
        ),
        row(
            "unnumbered peer with address with interface nok",
            peer(
                "invalid",
                "myASN: 42\ndynamicASN: internal\npeerAddress: 1.2.3.4\ninterface: net0",
            ),
            Invalid(&["address-choice BGPPeer/invalid spec.peerAddress"]),
        ),
        row(
            "peer with DisableMP field",
            peer(
                "peer1",
                "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\ndisableMP: true",
            ),
            Valid(&["deprecated BGPPeer/peer1 spec.disableMP"]),
        ),
        // ---- TestParse: pools ----
        row(
            "address pool with no address",
            obj("IPAddressPool", "pool1", "addresses: []"),
            Invalid(&["no-addresses IPAddressPool/pool1 spec.addresses"]),
        ),
        row(
            "invalid pool CIDR",
            pool("pool1", "[100.200.300.400/24]"),
            Invalid(&["invalid-address IPAddressPool/pool1 spec.addresses[0]"]),
        ),
        row(
            "invalid pool CIDR prefix length",
            pool("pool1", "[1.2.3.0/33]"),
            Invalid(&["invalid-address IPAddressPool/pool1 spec.addresses[0]"]),
        ),
        row(
            "invalid pool CIDR, first address of the range is after the second",
            pool("pool1", "[1.2.3.10-1.2.3.1]"),
            Invalid(&["range-start-after-end IPAddressPool/pool1 spec.addresses[0]"]),
        ),
        row(
            "duplicate pool definition",
            cat(&[
                pool("pool1", "[10.0.0.0/24]"),
                pool("pool2", "[10.0.1.0/24]"),
                pool("pool1", "[10.0.2.0/24]"),
            ]),
            Invalid(&["duplicate-name IPAddressPool/pool1 metadata.name"]),
        ),
        row(
            "duplicate CIDRs",
            cat(&[
                pool("pool1", "[\" 10.0.0.0/8\"]"),
                pool("pool2", "[\" 10.0.0.0/8\"]"),
            ]),
            Invalid(&["overlap IPAddressPool/pool2 spec.addresses[0]"]),
        ),
        row(
            "overlapping CIDRs",
            cat(&[
                pool("pool1", "[\" 10.0.0.0/8\"]"),
                pool("pool2", "[10.0.0.0/16]"),
            ]),
            Invalid(&["overlap IPAddressPool/pool2 spec.addresses[0]"]),
        ),
        // ---- TestParse: advertisements ----
        row(
            "simple advertisement",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj("BGPAdvertisement", "adv3", "{}"),
            ]),
            Valid(&[]),
        ),
        row(
            "bad aggregation length (too long)",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj("BGPAdvertisement", "adv", "aggregationLength: 34"),
            ]),
            Invalid(&["aggregation-length BGPAdvertisement/adv spec.aggregationLength"]),
        ),
        row(
            "bad aggregation length (incompatible with CIDR)",
            cat(&[
                pool("pool1", "[10.20.30.40/24, 1.2.3.0/28]"),
                obj("BGPAdvertisement", "adv", "aggregationLength: 26"),
            ]),
            Invalid(&["aggregation-length BGPAdvertisement/adv spec.aggregationLength"]),
        ),
        row(
            "different local pref - same peers and nodes",
            cat(&[
                two_nodes(),
                pool("pool1", "[10.20.30.40/24]"),
                obj("BGPAdvertisement", "a1", "localPref: 100"),
                obj("BGPAdvertisement", "a2", "localPref: 200"),
            ]),
            Invalid(&["local-pref-conflict BGPAdvertisement/a2 spec.localPref"]),
        ),
        row(
            "different local pref - different ipv4 aggregation length",
            cat(&[
                two_nodes(),
                pool("pool1", "[10.20.30.40/24]"),
                obj(
                    "BGPAdvertisement",
                    "a1",
                    "localPref: 100\naggregationLength: 24",
                ),
                obj("BGPAdvertisement", "a2", "localPref: 200"),
            ]),
            Valid(&[]),
        ),
        row(
            "different local pref - different aggregation lengths",
            cat(&[
                two_nodes(),
                pool("pool1", "[10.20.30.40/24]"),
                obj(
                    "BGPAdvertisement",
                    "a1",
                    "localPref: 100\naggregationLength: 24\naggregationLengthV6: 120",
                ),
                obj("BGPAdvertisement", "a2", "localPref: 200"),
            ]),
            Valid(&[]),
        ),
        row(
            "different local pref - same peers & different nodes",
            cat(&[
                node("node1", "{node: node1}"),
                node("node2", "{node: node2}"),
                pool("pool1", "[10.20.30.40/24]"),
                obj(
                    "BGPAdvertisement",
                    "a1",
                    "localPref: 100\nnodeSelectors:\n- matchLabels: {node: node1}",
                ),
                obj(
                    "BGPAdvertisement",
                    "a2",
                    "localPref: 200\nnodeSelectors:\n- matchLabels: {node: node2}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "different local pref - different peers & same nodes",
            cat(&[
                two_nodes(),
                pool("pool1", "[10.20.30.40/24]"),
                obj("BGPAdvertisement", "a1", "localPref: 100\npeers: [peer1]"),
                obj("BGPAdvertisement", "a2", "localPref: 200\npeers: [peer2]"),
            ]),
            Valid(&[
                "unknown-peer BGPAdvertisement/a1 spec.peers[0]",
                "unknown-peer BGPAdvertisement/a2 spec.peers[0]",
            ]),
        ),
        row(
            "aggregation length by range",
            cat(&[
                pool("pool1", "[3.3.3.2-3.3.3.254]"),
                obj("BGPAdvertisement", "adv", "aggregationLength: 26"),
            ]),
            Valid(&[]),
        ),
        row(
            "aggregation length by range, too wide",
            cat(&[
                pool("pool1", "[3.3.3.2-3.3.3.254]"),
                obj("BGPAdvertisement", "adv", "aggregationLength: 24"),
            ]),
            Invalid(&["aggregation-length BGPAdvertisement/adv spec.aggregationLength"]),
        ),
        row(
            "duplicate ip address pools - in L2 adv",
            cat(&[
                test_pool(),
                obj(
                    "L2Advertisement",
                    "testadv",
                    "ipAddressPools: [testpool, testpool]",
                ),
            ]),
            Invalid(&["duplicate-entry L2Advertisement/testadv spec.ipAddressPools[1]"]),
        ),
        row(
            "duplicate ip address pools - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool, testpool]",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/testadv spec.ipAddressPools[1]"]),
        ),
        row(
            "duplicate peers - in BGP adv",
            cat(&[
                test_pool(),
                peer("peer1", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4"),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool]\npeers: [peer1, peer1]",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/testadv spec.peers[1]"]),
        ),
        row(
            "bad community literal (wrong format) - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool]\ncommunities: [\"1234\"]",
                ),
            ]),
            Invalid(&["unknown-community BGPAdvertisement/testadv spec.communities[0]"]),
        ),
        row(
            "bad community literal (asn part doesn't fit) - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool]\ncommunities: [\"99999999:1\"]",
                ),
            ]),
            Invalid(&["invalid-community BGPAdvertisement/testadv spec.communities[0]"]),
        ),
        row(
            "bad community literal (community# part doesn't fit) - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool]\ncommunities: [\"1:99999999\"]",
                ),
            ]),
            Invalid(&["invalid-community BGPAdvertisement/testadv spec.communities[0]"]),
        ),
        row(
            "bad community ref (unknown ref) - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool]\ncommunities: [community]",
                ),
            ]),
            Invalid(&["unknown-community BGPAdvertisement/testadv spec.communities[0]"]),
        ),
        row(
            "duplicate community literal - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "testadv",
                    "ipAddressPools: [testpool]\ncommunities: [\"1234:5678\", \"1234:5678\"]",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/testadv spec.communities[1]"]),
        ),
        row(
            "bad community literal (wrong format) - in the community CR",
            obj(
                "Community",
                "community",
                "communities:\n- {name: bar, value: \"1234\"}",
            ),
            Invalid(&["invalid-community Community/community spec.communities[0].value"]),
        ),
        row(
            "bad community literal (asn part doesn't fit) - in the community CR",
            obj(
                "Community",
                "community",
                "communities:\n- {name: bar, value: \"99999999:1\"}",
            ),
            Invalid(&["invalid-community Community/community spec.communities[0].value"]),
        ),
        row(
            "bad community literal (community# part doesn't fit) - in the community CR",
            obj(
                "Community",
                "community",
                "communities:\n- {name: bar, value: \"1:99999999\"}",
            ),
            Invalid(&["invalid-community Community/community spec.communities[0].value"]),
        ),
        row(
            "duplicate communities definition (in 2 different crs)",
            cat(&[
                obj(
                    "Community",
                    "community1",
                    "communities:\n- {name: bar, value: \"1234:5678\"}",
                ),
                obj(
                    "Community",
                    "community2",
                    "communities:\n- {name: bar, value: \"1234:5678\"}",
                ),
            ]),
            Invalid(&["duplicate-name Community/community2 spec.communities[0].name"]),
        ),
        row(
            "duplicate communities definition (in the same cr)",
            obj(
                "Community",
                "community",
                "communities:\n- {name: bar, value: \"1234:5678\"}\n- {name: bar, value: \"1234:5678\"}",
            ),
            Invalid(&["duplicate-name Community/community spec.communities[1].name"]),
        ),
        row(
            "config IPAddressPool with large communities CR",
            cat(&[
                peer(
                    "peer1",
                    "myASN: 42\npeerASN: 142\npeerAddress: 1.2.3.4\nebgpMultiHop: true\nvrf: foo",
                ),
                obj(
                    "IPAddressPool",
                    "pool1",
                    "addresses: [10.20.0.0/16, 10.50.0.0/24]\navoidBuggyIPs: true\nautoAssign: false",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "localPref: 100\ncommunities: [bar]\nipAddressPools: [pool1]\npeers: [peer1]",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv2",
                    "aggregationLength: 24\naggregationLengthV6: 64\nipAddressPools: [pool1]",
                ),
                obj("BGPAdvertisement", "adv3", "ipAddressPools: [pool2]"),
                obj(
                    "Community",
                    "community",
                    "communities:\n- {name: bar, value: \"large:123:64512:1234\"}",
                ),
            ]),
            Valid(&["unknown-pool BGPAdvertisement/adv3 spec.ipAddressPools[0]"]),
        ),
        row(
            "use ip pool selectors",
            cat(&[
                obj("IPAddressPool", "pool1", "addresses: [10.20.0.0/16]").replace(
                    "  name: pool1\n",
                    "  name: pool1\n  labels: {test: pool1}\n",
                ),
                obj("IPAddressPool", "pool2", "addresses: [30.0.0.0/16]").replace(
                    "  name: pool2\n",
                    "  name: pool2\n  labels: {test: pool2}\n",
                ),
                obj(
                    "L2Advertisement",
                    "l2adv1",
                    "ipAddressPoolSelectors:\n- matchLabels: {test: pool1}",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "localPref: 100\nipAddressPoolSelectors:\n- matchLabels: {test: pool1}",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv2",
                    "localPref: 200\nipAddressPoolSelectors:\n- matchLabels: {test: pool2}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "specify interfaces",
            cat(&[
                pool("pool1", "[10.20.0.0/16]"),
                obj("L2Advertisement", "l2adv1", "interfaces: [eth0]"),
            ]),
            Valid(&[]),
        ),
        row(
            "L2 interface names Linux cannot have (MetalLB: any string)",
            cat(&[
                pool("pool1", "[10.20.0.0/16]"),
                obj(
                    "L2Advertisement",
                    "l2adv1",
                    "interfaces: [this-name-is-far-too-long]",
                ),
            ]),
            Valid(&["invalid-name L2Advertisement/l2adv1 spec.interfaces[0]"]),
        ),
        row(
            "use duplicate match labels in ip pool selectors - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "ipAddressPoolSelectors:\n- matchLabels: {test: pool1}\n- matchLabels: {test: pool1}",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/adv1 spec.ipAddressPoolSelectors[1]"]),
        ),
        row(
            "use duplicate match expression in ip pool selector - in BGP adv",
            cat(&[
                test_pool(),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "ipAddressPoolSelectors:\n- matchExpressions:\n  - {key: test, operator: In, values: [pool1, pool1]}",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/adv1 spec.ipAddressPoolSelectors[0]"]),
        ),
        row(
            "use duplicate ip pool selectors - in L2 adv",
            cat(&[
                test_pool(),
                obj(
                    "L2Advertisement",
                    "adv1",
                    "ipAddressPoolSelectors:\n- matchLabels: {test: pool1}\n- matchLabels: {test: pool1}",
                ),
            ]),
            Invalid(&["duplicate-entry L2Advertisement/adv1 spec.ipAddressPoolSelectors[1]"]),
        ),
        row(
            "use non existent label for ip pool selectors",
            cat(&[
                test_pool(),
                obj(
                    "L2Advertisement",
                    "l2adv1",
                    "ipAddressPoolSelectors:\n- matchLabels: {test: do-not-select-pool}",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "localPref: 100\nipAddressPoolSelectors:\n- matchLabels: {test: do-not-select-pool}",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv2",
                    "localPref: 200\nipAddressPoolSelectors:\n- matchLabels: {test: do-not-select-pool}",
                ),
            ]),
            Valid(&["selects-nothing L2Advertisement/l2adv1 spec.ipAddressPoolSelectors"]),
        ),
        row(
            "use node selectors",
            cat(&[
                pool("pool1", "[10.20.0.0/16]"),
                pool("pool2", "[30.0.0.0/16]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "ipAddressPools: [pool1]\nnodeSelectors:\n- matchLabels: {second: \"true\"}",
                ),
                obj(
                    "BGPAdvertisement",
                    "adv2",
                    "ipAddressPools: [pool2]\nnodeSelectors:\n- matchLabels: {first: \"true\"}",
                ),
                obj(
                    "L2Advertisement",
                    "l2adv1",
                    "ipAddressPools: [pool1]\nnodeSelectors:\n- matchLabels: {first: \"true\"}",
                ),
                node("first", "{first: \"true\"}"),
                node("second", "{second: \"true\"}"),
            ]),
            Valid(&[]),
        ),
        row(
            "use duplicate match labels in node selectors",
            cat(&[
                pool("pool1", "[10.20.0.0/16]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "ipAddressPools: [pool1]\nnodeSelectors:\n- matchLabels: {second: \"true\"}\n- matchLabels: {second: \"true\"}",
                ),
                obj(
                    "L2Advertisement",
                    "l2adv1",
                    "ipAddressPools: [pool1]\nnodeSelectors:\n- matchLabels: {first: \"true\"}\n- matchLabels: {first: \"true\"}",
                ),
            ]),
            Invalid(&[
                "duplicate-entry BGPAdvertisement/adv1 spec.nodeSelectors[1]",
                "duplicate-entry L2Advertisement/l2adv1 spec.nodeSelectors[1]",
            ]),
        ),
        row(
            "use duplicate match expression values in node selector",
            cat(&[
                pool("pool1", "[10.20.0.0/16]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "ipAddressPools: [pool1]\nnodeSelectors:\n- matchExpressions:\n  - {key: kubernetes.io/hostname, operator: In, values: [first, second]}\n  - {key: kubernetes.io/hostname, operator: In, values: [second, first]}",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/adv1 spec.nodeSelectors[0]"]),
        ),
        row(
            "no nodes means all nodes",
            cat(&[
                pool("pool1", "[10.20.0.0/16]"),
                obj("BGPAdvertisement", "adv1", "{}"),
                obj("L2Advertisement", "l2adv1", "{}"),
            ]),
            Valid(&[]),
        ),
        row(
            "advertisement with peer selector",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                peer("peer1", "myASN: 42\npeerASN: 42\npeerAddress: 1.2.3.4"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "localPref: 100\nipAddressPools: [pool1]\npeers: [peer1]",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "advertisement naming a missing pool and a missing peer (MetalLB skips the names)",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "ipAddressPools: [gone]\npeers: [nobody]",
                ),
            ]),
            Valid(&[
                "unknown-pool BGPAdvertisement/adv1 spec.ipAddressPools[0]",
                "unknown-peer BGPAdvertisement/adv1 spec.peers[0]",
            ]),
        ),
        // ---- TestServiceSelectors and the other main-branch fields ----
        row(
            "BGP advertisement with service selectors",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "serviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "L2 advertisement with service selectors",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "L2Advertisement",
                    "adv1",
                    "serviceSelectors:\n- matchLabels: {app: web}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "BGP advertisement with multiple service selectors (OR logic)",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "serviceSelectors:\n- matchLabels: {app: nginx}\n- matchLabels: {app: apache}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "BGP advertisement - serviceSelectors with non-default aggregationLength is mutually exclusive",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "aggregationLength: 24\nserviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Invalid(&["aggregation-length BGPAdvertisement/adv1 spec.aggregationLength"]),
        ),
        row(
            "BGP advertisement - serviceSelectors with non-default aggregationLengthV6 is mutually exclusive",
            cat(&[
                pool("pool1", "[\"2001:db8::/64\"]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "aggregationLengthV6: 64\nserviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Invalid(&["aggregation-length BGPAdvertisement/adv1 spec.aggregationLengthV6"]),
        ),
        row(
            "BGP advertisement - serviceSelectors with default aggregationLengthV4 is allowed",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "aggregationLength: 32\nserviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "BGP advertisement - serviceSelectors with default aggregationLengthV6 is allowed",
            cat(&[
                pool("pool1", "[\"1000::/64\"]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "aggregationLengthV6: 128\nserviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "BGP advertisement - serviceSelectors with both default aggregationLength and aggregationLengthV6 is allowed",
            cat(&[
                pool("pool1", "[1.2.3.0/24, \"1000::/64\"]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "aggregationLength: 32\naggregationLengthV6: 128\nserviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "duplicate service selectors",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "BGPAdvertisement",
                    "adv1",
                    "serviceSelectors:\n- matchLabels: {app: nginx}\n- matchLabels: {app: nginx}",
                ),
            ]),
            Invalid(&["duplicate-entry BGPAdvertisement/adv1 spec.serviceSelectors[1]"]),
        ),
        row(
            "local preference is not compared for advertisements with service selectors",
            cat(&[
                two_nodes(),
                pool("pool1", "[10.20.30.40/24]"),
                obj("BGPAdvertisement", "a1", "localPref: 100"),
                obj(
                    "BGPAdvertisement",
                    "a2",
                    "localPref: 200\nserviceSelectors:\n- matchLabels: {app: nginx}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "peer with localASN field",
            peer(
                "peer1",
                "myASN: 100\npeerASN: 200\npeerAddress: 1.2.3.4\nlocalASN: 65410",
            ),
            Valid(&[]),
        ),
        row(
            "preferred selector scores matching nodes",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "L2Advertisement",
                    "prefer-edge",
                    "preferredNodeSelectors:\n- weight: 100\n  preference:\n    matchLabels: {role: edge}",
                ),
            ]),
            Valid(&[]),
        ),
        row(
            "preferred node selector that is not a selector",
            cat(&[
                pool("pool1", "[1.2.3.0/24]"),
                obj(
                    "L2Advertisement",
                    "prefer-edge",
                    "preferredNodeSelectors:\n- weight: 100\n  preference:\n    matchExpressions:\n    - {key: role, operator: surrounds, values: [edge]}",
                ),
            ]),
            Invalid(&[
                "invalid-selector L2Advertisement/prefer-edge spec.preferredNodeSelectors[0].preference",
            ]),
        ),
        // ---- FRR-mode rules (validation.go) where oxlb's own speaker goes further ----
        Row {
            case: "FRR mode: BGPPeers to one address in one VRF (different nodeSelectors)",
            objects: cat(&[
                peer(
                    "a",
                    "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.4\nnodeSelectors:\n- matchLabels: {rack: a}",
                ),
                peer(
                    "b",
                    "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.4\nnodeSelectors:\n- matchLabels: {rack: b}",
                ),
            ]),
            expect: Valid(&[]),
            deviation: Some(
                "MetalLB's FRR mode writes one FRR neighbor per address and VRF for every node, so it refuses a second BGPPeer to that address even for other nodes; oxlb's speaker runs each node's sessions itself, so peers differing in port, VRF or nodeSelectors are distinct sessions (the same ones still are refused: 'duplicate peers')",
            ),
        },
        Row {
            case: "FRR mode: all routerIDs equal",
            objects: cat(&[
                peer(
                    "a",
                    "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.4\nrouterID: 10.0.0.1",
                ),
                peer(
                    "b",
                    "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.5\nrouterID: 10.0.0.2",
                ),
            ]),
            expect: Valid(&[]),
            deviation: Some(
                "FRR has one router ID per BGP instance; oxlb's speaker sends the BGP identifier per session (RFC 4271 §4.2), so each BGPPeer's routerID is honoured",
            ),
        },
        Row {
            case: "FRR mode: one myASN per VRF",
            objects: cat(&[
                peer("a", "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.4"),
                peer("b", "myASN: 44\npeerASN: 43\npeerAddress: 1.2.3.5"),
            ]),
            expect: Valid(&[]),
            deviation: Some(
                "FRR has one local AS per BGP instance (VRF); oxlb's speaker puts each session's myASN in its own OPEN, so sessions with different local ASes coexist",
            ),
        },
        Row {
            case: "hold time beyond 65535s",
            objects: peer(
                "a",
                "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.4\nholdTime: 70000s",
            ),
            expect: Invalid(&["hold-time BGPPeer/a spec.holdTime"]),
            deviation: Some(
                "MetalLB passes it on and FRR refuses the line; the OPEN message's Hold Time is 16 bits (RFC 4271 §4.2), so oxlb refuses it up front",
            ),
        },
        Row {
            case: "IPv6 routerID",
            objects: peer(
                "a",
                "myASN: 42\npeerASN: 43\npeerAddress: 1.2.3.4\nrouterID: \"fd00::1\"",
            ),
            expect: Invalid(&["invalid-address BGPPeer/a spec.routerID"]),
            deviation: Some(
                "MetalLB parses routerID with net.ParseIP; a BGP identifier is 32 bits (RFC 6286 §2.1), so oxlb accepts IPv4 only",
            ),
        },
        Row {
            case: "range from IPv6 to IPv4",
            objects: pool("p", "[\"::1-10.0.0.1\"]"),
            expect: Invalid(&["mixed-family-range IPAddressPool/p spec.addresses[0]"]),
            deviation: Some(
                "MetalLB's range summarizer yields no prefix for a mixed-family range, so the entry silently adds no address; oxlb says so instead",
            ),
        },
        Row {
            case: "different local pref, no Node objects known (files), same nodeSelectors",
            objects: cat(&[
                pool("pool1", "[10.20.30.40/24]"),
                obj("BGPAdvertisement", "a1", "localPref: 100"),
                obj("BGPAdvertisement", "a2", "localPref: 200"),
            ]),
            expect: Invalid(&["local-pref-conflict BGPAdvertisement/a2 spec.localPref"]),
            deviation: Some(
                "MetalLB intersects the Node objects the nodeSelectors match, and with none known finds no conflict; oxlb without Node objects (oxlb run on files) treats equal nodeSelectors as the same nodes, since whatever node runs it announces both",
            ),
        },
    ]
}

fn key(d: &Diagnostic) -> String {
    let code = serde_json::to_value(d.code).unwrap();
    let mut out = format!("{} {}/{}", code.as_str().unwrap(), d.kind, d.name);
    if !d.field.is_empty() {
        out.push(' ');
        out.push_str(&d.field);
    }
    out
}

#[test]
fn oxlb_decides_as_metallb_case_by_case() {
    let rows = rows();
    assert!(rows.len() >= 90, "table too small: {}", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let (errors, warnings) = match load_str(&row.objects, None, "metallb-system") {
            Err(all) => all.into_iter().partition(Diagnostic::is_error),
            Ok(snapshot) => {
                let built = build_config(&snapshot);
                (built.config.err().unwrap_or_default(), built.warnings)
            }
        };
        let errors: BTreeSet<String> = errors.iter().map(key).collect();
        let warnings: BTreeSet<String> = warnings.iter().map(key).collect();
        let ok = match &row.expect {
            Valid(expected) => errors.is_empty() && expected.iter().all(|w| warnings.contains(*w)),
            Invalid(expected) => errors == expected.iter().map(|e| e.to_string()).collect(),
        };
        if !ok {
            failures.push(format!(
                "{}: errors {errors:?}, warnings {warnings:?}{}",
                row.case,
                row.deviation
                    .map(|d| format!(" (deviation: {d})"))
                    .unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn main_branch_fields_reach_the_model() {
    let text = [
        pool("pool1", "[1.2.3.0/24]"),
        peer("peer1", "myASN: 100\npeerASN: 65410\npeerAddress: 1.2.3.4\nlocalASN: 65410"),
        obj("BGPAdvertisement", "adv1", "serviceSelectors:\n- matchLabels: {app: nginx}"),
        obj("L2Advertisement", "l2", "serviceSelectors:\n- matchLabels: {app: web}\npreferredNodeSelectors:\n- weight: 40\n  preference:\n    matchLabels: {role: edge}"),
    ]
    .concat();
    let config = build_config(&load_str(&text, None, "metallb-system").unwrap())
        .config
        .unwrap();
    let peer = &config.peers["peer1"];
    assert_eq!(peer.local_asn, Some(65410));
    assert_eq!(peer.session_asn(), 65410);
    // The session speaks as localASN, so a peer in that AS is internal.
    assert!(peer.is_ibgp());
    assert_eq!(config.bgp_advertisements["adv1"].service_selectors.len(), 1);
    let l2 = &config.l2_advertisements["l2"];
    assert_eq!(l2.service_selectors.len(), 1);
    assert_eq!(l2.preferred_nodes.len(), 1);
    assert_eq!(l2.preferred_nodes[0].weight, 40);
}

#[test]
fn every_deviation_says_why() {
    for row in rows() {
        if let Some(why) = row.deviation {
            assert!(why.len() > 40, "{}: deviation without a reason", row.case);
        }
    }
}
