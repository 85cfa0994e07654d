//! Authentication of gossip packets with the shared `memberlist` secret: every packet
//! is `version (1 byte) || body || HMAC-SHA256(secret, version || body)`. Anyone
//! without the secret can neither join nor declare a speaker dead.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;

/// Why a received packet was dropped (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthError {
    /// Too short, or an unknown version byte.
    Malformed,
    /// The tag does not match: another secret, or tampered with.
    Unauthenticated,
}

/// Seals and opens packets with one secret.
#[derive(Clone)]
pub struct Sealer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// `None` for an empty secret: gossip without authentication is refused.
    pub fn new(secret: &[u8]) -> Option<Sealer> {
        (!secret.is_empty()).then(|| Sealer {
            key: secret.to_vec(),
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()))
    }

    pub fn seal(&self, body: &[u8]) -> Vec<u8> {
        let mut packet = Vec::with_capacity(1 + body.len() + TAG_LEN);
        packet.push(VERSION);
        packet.extend_from_slice(body);
        let mut mac = self.mac();
        mac.update(&packet);
        packet.extend_from_slice(&mac.finalize().into_bytes());
        packet
    }

    /// The body of an authentic packet. The comparison is constant-time.
    pub fn open<'a>(&self, packet: &'a [u8]) -> Result<&'a [u8], AuthError> {
        if packet.len() < 1 + TAG_LEN || packet[0] != VERSION {
            return Err(AuthError::Malformed);
        }
        let (signed, tag) = packet.split_at(packet.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag)
            .map_err(|_| AuthError::Unauthenticated)?;
        Ok(&signed[1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_forgeries() {
        let a = Sealer::new(b"secret-a").unwrap();
        let b = Sealer::new(b"secret-b").unwrap();
        let packet = a.seal(b"hello");
        assert_eq!(packet.len(), 1 + 5 + 32);
        assert_eq!(a.open(&packet), Ok(&b"hello"[..]));
        assert_eq!(b.open(&packet), Err(AuthError::Unauthenticated));
        let mut tampered = packet.clone();
        tampered[2] ^= 1;
        assert_eq!(a.open(&tampered), Err(AuthError::Unauthenticated));
        assert_eq!(a.open(&packet[..20]), Err(AuthError::Malformed));
        let mut wrong_version = packet;
        wrong_version[0] = 9;
        assert_eq!(a.open(&wrong_version), Err(AuthError::Malformed));
        assert!(Sealer::new(b"").is_none());
    }
}
