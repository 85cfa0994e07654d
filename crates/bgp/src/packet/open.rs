//! OPEN message and capabilities (RFC 4271 §4.2, RFC 5492, RFC 4760, RFC 6793, RFC 2918,
//! RFC 4724).

use super::error::{OpenError, OpenMalformed};
use super::iana::CapabilityCode;
use std::net::Ipv4Addr;

/// RFC 6793 §9: the 2-octet AS placed in "My Autonomous System" when ours does not fit.
pub const AS_TRANS: u16 = 23456;

const PARAM_CAPABILITIES: u8 = 2;

pub mod capability_code {
    use super::super::iana::CapabilityCode as C;
    pub const MULTIPROTOCOL: u8 = C::Multiprotocol.code();
    pub const ROUTE_REFRESH: u8 = C::RouteRefresh.code();
    pub const ENHANCED_ROUTE_REFRESH: u8 = C::EnhancedRouteRefresh.code();
    pub const EXTENDED_NEXT_HOP: u8 = C::ExtendedNextHop.code();
    pub const BGP_ROLE: u8 = C::BgpRole.code();
    pub const GRACEFUL_RESTART: u8 = C::GracefulRestart.code();
    pub const FOUR_OCTET_AS: u8 = C::FourOctetAs.code();
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS when the real AS is larger).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

/// A family in the graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub afi: u16,
    pub safi: u8,
    /// F bit: forwarding state was preserved across the restart.
    pub forwarding_preserved: bool,
}

/// One tuple of the Extended Next Hop Encoding capability (RFC 8950 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedNextHopFamily {
    pub nlri_afi: u16,
    pub nlri_safi: u16,
    pub next_hop_afi: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    RouteRefresh,
    /// Enhanced Route Refresh (RFC 7313 §3.1): ROUTE-REFRESH answers are framed by BoRR
    /// and EoRR.
    EnhancedRouteRefresh,
    /// Extended Next Hop Encoding (RFC 8950 §3): NLRI families whose next hop may be of
    /// another address family.
    ExtendedNextHop(Vec<ExtendedNextHopFamily>),
    /// BGP role (RFC 9234 §4.1): 0 Provider, 1 RS, 2 RS-Client, 3 Customer, 4 Peer.
    Role(u8),
    FourOctetAs(u32),
    GracefulRestart {
        /// R bit: the sender has restarted (RFC 4724 §3).
        restarting: bool,
        /// Restart time in seconds (12 bits).
        restart_time: u16,
        families: Vec<GracefulRestartFamily>,
    },
    /// Anything we do not act on (add-path, FQDN, BGP role...), kept so it can be logged.
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

/// The role that corresponds to the peer's (RFC 9234 §4.2): Provider <-> Customer,
/// RS <-> RS-Client, Peer <-> Peer. None for values the RFC does not define.
pub fn complementary_role(peer_role: u8) -> Option<u8> {
    match peer_role {
        0 => Some(3),
        3 => Some(0),
        1 => Some(2),
        2 => Some(1),
        4 => Some(4),
        _ => None,
    }
}

impl Open {
    /// The peer's real AS: the 4-octet capability when present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn has(&self, wanted: impl Fn(&Capability) -> bool) -> bool {
        self.capabilities.iter().any(wanted)
    }

    pub fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut caps = Vec::new();
        for capability in &self.capabilities {
            capability.encode(&mut caps);
        }
        if caps.is_empty() {
            out.push(0);
            return;
        }
        // One Capabilities parameter holds them all (RFC 5492 §4 allows either form);
        // our own set is far below the 255-octet limit of the length octet.
        let param_len = caps.len().min(253);
        out.push((param_len + 2) as u8);
        out.push(PARAM_CAPABILITIES);
        out.push(param_len as u8);
        out.extend_from_slice(&caps[..param_len]);
    }

    /// RFC 4271 §6.2 checks that need no configuration; peer AS and identifier
    /// uniqueness are checked by the session, which knows what it expects.
    pub fn decode_body(body: &[u8]) -> Result<Open, OpenError> {
        let malformed = |m| Err(OpenError::Malformed(m));
        if body.len() < 10 {
            return malformed(OpenMalformed::TooShort);
        }
        let version = body[0];
        if version != 4 {
            return Err(OpenError::UnsupportedVersion { version });
        }
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        if hold_time == 1 || hold_time == 2 {
            return Err(OpenError::UnacceptableHoldTime { hold_time });
        }
        let bgp_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        if bgp_id.is_unspecified() {
            return Err(OpenError::BadBgpIdentifier { id: bgp_id });
        }
        let params_len = usize::from(body[9]);
        let mut params = &body[10..];
        if params.len() != params_len {
            return malformed(OpenMalformed::ParametersLength);
        }
        let mut capabilities = Vec::new();
        while let [kind, len, rest @ ..] = params {
            let len = usize::from(*len);
            if rest.len() < len {
                return malformed(OpenMalformed::ParameterOverrun);
            }
            if *kind != PARAM_CAPABILITIES {
                return Err(OpenError::UnsupportedOptionalParameter { parameter: *kind });
            }
            decode_capabilities(&rest[..len], &mut capabilities).map_err(OpenError::Malformed)?;
            params = &rest[len..];
        }
        if !params.is_empty() {
            return malformed(OpenMalformed::ParameterOverrun);
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

fn decode_capabilities(mut field: &[u8], into: &mut Vec<Capability>) -> Result<(), OpenMalformed> {
    while let [code, len, rest @ ..] = field {
        let len = usize::from(*len);
        let value = rest.get(..len).ok_or(OpenMalformed::CapabilityOverrun)?;
        into.push(
            Capability::decode(*code, value).ok_or(OpenMalformed::BadCapability {
                code: CapabilityCode::from_code(*code),
            })?,
        );
        field = &rest[len..];
    }
    if field.is_empty() {
        Ok(())
    } else {
        Err(OpenMalformed::CapabilityOverrun)
    }
}

impl Capability {
    fn decode(code: u8, value: &[u8]) -> Option<Capability> {
        use capability_code::*;
        Some(match (code, value) {
            (MULTIPROTOCOL, [a, b, _reserved, safi]) => Capability::Multiprotocol {
                afi: u16::from_be_bytes([*a, *b]),
                safi: *safi,
            },
            (MULTIPROTOCOL, _) => return None,
            (ROUTE_REFRESH, []) => Capability::RouteRefresh,
            (ROUTE_REFRESH, _) => return None,
            // RFC 7313 §3.1: Capability Length 0.
            (ENHANCED_ROUTE_REFRESH, []) => Capability::EnhancedRouteRefresh,
            (ENHANCED_ROUTE_REFRESH, _) => return None,
            (EXTENDED_NEXT_HOP, tuples) if !tuples.is_empty() && tuples.len() % 6 == 0 => {
                Capability::ExtendedNextHop(
                    tuples
                        .chunks_exact(6)
                        .map(|t| ExtendedNextHopFamily {
                            nlri_afi: u16::from_be_bytes([t[0], t[1]]),
                            nlri_safi: u16::from_be_bytes([t[2], t[3]]),
                            next_hop_afi: u16::from_be_bytes([t[4], t[5]]),
                        })
                        .collect(),
                )
            }
            (EXTENDED_NEXT_HOP, _) => return None,
            (BGP_ROLE, [role]) => Capability::Role(*role),
            (FOUR_OCTET_AS, [a, b, c, d]) => {
                Capability::FourOctetAs(u32::from_be_bytes([*a, *b, *c, *d]))
            }
            (FOUR_OCTET_AS, _) => return None,
            (GRACEFUL_RESTART, [flags, low, families @ ..]) if families.len() % 4 == 0 => {
                Capability::GracefulRestart {
                    restarting: flags & 0x80 != 0,
                    restart_time: u16::from_be_bytes([flags & 0x0f, *low]),
                    families: families
                        .chunks_exact(4)
                        .map(|f| GracefulRestartFamily {
                            afi: u16::from_be_bytes([f[0], f[1]]),
                            safi: f[2],
                            forwarding_preserved: f[3] & 0x80 != 0,
                        })
                        .collect(),
                }
            }
            (GRACEFUL_RESTART, _) => return None,
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        use capability_code::*;
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&[MULTIPROTOCOL, 4]);
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
            }
            Capability::RouteRefresh => out.extend_from_slice(&[ROUTE_REFRESH, 0]),
            Capability::EnhancedRouteRefresh => out.extend_from_slice(&[ENHANCED_ROUTE_REFRESH, 0]),
            Capability::ExtendedNextHop(families) => {
                // 42 tuples fill the 255-octet capability length.
                let families = &families[..families.len().min(42)];
                out.extend_from_slice(&[EXTENDED_NEXT_HOP, (6 * families.len()) as u8]);
                for f in families {
                    out.extend_from_slice(&f.nlri_afi.to_be_bytes());
                    out.extend_from_slice(&f.nlri_safi.to_be_bytes());
                    out.extend_from_slice(&f.next_hop_afi.to_be_bytes());
                }
            }
            Capability::Role(role) => out.extend_from_slice(&[BGP_ROLE, 1, *role]),
            Capability::FourOctetAs(asn) => {
                out.extend_from_slice(&[FOUR_OCTET_AS, 4]);
                out.extend_from_slice(&asn.to_be_bytes());
            }
            Capability::GracefulRestart {
                restarting,
                restart_time,
                families,
            } => {
                let families = &families[..families.len().min(62)];
                out.extend_from_slice(&[GRACEFUL_RESTART, (2 + 4 * families.len()) as u8]);
                let time = (*restart_time).min(0x0fff).to_be_bytes();
                out.push(time[0] | if *restarting { 0x80 } else { 0 });
                out.push(time[1]);
                for f in families {
                    out.extend_from_slice(&f.afi.to_be_bytes());
                    out.push(f.safi);
                    out.push(if f.forwarding_preserved { 0x80 } else { 0 });
                }
            }
            Capability::Unknown { code, value } => {
                let value = &value[..value.len().min(255)];
                out.push(*code);
                out.push(value.len() as u8);
                out.extend_from_slice(value);
            }
        }
    }
}
