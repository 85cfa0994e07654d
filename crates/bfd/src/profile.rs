//! A BFDProfile as the BFD layer needs it, and the checks the config layer runs
//! through this crate (oxlb implements no Echo function, so `echoMode: true` is an
//! error rather than silently ignored).

use std::fmt;
use std::time::Duration;

use crate::session::SessionConfig;

/// Timers and roles for one BFD session (metallb.io BFDProfile fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The BFDProfile's name, used in error messages.
    pub name: String,
    /// `receiveInterval`: bfd.RequiredMinRxInterval.
    pub receive_interval: Duration,
    /// `transmitInterval`: bfd.DesiredMinTxInterval once the session is Up.
    pub transmit_interval: Duration,
    /// `detectMultiplier`.
    pub detect_multiplier: u8,
    /// `minimumTtl`: lowest TTL accepted on multihop sessions (single hop always
    /// requires 255, RFC 5881 §5).
    pub minimum_ttl: u8,
    /// `passiveMode`: wait for the peer to speak first (RFC 5880 §6.1).
    pub passive: bool,
    /// `echoMode`: must be false; oxlb has no Echo function.
    pub echo: bool,
}

impl Profile {
    /// MetalLB's defaults: 300 ms / 300 ms, multiplier 3, minimum TTL 254.
    pub fn with_defaults(name: &str) -> Profile {
        Profile {
            name: name.to_string(),
            receive_interval: Duration::from_millis(300),
            transmit_interval: Duration::from_millis(300),
            detect_multiplier: 3,
            minimum_ttl: 254,
            passive: false,
            echo: false,
        }
    }

    /// The checks the config layer must run on every BFDProfile: everything this
    /// crate cannot honour is an error naming the profile.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.echo {
            return Err(ProfileError::EchoNotSupported {
                profile: self.name.clone(),
            });
        }
        let range = Duration::from_millis(10)..=Duration::from_millis(60_000);
        for (field, value) in [
            ("receiveInterval", self.receive_interval),
            ("transmitInterval", self.transmit_interval),
        ] {
            if !range.contains(&value) {
                return Err(ProfileError::IntervalOutOfRange {
                    profile: self.name.clone(),
                    field,
                    value,
                });
            }
        }
        if self.detect_multiplier < 2 {
            return Err(ProfileError::DetectMultiplierOutOfRange {
                profile: self.name.clone(),
                value: self.detect_multiplier,
            });
        }
        if self.minimum_ttl == 0 {
            return Err(ProfileError::MinimumTtlOutOfRange {
                profile: self.name.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn session_config(&self) -> SessionConfig {
        SessionConfig {
            desired_min_tx: self.transmit_interval,
            required_min_rx: self.receive_interval,
            detect_mult: self.detect_multiplier,
            passive: self.passive,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    EchoNotSupported {
        profile: String,
    },
    IntervalOutOfRange {
        profile: String,
        field: &'static str,
        value: Duration,
    },
    DetectMultiplierOutOfRange {
        profile: String,
        value: u8,
    },
    MinimumTtlOutOfRange {
        profile: String,
    },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::EchoNotSupported { profile } => write!(
                f,
                "echo mode is not supported; remove echoMode from BFDProfile {profile}"
            ),
            ProfileError::IntervalOutOfRange {
                profile,
                field,
                value,
            } => write!(
                f,
                "BFDProfile {profile}: {field} {} ms is outside 10..60000 ms",
                value.as_millis()
            ),
            ProfileError::DetectMultiplierOutOfRange { profile, value } => write!(
                f,
                "BFDProfile {profile}: detectMultiplier {value} is outside 2..255"
            ),
            ProfileError::MinimumTtlOutOfRange { profile } => {
                write!(f, "BFDProfile {profile}: minimumTtl must be 1..254")
            }
        }
    }
}

impl std::error::Error for ProfileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_mode_is_rejected_with_the_profile_name() {
        let mut profile = Profile::with_defaults("fast");
        assert_eq!(profile.validate(), Ok(()));
        profile.echo = true;
        let error = profile.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "echo mode is not supported; remove echoMode from BFDProfile fast"
        );
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let mut profile = Profile::with_defaults("p");
        profile.receive_interval = Duration::from_millis(5);
        assert!(matches!(
            profile.validate(),
            Err(ProfileError::IntervalOutOfRange {
                field: "receiveInterval",
                ..
            })
        ));
        let mut profile = Profile::with_defaults("p");
        profile.detect_multiplier = 1;
        assert!(profile.validate().is_err());
    }
}
