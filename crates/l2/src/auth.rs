//! Encryption and authentication of gossip packets with the shared `memberlist` secret,
//! as MetalLB's memberlist encrypts its gossip with the shared key (AES-GCM): the
//! packets name every speaker, its address and whether it is alive, so only speakers
//! holding the secret may read them, and anyone without it can neither join nor
//! declare a speaker dead.
//!
//! Packet: `version (1 byte, 2) || nonce (12 bytes) || AES-256-GCM(body) || tag (16)`,
//! the version byte authenticated as associated data. The AES key is derived from the
//! secret (any length; MetalLB's are 128 random bytes) as
//! HMAC-SHA256(secret, "oxlb memberlist gossip v2 aes-256-gcm"), so the raw secret is
//! never a cipher key and another use of the same secret gets an unrelated key.
//!
//! Nonces are 96 random bits per packet (NIST SP 800-38D §8.2.2, as memberlist does): a
//! repeat becomes likely only after about 2^48 packets under one key, and the bound the
//! standard sets (2^32 packets, a collision chance below 2^-32) is some 50 days of a
//! 100-node cluster gossiping without pause at ten packets a second per node. Rotating
//! the Secret starts a new key.
//!
//! Version 1 (HMAC-SHA256 only, never released) is refused as malformed.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hmac::{Hmac, KeyInit as MacKeyInit, Mac};
use sha2::Sha256;

const VERSION: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Version, nonce and tag: what a packet adds to its body.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// Domain separation of the derived key (changes with the packet format).
const KEY_LABEL: &[u8] = b"oxlb memberlist gossip v2 aes-256-gcm";

/// Why a received packet was dropped (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthError {
    /// Too short, or an unknown version byte.
    Malformed,
    /// The tag does not match: another secret, or tampered with.
    Unauthenticated,
}

/// Seals (encrypts and authenticates) and opens packets with one secret.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// `None` for an empty secret: gossip without a key is refused.
    pub fn new(secret: &[u8]) -> Option<Sealer> {
        if secret.is_empty() {
            return None;
        }
        // HMAC accepts keys of any length (RFC 2104 §2): this cannot fail.
        let mut mac = <Hmac<Sha256> as MacKeyInit>::new_from_slice(secret).ok()?;
        mac.update(KEY_LABEL);
        let derived: [u8; 32] = mac.finalize().into_bytes().into();
        Some(Sealer {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(derived)),
        })
    }

    pub fn seal(&self, body: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        self.seal_with_nonce(nonce, body)
    }

    fn seal_with_nonce(&self, nonce: [u8; NONCE_LEN], body: &[u8]) -> Vec<u8> {
        let header = [VERSION];
        // Encryption fails only for bodies beyond GCM's 64 GiB, far above any datagram;
        // an empty packet is then dropped by every receiver as malformed.
        let Ok(sealed) = self.cipher.encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: body,
                aad: &header,
            },
        ) else {
            return Vec::new();
        };
        let mut packet = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        packet.push(VERSION);
        packet.extend_from_slice(&nonce);
        packet.extend_from_slice(&sealed);
        packet
    }

    /// The body of an authentic packet (decrypted). The tag check is constant-time.
    pub fn open(&self, packet: &[u8]) -> Result<Vec<u8>, AuthError> {
        if packet.len() < OVERHEAD || packet[0] != VERSION {
            return Err(AuthError::Malformed);
        }
        let (header, rest) = packet.split_at(1);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| AuthError::Malformed)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: header,
                },
            )
            .map_err(|_| AuthError::Unauthenticated)
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
        assert_eq!(packet.len(), 5 + OVERHEAD);
        assert_eq!(a.open(&packet), Ok(b"hello".to_vec()));
        assert_eq!(b.open(&packet), Err(AuthError::Unauthenticated));
        let mut tampered = packet.clone();
        tampered[1 + NONCE_LEN] ^= 1;
        assert_eq!(a.open(&tampered), Err(AuthError::Unauthenticated));
        let mut nonce_changed = packet.clone();
        nonce_changed[1] ^= 1;
        assert_eq!(a.open(&nonce_changed), Err(AuthError::Unauthenticated));
        assert_eq!(a.open(&packet[..20]), Err(AuthError::Malformed));
        let mut wrong_version = packet;
        wrong_version[0] = 1;
        assert_eq!(a.open(&wrong_version), Err(AuthError::Malformed));
        assert!(Sealer::new(b"").is_none());
    }

    #[test]
    fn the_body_is_not_in_the_packet_and_nonces_differ() {
        let a = Sealer::new(b"secret-a").unwrap();
        let body = b"node1 10.0.0.1:7946 alive";
        let one = a.seal(body);
        let two = a.seal(body);
        assert!(
            !one.windows(5).any(|w| w == &body[..5]),
            "plaintext visible"
        );
        assert_ne!(
            one[1..1 + NONCE_LEN],
            two[1..1 + NONCE_LEN],
            "a nonce repeated"
        );
        assert_ne!(one, two);
        assert_eq!(a.open(&two), Ok(body.to_vec()));
    }

    /// Fixed secret and nonce: the bytes are those an independent implementation
    /// (Python's `cryptography`: HMAC-SHA256 key derivation, AESGCM with the version
    /// byte as associated data) produces, so the format is what this file says and a
    /// change to it (which would split mixed-version speakers) cannot go unnoticed.
    #[test]
    fn the_wire_format_is_pinned() {
        let a = Sealer::new(b"memberlist secret").unwrap();
        let packet = a.seal_with_nonce([7; NONCE_LEN], b"abc");
        let hex: String = packet.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "020707070707070707070707070ce31e26874efc1ca4cce77d0c37e5be1e5bf5"
        );
        assert_eq!(a.open(&packet), Ok(b"abc".to_vec()));
    }
}
