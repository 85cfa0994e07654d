//! `BFDProfile` objects: bounds from MetalLB's CRD, defaults filled.

use std::collections::BTreeMap;

use oxlb_api::BFDProfile;

use super::Context;
use crate::diagnostic::Code;
use crate::model::BfdProfile;
use crate::snapshot::Sourced;

pub(super) fn build(
    cx: &mut Context,
    objects: &[Sourced<BFDProfile>],
) -> BTreeMap<String, BfdProfile> {
    let mut seen = BTreeMap::new();
    let mut profiles = BTreeMap::new();
    for object in objects {
        let Some(subject) = cx.claim_name(
            "BFDProfile",
            object,
            object.object.metadata.name.as_deref(),
            &mut seen,
        ) else {
            continue;
        };
        let spec = &object.object.spec;
        let mut ok = true;
        let mut bounded =
            |field: &str, value: Option<u32>, min: u32, max: u32, default: u32| -> u32 {
                let v = value.unwrap_or(default);
                if !(min..=max).contains(&v) {
                    cx.errors.push(
                        subject
                            .error(Code::BfdRange, format!("spec.{field}"), "out of range")
                            .value(v)
                            .expected(format!("{min}..{max}")),
                    );
                    ok = false;
                }
                v
            };
        let receive = bounded("receiveInterval", spec.receive_interval, 10, 60_000, 300);
        let transmit = bounded("transmitInterval", spec.transmit_interval, 10, 60_000, 300);
        let echo = bounded("echoInterval", spec.echo_interval, 10, 60_000, 50);
        let multiplier = bounded("detectMultiplier", spec.detect_multiplier, 2, 255, 3);
        let ttl = bounded("minimumTtl", spec.minimum_ttl, 1, 254, 254);
        // echoMode runs the Echo function (RFC 5880 §6.4) on single-hop sessions (IPv4,
        // IPv6 with global or unique-local addresses);
        // the peers it cannot run on are told in the BGPPeer check (build/peers.rs).
        // Echo with IPv6 prefixes is refused, as in MetalLB, by the advertisement check.
        if ok {
            profiles.insert(
                subject.name.to_string(),
                BfdProfile {
                    name: subject.name.to_string(),
                    receive_interval_ms: receive,
                    transmit_interval_ms: transmit,
                    echo_interval_ms: echo,
                    detect_multiplier: u8::try_from(multiplier).unwrap_or(u8::MAX),
                    minimum_ttl: u8::try_from(ttl).unwrap_or(u8::MAX),
                    echo_mode: spec.echo_mode.unwrap_or(false),
                    passive_mode: spec.passive_mode.unwrap_or(false),
                },
            );
        }
    }
    profiles
}
