//! Small parsers shared by the builders: names, durations, addresses, selectors,
//! communities. Each returns a plain error message; the caller adds kind/name/field.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::model::{AddressRange, Community};
use crate::selector::{LabelSelector, Requirement, SelectorOperator};

/// RFC 1123 DNS subdomain, as Kubernetes requires of these objects' names.
pub fn check_object_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the object has no metadata.name".into());
    }
    if name.len() > 253 {
        return Err("name longer than 253 characters".into());
    }
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok_chars && ok_ends {
        Ok(())
    } else {
        Err("not a valid Kubernetes name".into())
    }
}

/// A Go `time.ParseDuration` string (`90s`, `1m30s`, `1.5h`, `300ms`, `0`). Negative
/// durations are refused: none of the fields that use this allows one.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err("negative duration".into());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total_nanos: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[start..i];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("expected a number at {:?}", &s[start..]));
        }
        let unit_start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit_nanos: u128 = match &s[unit_start..i] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit".into()),
            other => return Err(format!("unknown unit {other:?}")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| "number too large".to_string())?
        };
        let mut nanos = whole.checked_mul(unit_nanos).ok_or("duration too large")?;
        let mut scale = unit_nanos;
        for digit in fraction.chars().take(18) {
            scale /= 10;
            nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or("duration too large")?;
        if total_nanos > u128::from(u64::MAX) {
            return Err("duration too large".into());
        }
    }
    let secs =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| "duration too large".to_string())?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// An `addresses` entry: the range it covers and the CIDRs that exactly cover it (for
/// the aggregation-length rule, which MetalLB applies to each CIDR of a range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAddresses {
    pub range: AddressRange,
    pub cidrs: Vec<IpNet>,
}

/// Why an `addresses` entry is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    Syntax(String),
    StartAfterEnd,
    MixedFamily,
}

pub fn parse_addresses(text: &str) -> Result<ParsedAddresses, AddressError> {
    let s = text.trim();
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| AddressError::Syntax("not a valid CIDR".into()))?;
        let net = net.trunc();
        return Ok(ParsedAddresses {
            range: AddressRange::from_cidr(net),
            cidrs: vec![net],
        });
    }
    if let Some((start, end)) = s.split_once('-') {
        let parse = |t: &str| {
            t.trim()
                .parse::<IpAddr>()
                .map_err(|_| AddressError::Syntax(format!("{:?} is not an IP address", t.trim())))
        };
        let (start, end) = (parse(start)?, parse(end)?);
        if start.is_ipv4() != end.is_ipv4() {
            return Err(AddressError::MixedFamily);
        }
        let range = AddressRange::new(start, end).ok_or(AddressError::StartAfterEnd)?;
        return Ok(ParsedAddresses {
            range,
            cidrs: range_to_cidrs(start, end),
        });
    }
    if s.parse::<IpAddr>().is_ok() {
        return Err(AddressError::Syntax(
            "a single address must be written as a CIDR".into(),
        ));
    }
    Err(AddressError::Syntax(
        "neither a CIDR nor a start-end range".into(),
    ))
}

/// The smallest list of CIDRs covering exactly `start..=end` (same family, start <= end).
pub fn range_to_cidrs(start: IpAddr, end: IpAddr) -> Vec<IpNet> {
    let (bits, mut lo, hi) = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => {
            (32u32, u128::from(u32::from(s)), u128::from(u32::from(e)))
        }
        (IpAddr::V6(s), IpAddr::V6(e)) => (128u32, u128::from(s), u128::from(e)),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    // Each step takes the largest aligned block starting at `lo` that ends by `hi`: at
    // most 2 × bits steps.
    loop {
        let mut k = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        // `lo` is a multiple of 2^k, so `lo + 2^k - 1` cannot overflow.
        let mut last = if k >= 128 {
            u128::MAX
        } else {
            lo + ((1u128 << k) - 1)
        };
        while last > hi && k > 0 {
            k -= 1;
            last = lo + ((1u128 << k) - 1);
        }
        let prefix = (bits - k) as u8;
        let net = if bits == 32 {
            IpNet::new(IpAddr::V4(std::net::Ipv4Addr::from(lo as u32)), prefix)
        } else {
            IpNet::new(IpAddr::V6(std::net::Ipv6Addr::from(lo)), prefix)
        };
        if let Ok(net) = net {
            out.push(net);
        }
        if last >= hi {
            return out;
        }
        lo = last + 1;
    }
}

/// A Kubernetes label selector, checked the way the API server checks it.
pub fn parse_selector(s: &oxlb_api::LabelSelector) -> Result<LabelSelector, String> {
    let mut out = LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions: Vec::new(),
    };
    for (i, e) in s.match_expressions.iter().flatten().enumerate() {
        let operator = match e.operator.as_str() {
            "In" => SelectorOperator::In,
            "NotIn" => SelectorOperator::NotIn,
            "Exists" => SelectorOperator::Exists,
            "DoesNotExist" => SelectorOperator::DoesNotExist,
            other => {
                return Err(format!(
                    "matchExpressions[{i}].operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                ));
            }
        };
        if e.key.is_empty() {
            return Err(format!("matchExpressions[{i}].key is empty"));
        }
        let values = e.values.clone().unwrap_or_default();
        match operator {
            SelectorOperator::In | SelectorOperator::NotIn if values.is_empty() => {
                return Err(format!(
                    "matchExpressions[{i}].values must not be empty for {}",
                    e.operator
                ));
            }
            SelectorOperator::Exists | SelectorOperator::DoesNotExist if !values.is_empty() => {
                return Err(format!(
                    "matchExpressions[{i}].values must be empty for {}",
                    e.operator
                ));
            }
            _ => {}
        }
        out.match_expressions.push(Requirement {
            key: e.key.clone(),
            operator,
            values,
        });
    }
    Ok(out)
}

/// MetalLB's repeat rules inside one selector: no value twice in an expression, no
/// expression twice (values compared as sets).
pub fn check_selector_repeats(s: &LabelSelector) -> Result<(), String> {
    let mut expressions: Vec<Requirement> = Vec::new();
    for (i, e) in s.match_expressions.iter().enumerate() {
        let mut values = e.values.clone();
        values.sort();
        if values.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("matchExpressions[{i}] lists a value twice"));
        }
        let sorted = Requirement {
            key: e.key.clone(),
            operator: e.operator,
            values,
        };
        if expressions.contains(&sorted) {
            return Err(format!(
                "matchExpressions[{i}] repeats an earlier expression"
            ));
        }
        expressions.push(sorted);
    }
    Ok(())
}

/// The selector with each expression's values sorted: two selectors that match the same
/// way by construction compare equal.
pub fn canonical_selector(s: &LabelSelector) -> LabelSelector {
    let mut out = s.clone();
    for e in &mut out.match_expressions {
        e.values.sort();
    }
    out
}

/// `A:B` (RFC 1997, two 16-bit numbers) or `large:A:B:C` (RFC 8092, three 32-bit numbers).
pub fn parse_community(text: &str) -> Result<Community, String> {
    if let Some(rest) = text.strip_prefix("large:") {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 3 {
            return Err("a large community has three parts".into());
        }
        let n = |p: &str| {
            p.parse::<u32>()
                .map_err(|_| format!("{p:?} is not a number in 0..4294967295"))
        };
        return Ok(Community::Large(n(parts[0])?, n(parts[1])?, n(parts[2])?));
    }
    let (a, b) = text.split_once(':').ok_or("not of the form A:B")?;
    let n = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("{p:?} is not a number in 0..65535"))
    };
    Ok(Community::Standard(
        (u32::from(n(a)?) << 16) | u32::from(n(b)?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("9999999999999999999h").is_err());
    }

    #[test]
    fn ranges_become_cidrs() {
        let r = |a: &str, b: &str| range_to_cidrs(a.parse().unwrap(), b.parse().unwrap());
        let names = |v: Vec<IpNet>| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(r("10.0.0.0", "10.0.0.255")), ["10.0.0.0/24"]);
        assert_eq!(names(r("10.0.0.100", "10.0.0.103")), ["10.0.0.100/30"]);
        assert_eq!(
            names(r("10.0.0.1", "10.0.0.2")),
            ["10.0.0.1/32", "10.0.0.2/32"]
        );
        assert_eq!(names(r("0.0.0.0", "255.255.255.255")), ["0.0.0.0/0"]);
        assert_eq!(
            names(r("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            ["::/0"]
        );
        assert_eq!(r("10.0.0.100", "10.0.0.200").len(), 6); // /30 /29 /28 /26 /29 /32
    }

    #[test]
    fn communities() {
        assert_eq!(
            parse_community("65535:65282"),
            Ok(Community::Standard(0xFFFF_FF02))
        );
        assert_eq!(
            parse_community("large:1:2:3"),
            Ok(Community::Large(1, 2, 3))
        );
        assert!(parse_community("65536:1").is_err());
        assert!(parse_community("large:1:2").is_err());
    }

    #[test]
    fn addresses() {
        assert!(matches!(
            parse_addresses("10.0.0.5-10.0.0.1"),
            Err(AddressError::StartAfterEnd)
        ));
        assert!(matches!(
            parse_addresses("10.0.0.1-::1"),
            Err(AddressError::MixedFamily)
        ));
        assert_eq!(
            parse_addresses("10.0.0.5/24").unwrap().range.start(),
            "10.0.0.0".parse::<IpAddr>().unwrap()
        );
        assert!(parse_addresses("10.0.0.5").is_err());
    }
}
