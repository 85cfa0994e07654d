//! Adj-RIB-Out of one session: what the peer has been sent, the diff against what it
//! should have, and packing of that diff into as few UPDATEs as the 4096-octet limit
//! allows (RFC 4271 §4.3, §9.2): every prefix sharing identical attributes rides in one
//! message until it is full.

use crate::packet::link_bandwidth::LinkBandwidth;
use crate::packet::prefix::{self, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};
use crate::packet::update::{Attribute, Context, ORIGIN_IGP, flag, type_code};
use crate::packet::{HEADER_LEN, MAX_MESSAGE_LEN, Update, message_type};
use crate::settings::RouteAttributes;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub type Routes = BTreeMap<IpNet, Arc<RouteAttributes>>;

/// How routes are written on this session, fixed once it is Established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    pub local_asn: u32,
    pub ibgp: bool,
    pub ctx: Context,
    /// IPv4 NLRI possible: family negotiated and an IPv4 next hop known.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 NLRI possible: family negotiated and an IPv6 next hop known (on an IPv4
    /// session the IPv4-mapped form of the local address).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Sent after `next_hop_v6` (Next Hop length 32) when the peer shares a subnet
    /// with us (RFC 2545 §3).
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
    /// IPv4 NLRI with an IPv6 next hop (global, then link-local when on a shared
    /// subnet), in MP_REACH_NLRI for AFI 1 / SAFI 1: an IPv6 session where both sides
    /// sent the Extended Next Hop Encoding capability (RFC 8950 §4).
    pub next_hop_v4_extended: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
}

impl Encoding {
    pub fn can_send(&self, prefix: &IpNet) -> bool {
        match prefix {
            IpNet::V4(_) => self.next_hop_v4.is_some() || self.next_hop_v4_extended.is_some(),
            IpNet::V6(_) => self.next_hop_v6.is_some(),
        }
    }
}

/// Framed UPDATE messages, back to back, ready for the socket.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packed {
    pub bytes: Vec<u8>,
    pub messages: u64,
}

#[derive(Debug, Default)]
pub struct AdjRibOut {
    sent: Routes,
}

impl AdjRibOut {
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Forget everything: the session went down, the peer dropped our routes.
    pub fn clear(&mut self) {
        self.sent.clear();
    }

    /// Brings the peer from what it has to `desired` (only prefixes this session can
    /// carry), returning the UPDATEs that do it.
    pub fn sync(&mut self, desired: &Routes, enc: &Encoding) -> Packed {
        let mut withdraw = Vec::new();
        for prefix in self.sent.keys() {
            if !desired.contains_key(prefix) {
                withdraw.push(*prefix);
            }
        }
        let mut announce: BTreeMap<&RouteAttributes, Vec<IpNet>> = BTreeMap::new();
        for (prefix, attrs) in desired {
            if !enc.can_send(prefix) {
                continue;
            }
            if self.sent.get(prefix).is_none_or(|old| old != attrs) {
                announce.entry(attrs).or_default().push(*prefix);
            }
        }
        let mut out = Packed::default();
        pack_withdrawals(&withdraw, &mut out);
        for (attrs, prefixes) in &announce {
            pack_announcements(attrs, prefixes, enc, &mut out);
        }
        for prefix in withdraw {
            self.sent.remove(&prefix);
        }
        let mut added = 0;
        for (prefix, attrs) in desired {
            if enc.can_send(prefix) && self.sent.insert(*prefix, Arc::clone(attrs)).is_none() {
                added += 1;
            }
        }
        // Prefixes come in order, and a B-tree filled by inserts in order keeps its
        // nodes half full: after a bulk change (a session's first 10,000 routes) the
        // map is rebuilt packed (1.59 MB for 3 x 10,000 routes before; issue 22).
        if added > 64 && added * 2 > self.sent.len() {
            self.sent = std::mem::take(&mut self.sent).into_iter().collect();
        }
        out
    }

    /// Everything again (RFC 2918 route refresh).
    pub fn resend(&self, enc: &Encoding) -> Packed {
        let mut groups: BTreeMap<&RouteAttributes, Vec<IpNet>> = BTreeMap::new();
        for (prefix, attrs) in &self.sent {
            groups.entry(attrs).or_default().push(*prefix);
        }
        let mut out = Packed::default();
        for (attrs, prefixes) in &groups {
            pack_announcements(attrs, prefixes, enc, &mut out);
        }
        out
    }
}

/// End-of-RIB for one family (RFC 4724 §2).
pub fn end_of_rib(afi: u16, ctx: Context) -> Vec<u8> {
    let update = if afi == AFI_IPV4 {
        Update::default()
    } else {
        Update {
            attributes: vec![Attribute::MpUnreach {
                afi,
                safi: SAFI_UNICAST,
                withdrawn: vec![],
            }],
            ..Update::default()
        }
    };
    crate::packet::Message::Update(update).to_bytes(ctx)
}

/// The attributes every prefix of the group shares, in type-code order; MP_REACH_NLRI
/// is appended by the packer because it holds the prefixes.
fn shared_attributes(attrs: &RouteAttributes, enc: &Encoding, v4_next_hop: bool) -> Vec<u8> {
    let mut list = vec![Attribute::Origin(ORIGIN_IGP)];
    // RFC 4271 §5.1.2: empty towards iBGP, our AS prepended towards eBGP.
    let path = if enc.ibgp {
        vec![]
    } else {
        vec![enc.local_asn]
    };
    let as4 = !enc.ctx.four_octet_as && path.iter().any(|&asn| asn > u32::from(u16::MAX));
    list.push(Attribute::AsPath(path.clone()));
    if let (true, Some(nh)) = (v4_next_hop, enc.next_hop_v4) {
        list.push(Attribute::NextHop(nh));
    }
    if enc.ibgp {
        // RFC 4271 §5.1.5: LOCAL_PREF only inside the AS; default 100 like every router.
        list.push(Attribute::LocalPref(attrs.local_pref.unwrap_or(100)));
    }
    if !attrs.communities.is_empty() {
        list.push(Attribute::Communities(
            attrs.communities.iter().copied().collect(),
        ));
    }
    if let Some(weight) = attrs.link_bandwidth {
        // RFC 4271 §5 orders nothing, but type-code order (16 after 8) keeps the bytes
        // stable. The community is non-transitive (draft-ietf-idr-link-bandwidth §2):
        // the router uses it and does not pass it on.
        let community = LinkBandwidth::from_weight(enc.local_asn, weight);
        list.push(Attribute::ExtendedCommunities(vec![community.encode()]));
    }
    if as4 {
        // RFC 6793 §4.2.2: a 2-octet peer gets AS_TRANS in AS_PATH and the truth here.
        list.push(Attribute::As4Path(path));
    }
    if !attrs.large_communities.is_empty() {
        list.push(Attribute::LargeCommunities(
            attrs.large_communities.iter().copied().collect(),
        ));
    }
    let mut out = Vec::new();
    for attribute in &list {
        attribute.encode(enc.ctx, &mut out);
    }
    out
}

struct Message {
    bytes: Vec<u8>,
}

impl Message {
    /// Header, withdrawn length (filled later), attributes, ready for prefixes.
    fn start() -> Message {
        let mut bytes = Vec::with_capacity(MAX_MESSAGE_LEN);
        bytes.extend_from_slice(&[0xff; 16]);
        bytes.extend_from_slice(&[0, 0, message_type::UPDATE]);
        Message { bytes }
    }

    fn room(&self) -> usize {
        MAX_MESSAGE_LEN - self.bytes.len()
    }

    fn finish(mut self, out: &mut Packed) {
        let len = self.bytes.len() as u16;
        self.bytes[16..18].copy_from_slice(&len.to_be_bytes());
        out.bytes.extend_from_slice(&self.bytes);
        out.messages += 1;
    }
}

fn set_u16(bytes: &mut [u8], at: usize, value: usize) {
    bytes[at..at + 2].copy_from_slice(&(value as u16).to_be_bytes());
}

fn pack_withdrawals(prefixes: &[IpNet], out: &mut Packed) {
    let v4: Vec<_> = prefixes
        .iter()
        .filter(|p| matches!(p, IpNet::V4(_)))
        .collect();
    let v6: Vec<_> = prefixes
        .iter()
        .filter(|p| matches!(p, IpNet::V6(_)))
        .collect();
    // IPv4: in the Withdrawn Routes field of an UPDATE with no attributes.
    let mut rest = v4.as_slice();
    while !rest.is_empty() {
        let mut m = Message::start();
        m.bytes.extend_from_slice(&[0, 0]);
        let mut taken = 0;
        for p in rest {
            if m.room() < prefix::encoded_len(p) + 2 {
                break;
            }
            prefix::encode(p, &mut m.bytes);
            taken += 1;
        }
        let withdrawn_len = m.bytes.len() - HEADER_LEN - 2;
        set_u16(&mut m.bytes, HEADER_LEN, withdrawn_len);
        m.bytes.extend_from_slice(&[0, 0]);
        m.finish(out);
        rest = &rest[taken.max(1).min(rest.len())..];
    }
    // IPv6: MP_UNREACH_NLRI (RFC 4760 §4).
    let mut rest = v6.as_slice();
    while !rest.is_empty() {
        let mut m = Message::start();
        m.bytes.extend_from_slice(&[0, 0, 0, 0]);
        let attr_start = m.bytes.len();
        m.bytes.extend_from_slice(&[
            flag::OPTIONAL | flag::EXTENDED_LENGTH,
            type_code::MP_UNREACH_NLRI,
            0,
            0,
        ]);
        m.bytes.extend_from_slice(&AFI_IPV6.to_be_bytes());
        m.bytes.push(SAFI_UNICAST);
        let mut taken = 0;
        for p in rest {
            if m.room() < prefix::encoded_len(p) {
                break;
            }
            prefix::encode(p, &mut m.bytes);
            taken += 1;
        }
        let attr_len = m.bytes.len() - attr_start;
        set_u16(&mut m.bytes, attr_start + 2, attr_len - 4);
        set_u16(&mut m.bytes, HEADER_LEN + 2, attr_len);
        m.finish(out);
        rest = &rest[taken.max(1).min(rest.len())..];
    }
}

fn pack_announcements(
    attrs: &RouteAttributes,
    prefixes: &[IpNet],
    enc: &Encoding,
    out: &mut Packed,
) {
    let v4: Vec<_> = prefixes
        .iter()
        .filter(|p| matches!(p, IpNet::V4(_)))
        .collect();
    let v6: Vec<_> = prefixes
        .iter()
        .filter(|p| matches!(p, IpNet::V6(_)))
        .collect();
    if !v4.is_empty() && enc.next_hop_v4.is_some() {
        let shared = shared_attributes(attrs, enc, true);
        let mut rest = v4.as_slice();
        while !rest.is_empty() {
            let mut m = Message::start();
            m.bytes.extend_from_slice(&[0, 0]);
            m.bytes
                .extend_from_slice(&(shared.len() as u16).to_be_bytes());
            m.bytes.extend_from_slice(&shared);
            let mut taken = 0;
            for p in rest {
                if m.room() < prefix::encoded_len(p) {
                    break;
                }
                prefix::encode(p, &mut m.bytes);
                taken += 1;
            }
            m.finish(out);
            rest = &rest[taken.max(1).min(rest.len())..];
        }
    }
    if let (false, None, Some((global, link_local))) =
        (v4.is_empty(), enc.next_hop_v4, enc.next_hop_v4_extended)
    {
        let shared = shared_attributes(attrs, enc, false);
        pack_mp_reach(AFI_IPV4, &v4, &shared, global, link_local, out);
    }
    if let (false, Some(next_hop)) = (v6.is_empty(), enc.next_hop_v6) {
        let shared = shared_attributes(attrs, enc, false);
        pack_mp_reach(
            AFI_IPV6,
            &v6,
            &shared,
            next_hop,
            enc.next_hop_v6_link_local,
            out,
        );
    }
}

/// Prefixes of family `afi` in MP_REACH_NLRI (RFC 4760 §3) behind the `shared`
/// attributes, with an IPv6 next hop: 16 octets, or 32 with the link-local address
/// (RFC 2545 §3; for IPv4 NLRI RFC 8950 §3 allows the same two lengths).
fn pack_mp_reach(
    afi: u16,
    prefixes: &[&IpNet],
    shared: &[u8],
    next_hop: Ipv6Addr,
    link_local: Option<Ipv6Addr>,
    out: &mut Packed,
) {
    let mut rest = prefixes;
    while !rest.is_empty() {
        let mut m = Message::start();
        m.bytes.extend_from_slice(&[0, 0, 0, 0]);
        m.bytes.extend_from_slice(shared);
        let attr_start = m.bytes.len();
        m.bytes.extend_from_slice(&[
            flag::OPTIONAL | flag::EXTENDED_LENGTH,
            type_code::MP_REACH_NLRI,
            0,
            0,
        ]);
        m.bytes.extend_from_slice(&afi.to_be_bytes());
        m.bytes.push(SAFI_UNICAST);
        match link_local {
            Some(link_local) => {
                m.bytes.push(32);
                m.bytes.extend_from_slice(&next_hop.octets());
                m.bytes.extend_from_slice(&link_local.octets());
            }
            None => {
                m.bytes.push(16);
                m.bytes.extend_from_slice(&next_hop.octets());
            }
        }
        m.bytes.push(0);
        let mut taken = 0;
        for p in rest {
            if m.room() < prefix::encoded_len(p) {
                break;
            }
            prefix::encode(p, &mut m.bytes);
            taken += 1;
        }
        let mp_len = m.bytes.len() - attr_start;
        set_u16(&mut m.bytes, attr_start + 2, mp_len - 4);
        set_u16(&mut m.bytes, HEADER_LEN + 2, shared.len() + mp_len);
        m.finish(out);
        rest = &rest[taken.max(1).min(rest.len())..];
    }
}
#[cfg(test)]
#[path = "rib_tests.rs"]
mod tests;
