//! The IANA registries oxlb's BGP codec uses, as enums. Every one is total: a code
//! outside what we know is `Other(code)`, so decoding never fails on the conversion
//! and the number survives for logs. The numeric constants elsewhere in `packet`
//! (usable in `match` patterns) are defined from these.

macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident: $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this registry has no name for here.
            Other($repr),
        }

        impl $name {
            pub const fn from_code(code: $repr) -> $name {
                match code {
                    $( $value => $name::$variant, )*
                    other => $name::Other(other),
                }
            }

            pub const fn code(self) -> $repr {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Other(code) => code,
                }
            }

            /// The registry's name for the code; None for `Other`.
            pub const fn label(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )*
                    $name::Other(_) => None,
                }
            }
        }

        impl From<$repr> for $name {
            fn from(code: $repr) -> $name {
                $name::from_code(code)
            }
        }
    };
}

registry! {
    /// BGP Message Types (RFC 4271 §4.1, RFC 2918).
    MessageType: u8 {
        Open = 1 => "OPEN",
        Update = 2 => "UPDATE",
        Notification = 3 => "NOTIFICATION",
        Keepalive = 4 => "KEEPALIVE",
        RouteRefresh = 5 => "ROUTE-REFRESH",
    }
}

registry! {
    /// BGP Error (Notification) Codes (RFC 4271 §4.5, RFC 7313).
    ErrorCode: u8 {
        MessageHeader = 1 => "message header error",
        OpenMessage = 2 => "OPEN error",
        UpdateMessage = 3 => "UPDATE error",
        HoldTimerExpired = 4 => "hold timer expired",
        Fsm = 5 => "finite state machine error",
        Cease = 6 => "Cease",
        RouteRefresh = 7 => "ROUTE-REFRESH error",
    }
}

registry! {
    /// Message Header Error subcodes (RFC 4271 §6.1).
    HeaderSubcode: u8 {
        ConnectionNotSynchronized = 1 => "Connection Not Synchronized",
        BadMessageLength = 2 => "Bad Message Length",
        BadMessageType = 3 => "Bad Message Type",
    }
}

registry! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    RouteRefreshSubcode: u8 {
        InvalidMessageLength = 1 => "Invalid Message Length",
    }
}

registry! {
    /// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234).
    OpenSubcode: u8 {
        Unspecific = 0 => "Unspecific",
        UnsupportedVersion = 1 => "Unsupported Version Number",
        BadPeerAs = 2 => "Bad Peer AS",
        BadBgpIdentifier = 3 => "Bad BGP Identifier",
        UnsupportedOptionalParameter = 4 => "Unsupported Optional Parameter",
        UnacceptableHoldTime = 6 => "Unacceptable Hold Time",
        UnsupportedCapability = 7 => "Unsupported Capability",
        RoleMismatch = 11 => "Role Mismatch",
    }
}

registry! {
    /// UPDATE Message Error subcodes (RFC 4271 §6.3).
    UpdateSubcode: u8 {
        MalformedAttributeList = 1 => "Malformed Attribute List",
        UnrecognizedWellKnownAttribute = 2 => "Unrecognized Well-known Attribute",
        MissingWellKnownAttribute = 3 => "Missing Well-known Attribute",
        AttributeFlagsError = 4 => "Attribute Flags Error",
        AttributeLengthError = 5 => "Attribute Length Error",
        InvalidOriginAttribute = 6 => "Invalid ORIGIN Attribute",
        InvalidNextHopAttribute = 8 => "Invalid NEXT_HOP Attribute",
        OptionalAttributeError = 9 => "Optional Attribute Error",
        InvalidNetworkField = 10 => "Invalid Network Field",
        MalformedAsPath = 11 => "Malformed AS_PATH",
    }
}

registry! {
    /// BGP Finite State Machine Error subcodes (RFC 6608 §3).
    FsmSubcode: u8 {
        Unspecified = 0 => "Unspecified",
        UnexpectedInOpenSent = 1 => "Receive Unexpected Message in OpenSent State",
        UnexpectedInOpenConfirm = 2 => "Receive Unexpected Message in OpenConfirm State",
        UnexpectedInEstablished = 3 => "Receive Unexpected Message in Established State",
    }
}

registry! {
    /// BGP Cease NOTIFICATION subcodes (RFC 4486, RFC 8203, RFC 8538).
    CeaseSubcode: u8 {
        MaxPrefixes = 1 => "Maximum Number of Prefixes Reached",
        AdministrativeShutdown = 2 => "Administrative Shutdown",
        PeerDeconfigured = 3 => "Peer De-configured",
        AdministrativeReset = 4 => "Administrative Reset",
        ConnectionRejected = 5 => "Connection Rejected",
        OtherConfigurationChange = 6 => "Other Configuration Change",
        ConnectionCollisionResolution = 7 => "Connection Collision Resolution",
        OutOfResources = 8 => "Out of Resources",
        HardReset = 9 => "Hard Reset",
    }
}

registry! {
    /// BGP Path Attributes (type codes).
    AttributeType: u8 {
        Origin = 1 => "ORIGIN",
        AsPath = 2 => "AS_PATH",
        NextHop = 3 => "NEXT_HOP",
        MultiExitDisc = 4 => "MULTI_EXIT_DISC",
        LocalPref = 5 => "LOCAL_PREF",
        AtomicAggregate = 6 => "ATOMIC_AGGREGATE",
        Aggregator = 7 => "AGGREGATOR",
        Communities = 8 => "COMMUNITIES",
        OriginatorId = 9 => "ORIGINATOR_ID",
        ClusterList = 10 => "CLUSTER_LIST",
        MpReachNlri = 14 => "MP_REACH_NLRI",
        MpUnreachNlri = 15 => "MP_UNREACH_NLRI",
        ExtendedCommunities = 16 => "EXTENDED_COMMUNITIES",
        As4Path = 17 => "AS4_PATH",
        As4Aggregator = 18 => "AS4_AGGREGATOR",
        LargeCommunity = 32 => "LARGE_COMMUNITY",
    }
}

registry! {
    /// Address Family Numbers (the ones BGP unicast uses here).
    Afi: u16 {
        Ipv4 = 1 => "IPv4",
        Ipv6 = 2 => "IPv6",
    }
}

registry! {
    /// Subsequent Address Family Identifiers.
    Safi: u8 {
        Unicast = 1 => "unicast",
        Multicast = 2 => "multicast",
    }
}

registry! {
    /// Capability Codes (RFC 5492).
    CapabilityCode: u8 {
        Multiprotocol = 1 => "Multiprotocol Extensions",
        RouteRefresh = 2 => "Route Refresh",
        ExtendedNextHop = 5 => "Extended Next Hop Encoding",
        BgpRole = 9 => "BGP Role",
        GracefulRestart = 64 => "Graceful Restart",
        FourOctetAs = 65 => "4-octet AS number",
        AddPath = 69 => "ADD-PATH",
        EnhancedRouteRefresh = 70 => "Enhanced Route Refresh",
        Fqdn = 73 => "FQDN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_survive() {
        for code in 0..=u8::MAX {
            assert_eq!(AttributeType::from_code(code).code(), code);
            assert_eq!(MessageType::from_code(code).code(), code);
            assert_eq!(CapabilityCode::from_code(code).code(), code);
        }
        assert_eq!(AttributeType::from_code(1), AttributeType::Origin);
        assert_eq!(AttributeType::from_code(99), AttributeType::Other(99));
        assert_eq!(Afi::from_code(2).label(), Some("IPv6"));
        assert_eq!(UpdateSubcode::Other(42).label(), None);
    }
}
