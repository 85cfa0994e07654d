//! A BFDProfile as the BFD layer needs it, and the checks the config layer runs
//! through this crate.

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
    /// `echoMode`: run the Echo function (RFC 5880 §6.4; single-hop IPv4 and IPv6 sessions, not link-local).
    pub echo: bool,
    /// `echoInterval`: the interval Echo packets are sent at (no faster than the peer
    /// allows, §6.8.9) and the Required Min Echo RX advertised when this host loops
    /// the peer's Echo packets. MetalLB's default: 50 ms.
    pub echo_interval: Duration,
}

impl Profile {
    /// MetalLB's defaults: 300 ms / 300 ms, multiplier 3, minimum TTL 254, echo off
    /// with echoInterval 50 ms.
    pub fn with_defaults(name: &str) -> Profile {
        Profile {
            name: name.to_string(),
            receive_interval: Duration::from_millis(300),
            transmit_interval: Duration::from_millis(300),
            detect_multiplier: 3,
            minimum_ttl: 254,
            passive: false,
            echo: false,
            echo_interval: Duration::from_millis(50),
        }
    }

    /// The checks the config layer must run on every BFDProfile: everything this
    /// crate cannot honour is an error naming the profile.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let range = Duration::from_millis(10)..=Duration::from_millis(60_000);
        for (field, value) in [
            ("receiveInterval", self.receive_interval),
            ("transmitInterval", self.transmit_interval),
            ("echoInterval", self.echo_interval),
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
            echo: self.echo.then_some(self.echo_interval),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
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
    fn echo_mode_is_accepted_and_its_interval_checked() {
        let mut profile = Profile::with_defaults("fast");
        profile.echo = true;
        assert_eq!(profile.validate(), Ok(()));
        assert_eq!(
            profile.session_config().echo,
            Some(Duration::from_millis(50))
        );
        profile.echo_interval = Duration::from_millis(5);
        let error = profile.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "BFDProfile fast: echoInterval 5 ms is outside 10..60000 ms"
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
