//! BFD Control packet codec (RFC 5880 §4.1) and the stateless part of the reception
//! checks of §6.8.6. The checks that need a session (discriminator lookup, the
//! authentication state of the session) live in the shell and in [`crate::session`].
//!
//! Decoding never panics and never allocates: a packet is a fixed 24-byte record, and
//! anything else is a [`DropReason`].

use std::fmt;

/// Length of the mandatory section (§4.1); oxlb never sends an authentication section.
pub const CONTROL_LEN: usize = 24;

/// The only protocol version (§4.1 "Version (Vers)").
pub const VERSION: u8 = 1;

/// Session state as carried in the `Sta` field (§4.1) and held in `bfd.SessionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(bits: u8) -> State {
        match bits & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Diagnostic codes (§4.1 "Diagnostic (Diag)"). Unknown values (9..31, reserved) are
/// kept as they came so a received packet re-encodes byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    Reserved(u8),
}

impl Diag {
    /// Whether this diagnostic, sent by a system whose session went Down, says a path
    /// failed (RFC 5880 §4.1: detection time expired, echo failed, forwarding plane
    /// reset, path down, concatenated path down either way) rather than an
    /// administrative act, a reset, or nothing at all.
    pub fn is_path_failure(self) -> bool {
        matches!(
            self,
            Diag::ControlDetectionTimeExpired
                | Diag::EchoFunctionFailed
                | Diag::ForwardingPlaneReset
                | Diag::PathDown
                | Diag::ConcatenatedPathDown
                | Diag::ReverseConcatenatedPathDown
        )
    }

    fn from_bits(bits: u8) -> Diag {
        match bits & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Reserved(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(v) => v & 0x1f,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Diag::None => "none",
            Diag::ControlDetectionTimeExpired => "control_detection_time_expired",
            Diag::EchoFunctionFailed => "echo_function_failed",
            Diag::NeighborSignaledSessionDown => "neighbor_signaled_session_down",
            Diag::ForwardingPlaneReset => "forwarding_plane_reset",
            Diag::PathDown => "path_down",
            Diag::ConcatenatedPathDown => "concatenated_path_down",
            Diag::AdministrativelyDown => "administratively_down",
            Diag::ReverseConcatenatedPathDown => "reverse_concatenated_path_down",
            Diag::Reserved(_) => "reserved",
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mandatory section of a BFD Control packet (§4.1). Intervals are microseconds,
/// as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: Diag,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub authentication_present: bool,
    pub demand: bool,
    pub multipoint: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received datagram was dropped. Used as a log field and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than the 24-byte mandatory section, or than its own Length field says.
    Truncated,
    /// §6.8.6: version is not 1.
    BadVersion,
    /// §6.8.6: Length below the minimum (24, or 26 with the A bit).
    BadLength,
    /// §6.8.6: Detect Mult is zero.
    ZeroDetectMult,
    /// §6.8.6: the Multipoint bit is set.
    Multipoint,
    /// §6.8.6: My Discriminator is zero.
    ZeroMyDiscriminator,
    /// §6.8.6: Your Discriminator is zero and State is neither Down nor AdminDown.
    ZeroYourDiscriminator,
    /// §6.8.6: the A bit is set but no session uses authentication (oxlb never does).
    AuthenticationUnsupported,
    /// §6.8.6: Your Discriminator selects no session, or no session matches the
    /// source (when Your Discriminator is zero).
    NoSession,
    /// RFC 5881 §5: single-hop packet received with a TTL / hop limit other than 255.
    BadTtl,
    /// RFC 5883 §5 / BFDProfile `minimumTtl`: multihop packet below the minimum TTL.
    BelowMinimumTtl,
    /// §6.8.6: the session is AdminDown locally.
    AdminDown,
}

impl DropReason {
    pub const ALL: [DropReason; 12] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::BadLength,
        DropReason::ZeroDetectMult,
        DropReason::Multipoint,
        DropReason::ZeroMyDiscriminator,
        DropReason::ZeroYourDiscriminator,
        DropReason::AuthenticationUnsupported,
        DropReason::NoSession,
        DropReason::BadTtl,
        DropReason::BelowMinimumTtl,
        DropReason::AdminDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::BadLength => "bad_length",
            DropReason::ZeroDetectMult => "zero_detect_mult",
            DropReason::Multipoint => "multipoint",
            DropReason::ZeroMyDiscriminator => "zero_my_discriminator",
            DropReason::ZeroYourDiscriminator => "zero_your_discriminator",
            DropReason::AuthenticationUnsupported => "authentication_unsupported",
            DropReason::NoSession => "no_session",
            DropReason::BadTtl => "bad_ttl",
            DropReason::BelowMinimumTtl => "below_minimum_ttl",
            DropReason::AdminDown => "admin_down",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

impl ControlPacket {
    /// Decodes a datagram payload and applies the stateless checks of §6.8.6, in the
    /// order the RFC lists them.
    pub fn decode(datagram: &[u8]) -> Result<ControlPacket, DropReason> {
        let Some(header) = datagram.first_chunk::<CONTROL_LEN>() else {
            return Err(DropReason::Truncated);
        };
        let version = header[0] >> 5;
        if version != VERSION {
            return Err(DropReason::BadVersion);
        }
        let flags = header[1];
        let authentication_present = flags & FLAG_AUTH != 0;
        let length = usize::from(header[3]);
        // §6.8.6: "less than the minimum correct value (24 if the A bit is clear, 26
        // if the A bit is set)".
        let minimum = if authentication_present { 26 } else { 24 };
        if length < minimum {
            return Err(DropReason::BadLength);
        }
        // §6.8.6: "greater than the payload of the encapsulating protocol".
        if length > datagram.len() {
            return Err(DropReason::Truncated);
        }
        let word =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let packet = ControlPacket {
            diag: Diag::from_bits(header[0]),
            state: State::from_bits(flags >> 6),
            poll: flags & FLAG_POLL != 0,
            final_: flags & FLAG_FINAL != 0,
            control_plane_independent: flags & FLAG_CPI != 0,
            authentication_present,
            demand: flags & FLAG_DEMAND != 0,
            multipoint: flags & FLAG_MULTIPOINT != 0,
            detect_mult: header[2],
            my_discriminator: word(4),
            your_discriminator: word(8),
            desired_min_tx_us: word(12),
            required_min_rx_us: word(16),
            required_min_echo_rx_us: word(20),
        };
        if packet.detect_mult == 0 {
            return Err(DropReason::ZeroDetectMult);
        }
        if packet.multipoint {
            return Err(DropReason::Multipoint);
        }
        if packet.my_discriminator == 0 {
            return Err(DropReason::ZeroMyDiscriminator);
        }
        if packet.your_discriminator == 0 && !matches!(packet.state, State::Down | State::AdminDown)
        {
            return Err(DropReason::ZeroYourDiscriminator);
        }
        // No oxlb session uses authentication, so an A bit always fails the §6.8.6
        // rule "A bit set and no authentication in use: discard".
        if packet.authentication_present {
            return Err(DropReason::AuthenticationUnsupported);
        }
        Ok(packet)
    }

    /// Encodes the mandatory section (Length 24; oxlb sends no authentication).
    pub fn encode(&self) -> [u8; CONTROL_LEN] {
        let mut out = [0u8; CONTROL_LEN];
        out[0] = (VERSION << 5) | self.diag.bits();
        let mut flags = (self.state as u8) << 6;
        for (set, bit) in [
            (self.poll, FLAG_POLL),
            (self.final_, FLAG_FINAL),
            (self.control_plane_independent, FLAG_CPI),
            (self.authentication_present, FLAG_AUTH),
            (self.demand, FLAG_DEMAND),
            (self.multipoint, FLAG_MULTIPOINT),
        ] {
            if set {
                flags |= bit;
            }
        }
        out[1] = flags;
        out[2] = self.detect_mult;
        out[3] = CONTROL_LEN as u8;
        out[4..8].copy_from_slice(&self.my_discriminator.to_be_bytes());
        out[8..12].copy_from_slice(&self.your_discriminator.to_be_bytes());
        out[12..16].copy_from_slice(&self.desired_min_tx_us.to_be_bytes());
        out[16..20].copy_from_slice(&self.required_min_rx_us.to_be_bytes());
        out[20..24].copy_from_slice(&self.required_min_echo_rx_us.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Up packet with Poll set: disc 0x11223344 -> 0x55667788, 300 ms / 300 ms, x3.
    const UP_POLL: [u8; 24] = [
        0x20, 0xE0, 0x03, 0x18, // v1 diag 0, Up, P, mult 3, len 24
        0x11, 0x22, 0x33, 0x44, // my discriminator
        0x55, 0x66, 0x77, 0x88, // your discriminator
        0x00, 0x04, 0x93, 0xE0, // desired min tx 300000 us
        0x00, 0x04, 0x93, 0xE0, // required min rx 300000 us
        0x00, 0x00, 0x00, 0x00, // required min echo rx 0
    ];

    fn up_poll() -> ControlPacket {
        ControlPacket {
            diag: Diag::None,
            state: State::Up,
            poll: true,
            final_: false,
            control_plane_independent: false,
            authentication_present: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discriminator: 0x1122_3344,
            your_discriminator: 0x5566_7788,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn decodes_and_encodes_byte_exact() {
        assert_eq!(ControlPacket::decode(&UP_POLL), Ok(up_poll()));
        assert_eq!(up_poll().encode(), UP_POLL);
    }

    #[test]
    fn down_packet_with_diag_and_final() {
        // Down, diag 1 (detection time expired), F, your disc 0 (allowed when Down),
        // mult 5, 1 s / 1 s, echo 50 ms.
        let bytes = [
            0x21, 0x50, 0x05, 0x18, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x0F, 0x42, 0x40,
            0x00, 0x0F, 0x42, 0x40, 0x00, 0x00, 0xC3, 0x50,
        ];
        let packet = ControlPacket::decode(&bytes).unwrap();
        assert_eq!(packet.state, State::Down);
        assert_eq!(packet.diag, Diag::ControlDetectionTimeExpired);
        assert!(packet.final_ && !packet.poll);
        assert_eq!(packet.detect_mult, 5);
        assert_eq!(packet.my_discriminator, 1);
        assert_eq!(packet.your_discriminator, 0);
        assert_eq!(packet.desired_min_tx_us, 1_000_000);
        assert_eq!(packet.required_min_echo_rx_us, 50_000);
        assert_eq!(packet.encode(), bytes);
    }

    #[test]
    fn reserved_diag_and_cpi_round_trip() {
        let mut bytes = UP_POLL;
        bytes[0] = 0x20 | 0x1f;
        bytes[1] |= FLAG_CPI;
        let packet = ControlPacket::decode(&bytes).unwrap();
        assert_eq!(packet.diag, Diag::Reserved(31));
        assert!(packet.control_plane_independent);
        assert_eq!(packet.encode(), bytes);
    }

    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let mut bytes = UP_POLL.to_vec();
        bytes.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(ControlPacket::decode(&bytes), Ok(up_poll()));
    }

    fn with(mut bytes: [u8; 24], edit: impl FnOnce(&mut [u8; 24])) -> [u8; 24] {
        edit(&mut bytes);
        bytes
    }

    #[test]
    fn reception_checks_of_6_8_6() {
        let cases: Vec<(Vec<u8>, DropReason)> = vec![
            (vec![], DropReason::Truncated),
            (UP_POLL[..23].to_vec(), DropReason::Truncated),
            (
                with(UP_POLL, |b| b[0] = 0x40).to_vec(),
                DropReason::BadVersion,
            ),
            (
                with(UP_POLL, |b| b[0] = 0x00).to_vec(),
                DropReason::BadVersion,
            ),
            (with(UP_POLL, |b| b[3] = 23).to_vec(), DropReason::BadLength),
            (with(UP_POLL, |b| b[3] = 25).to_vec(), DropReason::Truncated),
            (
                with(UP_POLL, |b| b[2] = 0).to_vec(),
                DropReason::ZeroDetectMult,
            ),
            (
                with(UP_POLL, |b| b[1] |= FLAG_MULTIPOINT).to_vec(),
                DropReason::Multipoint,
            ),
            (
                with(UP_POLL, |b| b[4..8].fill(0)).to_vec(),
                DropReason::ZeroMyDiscriminator,
            ),
            (
                with(UP_POLL, |b| b[8..12].fill(0)).to_vec(),
                DropReason::ZeroYourDiscriminator,
            ),
            (
                with(UP_POLL, |b| {
                    b[1] = (State::Init as u8) << 6;
                    b[8..12].fill(0);
                })
                .to_vec(),
                DropReason::ZeroYourDiscriminator,
            ),
            // A bit with a Length too short for an authentication section.
            (
                with(UP_POLL, |b| b[1] |= FLAG_AUTH).to_vec(),
                DropReason::BadLength,
            ),
        ];
        for (bytes, reason) in cases {
            assert_eq!(ControlPacket::decode(&bytes), Err(reason), "{bytes:02x?}");
        }
    }

    #[test]
    fn authenticated_packet_is_dropped_as_unsupported() {
        // Simple Password auth (§4.2.2): type 1, len 7, key id 1, "abcd".
        let mut bytes = UP_POLL.to_vec();
        bytes[1] |= FLAG_AUTH;
        bytes[3] = 31;
        bytes.extend_from_slice(&[1, 7, 1, b'a', b'b', b'c', b'd']);
        assert_eq!(
            ControlPacket::decode(&bytes),
            Err(DropReason::AuthenticationUnsupported)
        );
    }

    #[test]
    fn zero_your_discriminator_is_fine_when_down_or_admin_down() {
        for state in [State::Down, State::AdminDown] {
            let bytes = with(UP_POLL, |b| {
                b[1] = (state as u8) << 6;
                b[8..12].fill(0);
            });
            assert_eq!(ControlPacket::decode(&bytes).unwrap().state, state);
        }
    }

    #[test]
    fn every_byte_string_of_every_short_length_is_handled() {
        // Cheap exhaustive-ish sweep without a fuzzer: no panic on any flag byte.
        for flags in 0..=255u8 {
            let bytes = with(UP_POLL, |b| b[1] = flags);
            let _ = ControlPacket::decode(&bytes);
        }
    }
}
