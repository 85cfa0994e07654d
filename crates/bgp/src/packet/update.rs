//! UPDATE messages and the path attributes oxlb sends and validates (RFC 4271 §4.3, §5,
//! RFC 4760, RFC 6793, RFC 1997, RFC 8092), with RFC 7606 error handling on decode.

use super::attribute_error::{AttributeError, AttributeFault, ErrorAction};
use super::error::{NlriField, UpdateError};
use super::prefix::{self, AFI_IPV4, AFI_IPV6, PrefixError, SAFI_UNICAST};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

pub mod type_code {
    use super::super::iana::AttributeType as A;
    pub const ORIGIN: u8 = A::Origin.code();
    pub const AS_PATH: u8 = A::AsPath.code();
    pub const NEXT_HOP: u8 = A::NextHop.code();
    pub const MULTI_EXIT_DISC: u8 = A::MultiExitDisc.code();
    pub const LOCAL_PREF: u8 = A::LocalPref.code();
    pub const ATOMIC_AGGREGATE: u8 = A::AtomicAggregate.code();
    pub const AGGREGATOR: u8 = A::Aggregator.code();
    pub const COMMUNITIES: u8 = A::Communities.code();
    pub const ORIGINATOR_ID: u8 = A::OriginatorId.code();
    pub const CLUSTER_LIST: u8 = A::ClusterList.code();
    pub const MP_REACH_NLRI: u8 = A::MpReachNlri.code();
    pub const MP_UNREACH_NLRI: u8 = A::MpUnreachNlri.code();
    pub const EXTENDED_COMMUNITIES: u8 = A::ExtendedCommunities.code();
    pub const AS4_PATH: u8 = A::As4Path.code();
    pub const AS4_AGGREGATOR: u8 = A::As4Aggregator.code();
    pub const LARGE_COMMUNITIES: u8 = A::LargeCommunity.code();
}

pub const ORIGIN_IGP: u8 = 0;
const AS_SEQUENCE: u8 = 2;

/// The UPDATE as sent or received. Plain NLRI / withdrawn carry IPv4 only; IPv6 rides in
/// MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<IpNet>,
    pub attributes: Vec<Attribute>,
    pub nlri: Vec<IpNet>,
    /// Malformed attributes handled by treat-as-withdraw or attribute discard (RFC
    /// 7606): the message was well framed. The session logs them with the peer; routes
    /// we receive are ignored anyway.
    pub errors: Vec<AttributeError>,
}

/// The Optional and Transitive bits an attribute we know must carry (RFC 4271 §5,
/// and each attribute's RFC); None for type codes we do not know.
fn expected_flags(code: u8) -> Option<u8> {
    use self::type_code as t;
    let well_known = flag::TRANSITIVE;
    let optional_transitive = flag::OPTIONAL | flag::TRANSITIVE;
    let optional = flag::OPTIONAL;
    Some(match code {
        t::ORIGIN | t::AS_PATH | t::NEXT_HOP | t::LOCAL_PREF | t::ATOMIC_AGGREGATE => well_known,
        t::AGGREGATOR
        | t::COMMUNITIES
        | t::EXTENDED_COMMUNITIES
        | t::AS4_PATH
        | t::AS4_AGGREGATOR
        | t::LARGE_COMMUNITIES => optional_transitive,
        t::MULTI_EXIT_DISC
        | t::ORIGINATOR_ID
        | t::CLUSTER_LIST
        | t::MP_REACH_NLRI
        | t::MP_UNREACH_NLRI => optional,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Origin(u8),
    /// AS_SEQUENCE members only (what we send); other segment types decode as Unknown.
    AsPath(Vec<u32>),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    Communities(Vec<u32>),
    LargeCommunities(Vec<(u32, u32, u32)>),
    /// EXTENDED_COMMUNITIES (RFC 4360 §2): eight octets each.
    ExtendedCommunities(Vec<[u8; 8]>),
    MpReach {
        afi: u16,
        safi: u8,
        next_hops: Vec<IpAddr>,
        nlri: Vec<IpNet>,
    },
    MpUnreach {
        afi: u16,
        safi: u8,
        withdrawn: Vec<IpNet>,
    },
    /// AS4_PATH (RFC 6793 §3) when our AS does not fit 2 octets and the peer is old.
    As4Path(Vec<u32>),
    Unknown {
        flags: u8,
        type_code: u8,
        value: Vec<u8>,
    },
}

/// How AS numbers are written in AS_PATH: 4 octets only when both sides announced the
/// capability (RFC 6793 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub four_octet_as: bool,
}

impl Update {
    pub fn encode_body(&self, ctx: Context, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        for p in &self.withdrawn {
            prefix::encode(p, out);
        }
        let withdrawn_len = (out.len() - start - 2) as u16;
        out[start..start + 2].copy_from_slice(&withdrawn_len.to_be_bytes());
        let attrs_start = out.len();
        out.extend_from_slice(&[0, 0]);
        for attribute in &self.attributes {
            attribute.encode(ctx, out);
        }
        let attrs_len = (out.len() - attrs_start - 2) as u16;
        out[attrs_start..attrs_start + 2].copy_from_slice(&attrs_len.to_be_bytes());
        for p in &self.nlri {
            prefix::encode(p, out);
        }
    }

    /// RFC 4271 §6.3 and RFC 7606: lengths that make the NLRI impossible to locate, or a
    /// broken NLRI / MP_(UN)REACH field, reset the session (Err); a malformed attribute
    /// only marks the UPDATE as treat-as-withdraw.
    pub fn decode_body(body: &[u8], ctx: Context) -> Result<Update, UpdateError> {
        let lengths = UpdateError::FieldLengths;
        let (withdrawn_len, rest) = split_u16(body).ok_or(lengths.clone())?;
        let withdrawn_field = rest.get(..withdrawn_len).ok_or(lengths.clone())?;
        let rest = &rest[withdrawn_len..];
        let (attrs_len, rest) = split_u16(rest).ok_or(lengths.clone())?;
        let attrs_field = rest.get(..attrs_len).ok_or(lengths)?;
        let nlri_field = &rest[attrs_len..];
        let invalid = |field| move |_| UpdateError::InvalidNetwork { field };
        let mut update = Update {
            withdrawn: prefix::decode_all(AFI_IPV4, withdrawn_field)
                .map_err(invalid(NlriField::Withdrawn))?,
            nlri: prefix::decode_all(AFI_IPV4, nlri_field).map_err(invalid(NlriField::Nlri))?,
            ..Update::default()
        };
        decode_attributes(attrs_field, ctx, &mut update)?;
        if !update.treat_as_withdraw() && !update.nlri.is_empty() {
            // RFC 7606 §3 (d): missing well-known mandatory attributes when NLRI is present.
            let has = |t: fn(&Attribute) -> bool| update.attributes.iter().any(t);
            let missing = if !has(|a| matches!(a, Attribute::Origin(_))) {
                Some(type_code::ORIGIN)
            } else if !has(|a| {
                matches!(
                    a,
                    Attribute::AsPath(_) | Attribute::Unknown { type_code: 2, .. }
                )
            }) {
                Some(type_code::AS_PATH)
            } else if !has(|a| matches!(a, Attribute::NextHop(_))) {
                Some(type_code::NEXT_HOP)
            } else {
                None
            };
            if let Some(t) = missing {
                update.errors.push(AttributeError::new(
                    t,
                    AttributeFault::Missing,
                    ErrorAction::TreatAsWithdraw,
                ));
            }
        }
        Ok(update)
    }

    /// RFC 7606 §2: whether this UPDATE's routes are to be handled as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw)
    }

    /// True for End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4, an MP_UNREACH_NLRI
    /// with no prefixes and nothing else for other families.
    pub fn end_of_rib(&self) -> Option<(u16, u8)> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some((AFI_IPV4, SAFI_UNICAST)),
            [
                Attribute::MpUnreach {
                    afi,
                    safi,
                    withdrawn,
                },
            ] if withdrawn.is_empty() => Some((*afi, *safi)),
            _ => None,
        }
    }
}

fn split_u16(field: &[u8]) -> Option<(usize, &[u8])> {
    match field {
        [a, b, rest @ ..] => Some((usize::from(u16::from_be_bytes([*a, *b])), rest)),
        _ => None,
    }
}

/// RFC 4271 §6.3 as revised by RFC 7606 §3-§7. `Err` is a session reset; every
/// lighter error is recorded in `update.errors` and decoding goes on.
fn decode_attributes(
    mut field: &[u8],
    ctx: Context,
    update: &mut Update,
) -> Result<(), AttributeError> {
    use AttributeFault as F;
    use ErrorAction as A;
    let mut seen = [false; 256];
    while !field.is_empty() {
        let whole = field;
        let [flags, type_code, rest @ ..] = field else {
            // RFC 7606 §4: the attribute field ends inside an attribute header.
            let t = field.get(1).copied().unwrap_or(0);
            update
                .errors
                .push(AttributeError::new(t, F::Overrun, A::TreatAsWithdraw));
            return Ok(());
        };
        let (flags, type_code) = (*flags, *type_code);
        let mp = matches!(
            type_code,
            type_code::MP_REACH_NLRI | type_code::MP_UNREACH_NLRI
        );
        let length = if flags & flag::EXTENDED_LENGTH != 0 {
            split_u16(rest)
        } else {
            rest.split_first()
                .map(|(len, rest)| (usize::from(*len), rest))
        };
        let Some((value, rest)) =
            length.and_then(|(len, rest)| Some((rest.get(..len)?, &rest[len..])))
        else {
            // RFC 7606 §4: an attribute overrunning the attribute field is treat-as-withdraw,
            // unless it is MP_(UN)REACH, whose NLRI we then cannot find (§5.3 session reset).
            let action = if mp {
                A::SessionReset
            } else {
                A::TreatAsWithdraw
            };
            let error = AttributeError::new(type_code, F::Overrun, action);
            if mp {
                return Err(error);
            }
            update.errors.push(error);
            return Ok(());
        };
        let raw = &whole[..whole.len() - rest.len()];
        field = rest;
        let first_time = !std::mem::replace(&mut seen[usize::from(type_code)], true);
        if !first_time {
            // RFC 7606 §3 (g): a repeated MP_(UN)REACH is fatal, any other repeat is discarded.
            let action = if mp {
                A::SessionReset
            } else {
                A::AttributeDiscard
            };
            let error = AttributeError::new(type_code, F::Repeated, action);
            if mp {
                return Err(error);
            }
            update.errors.push(error);
            continue;
        }
        let kind = flags & (flag::OPTIONAL | flag::TRANSITIVE);
        match expected_flags(type_code) {
            // RFC 4271 §6.3: an unrecognised well-known attribute resets the session
            // (RFC 7606 keeps that), with the attribute as the NOTIFICATION's data.
            None if flags & flag::OPTIONAL == 0 => {
                return Err(AttributeError::new(
                    type_code,
                    F::UnrecognizedWellKnown {
                        attribute: raw.to_vec(),
                    },
                    A::SessionReset,
                ));
            }
            // RFC 7606 §3 (c): flags in conflict with the type code: treat-as-withdraw.
            Some(expected) if kind != expected => {
                update.errors.push(AttributeError::new(
                    type_code,
                    F::FlagsConflict { flags },
                    A::TreatAsWithdraw,
                ));
                continue;
            }
            _ => {}
        }
        match Attribute::decode(flags, type_code, value, ctx) {
            Ok(Some(attribute)) => update.attributes.push(attribute),
            Ok(None) => {} // a family we do not speak
            Err(error) if error.action == A::SessionReset => return Err(error),
            Err(error) => update.errors.push(error),
        }
    }
    Ok(())
}

fn u32_at(value: &[u8], at: usize) -> u32 {
    match value.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

impl Attribute {
    fn decode(
        flags: u8,
        type_code: u8,
        value: &[u8],
        ctx: Context,
    ) -> Result<Option<Attribute>, AttributeError> {
        use super::update::type_code as t;
        use AttributeFault as F;
        use ErrorAction as A;
        let len = value.len();
        // RFC 7606 §7: the approach each attribute's error takes.
        let withdraw = |fault| Err(AttributeError::new(type_code, fault, A::TreatAsWithdraw));
        let discard = |fault| Err(AttributeError::new(type_code, fault, A::AttributeDiscard));
        let reset = |fault| Err(AttributeError::new(type_code, fault, A::SessionReset));
        let unknown = || Attribute::Unknown {
            flags,
            type_code,
            value: value.to_vec(),
        };
        Ok(Some(match type_code {
            t::ORIGIN => match value {
                [o @ 0..=2] => Attribute::Origin(*o),
                [_] => return withdraw(F::BadValue),
                _ => return withdraw(F::BadLength { len }),
            },
            t::AS_PATH | t::AS4_PATH => {
                let width = if ctx.four_octet_as || type_code == t::AS4_PATH {
                    4
                } else {
                    2
                };
                let Some(path) = decode_as_path(value, width) else {
                    if type_code == t::AS4_PATH {
                        return discard(F::BadValue); // RFC 6793 §6, RFC 7606 §7.2
                    }
                    return withdraw(F::BadValue);
                };
                match path {
                    Some(members) if type_code == t::AS_PATH => Attribute::AsPath(members),
                    Some(members) => Attribute::As4Path(members),
                    None => Attribute::Unknown {
                        flags,
                        type_code,
                        value: value.to_vec(),
                    },
                }
            }
            t::NEXT_HOP => match value {
                [a, b, c, d] => Attribute::NextHop(Ipv4Addr::new(*a, *b, *c, *d)),
                _ => return withdraw(F::BadLength { len }),
            },
            t::MULTI_EXIT_DISC => match len {
                4 => Attribute::Med(u32_at(value, 0)),
                _ => return withdraw(F::BadLength { len }),
            },
            t::LOCAL_PREF => match len {
                4 => Attribute::LocalPref(u32_at(value, 0)),
                _ => return withdraw(F::BadLength { len }),
            },
            // RFC 7606 §7.6: ATOMIC_AGGREGATE carries nothing; else discarded.
            t::ATOMIC_AGGREGATE if len != 0 => return discard(F::BadLength { len }),
            // RFC 7606 §7.7: AGGREGATOR is AS (2 or 4 octets, as negotiated) + address.
            t::AGGREGATOR if len != if ctx.four_octet_as { 8 } else { 6 } => {
                return discard(F::BadLength { len });
            }
            t::AS4_AGGREGATOR if len != 8 => return discard(F::BadLength { len }),
            // RFC 7606 §7.9, §7.10: route reflection attributes.
            t::ORIGINATOR_ID if len != 4 => return withdraw(F::BadLength { len }),
            t::CLUSTER_LIST if len == 0 || !len.is_multiple_of(4) => {
                return withdraw(F::BadLength { len });
            }
            // RFC 7606 §7.14.
            t::EXTENDED_COMMUNITIES => match len {
                n if n > 0 && n % 8 == 0 => Attribute::ExtendedCommunities(
                    value
                        .chunks_exact(8)
                        .map(|c| {
                            let mut o = [0u8; 8];
                            o.copy_from_slice(c);
                            o
                        })
                        .collect(),
                ),
                _ => return withdraw(F::BadLength { len }),
            },
            t::COMMUNITIES => match len {
                n if n > 0 && n % 4 == 0 => {
                    Attribute::Communities((0..n).step_by(4).map(|i| u32_at(value, i)).collect())
                }
                _ => return withdraw(F::BadLength { len }),
            },
            // RFC 8092 §6.
            t::LARGE_COMMUNITIES => match len {
                n if n > 0 && n % 12 == 0 => Attribute::LargeCommunities(
                    (0..n)
                        .step_by(12)
                        .map(|i| (u32_at(value, i), u32_at(value, i + 4), u32_at(value, i + 8)))
                        .collect(),
                ),
                _ => return withdraw(F::BadLength { len }),
            },
            t::MP_REACH_NLRI => {
                // AFI(2) SAFI(1) NH-len(1) NH reserved(1) NLRI (RFC 4760 §3).
                let [a, b, safi, nh_len, rest @ ..] = value else {
                    return reset(F::BadLength { len });
                };
                let afi = u16::from_be_bytes([*a, *b]);
                let nh_len = usize::from(*nh_len);
                let Some(next_hop) = rest.get(..nh_len) else {
                    return reset(F::BadLength { len });
                };
                let Some(nlri) = rest.get(nh_len + 1..) else {
                    return reset(F::BadLength { len });
                };
                if *safi != SAFI_UNICAST || !(afi == AFI_IPV4 || afi == AFI_IPV6) {
                    // A family we never negotiated: ignore it rather than tear down.
                    return Ok(None);
                }
                let nlri = prefix::decode_all(afi, nlri).map_err(|_: PrefixError| {
                    AttributeError::new(type_code, F::BadNlri, A::SessionReset)
                })?;
                let next_hops = match next_hop.len() {
                    4 => vec![IpAddr::V4(Ipv4Addr::from(u32_at(next_hop, 0)))],
                    16 | 32 => next_hop
                        .chunks_exact(16)
                        .map(|c| {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(c);
                            IpAddr::V6(Ipv6Addr::from(o))
                        })
                        .collect(),
                    // RFC 7606 §7.11: a next hop length that fits no family.
                    _ => return withdraw(F::BadValue),
                };
                Attribute::MpReach {
                    afi,
                    safi: *safi,
                    next_hops,
                    nlri,
                }
            }
            t::MP_UNREACH_NLRI => {
                let [a, b, safi, rest @ ..] = value else {
                    return reset(F::BadLength { len });
                };
                let afi = u16::from_be_bytes([*a, *b]);
                if *safi != SAFI_UNICAST || !(afi == AFI_IPV4 || afi == AFI_IPV6) {
                    return Ok(None);
                }
                let withdrawn = prefix::decode_all(afi, rest)
                    .map_err(|_| AttributeError::new(type_code, F::BadNlri, A::SessionReset))?;
                Attribute::MpUnreach {
                    afi,
                    safi: *safi,
                    withdrawn,
                }
            }
            _ => unknown(),
        }))
    }

    pub fn encode(&self, ctx: Context, out: &mut Vec<u8>) {
        use super::update::type_code as t;
        let well_known = flag::TRANSITIVE;
        let optional_transitive = flag::OPTIONAL | flag::TRANSITIVE;
        let mut value = Vec::new();
        let (flags, type_code) = match self {
            Attribute::Origin(o) => {
                value.push(*o);
                (well_known, t::ORIGIN)
            }
            Attribute::AsPath(members) => {
                encode_as_path(members, if ctx.four_octet_as { 4 } else { 2 }, &mut value);
                (well_known, t::AS_PATH)
            }
            Attribute::As4Path(members) => {
                encode_as_path(members, 4, &mut value);
                (optional_transitive, t::AS4_PATH)
            }
            Attribute::NextHop(a) => {
                value.extend_from_slice(&a.octets());
                (well_known, t::NEXT_HOP)
            }
            Attribute::Med(m) => {
                value.extend_from_slice(&m.to_be_bytes());
                (flag::OPTIONAL, t::MULTI_EXIT_DISC)
            }
            Attribute::LocalPref(l) => {
                value.extend_from_slice(&l.to_be_bytes());
                (well_known, t::LOCAL_PREF)
            }
            Attribute::Communities(cs) => {
                cs.iter()
                    .for_each(|c| value.extend_from_slice(&c.to_be_bytes()));
                (optional_transitive, t::COMMUNITIES)
            }
            Attribute::LargeCommunities(cs) => {
                for (a, b, c) in cs {
                    value.extend_from_slice(&a.to_be_bytes());
                    value.extend_from_slice(&b.to_be_bytes());
                    value.extend_from_slice(&c.to_be_bytes());
                }
                (optional_transitive, t::LARGE_COMMUNITIES)
            }
            Attribute::ExtendedCommunities(cs) => {
                cs.iter().for_each(|c| value.extend_from_slice(c));
                // RFC 4360 §2: the attribute is optional transitive; whether one
                // community is transitive is a bit of its own type octet.
                (optional_transitive, t::EXTENDED_COMMUNITIES)
            }
            Attribute::MpReach {
                afi,
                safi,
                next_hops,
                nlri,
            } => {
                value.extend_from_slice(&afi.to_be_bytes());
                value.push(*safi);
                let nh_start = value.len();
                value.push(0);
                for nh in next_hops {
                    match nh {
                        IpAddr::V4(a) => value.extend_from_slice(&a.octets()),
                        IpAddr::V6(a) => value.extend_from_slice(&a.octets()),
                    }
                }
                value[nh_start] = (value.len() - nh_start - 1) as u8;
                value.push(0); // reserved
                nlri.iter().for_each(|p| prefix::encode(p, &mut value));
                (flag::OPTIONAL, t::MP_REACH_NLRI)
            }
            Attribute::MpUnreach {
                afi,
                safi,
                withdrawn,
            } => {
                value.extend_from_slice(&afi.to_be_bytes());
                value.push(*safi);
                withdrawn.iter().for_each(|p| prefix::encode(p, &mut value));
                (flag::OPTIONAL, t::MP_UNREACH_NLRI)
            }
            Attribute::Unknown {
                flags,
                type_code,
                value: v,
            } => {
                value.extend_from_slice(v);
                (*flags & !flag::EXTENDED_LENGTH, *type_code)
            }
        };
        write_attribute(flags, type_code, &value, out);
    }
}

/// Extended length only when the value needs it, and always for MP_(UN)REACH so their
/// size can grow while packing without re-encoding the header.
fn write_attribute(flags: u8, type_code: u8, value: &[u8], out: &mut Vec<u8>) {
    let extended = value.len() > 255
        || matches!(
            type_code,
            type_code::MP_REACH_NLRI | type_code::MP_UNREACH_NLRI
        );
    if extended {
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, type_code]);
        out.extend_from_slice(&(value.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, type_code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

/// AS_PATH with a single AS_SEQUENCE (or none when empty, iBGP).
fn encode_as_path(members: &[u32], width: usize, out: &mut Vec<u8>) {
    for chunk in members.chunks(255) {
        out.push(AS_SEQUENCE);
        out.push(chunk.len() as u8);
        for asn in chunk {
            if width == 4 {
                out.extend_from_slice(&asn.to_be_bytes());
            } else {
                let two = u16::try_from(*asn).unwrap_or(super::open::AS_TRANS);
                out.extend_from_slice(&two.to_be_bytes());
            }
        }
    }
}

/// Outer None: malformed. Inner None: well formed but not a plain AS_SEQUENCE path.
fn decode_as_path(mut value: &[u8], width: usize) -> Option<Option<Vec<u32>>> {
    let mut members = Vec::new();
    let mut plain = true;
    while let [kind, count, rest @ ..] = value {
        if !(1..=4).contains(kind) || *count == 0 {
            return None;
        }
        let len = usize::from(*count) * width;
        let segment = rest.get(..len)?;
        if *kind == AS_SEQUENCE {
            members.extend(segment.chunks_exact(width).map(|c| {
                if width == 4 {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                }
            }));
        } else {
            plain = false;
        }
        value = &rest[len..];
    }
    if !value.is_empty() {
        return None;
    }
    Some(plain.then_some(members))
}
