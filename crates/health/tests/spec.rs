//! Annotation parsing: valid checks, defaults, and each bad input named with its
//! Service and annotation.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use oxlb_announce::ServiceKey;
use oxlb_health::spec::{self, CheckSpec, Problem, SpecError, Target};

fn key() -> ServiceKey {
    ServiceKey {
        namespace: "kube-system".into(),
        name: "api".into(),
    }
}

fn parse(pairs: &[(&str, &str)]) -> Option<Result<CheckSpec, Vec<SpecError>>> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec::parse(&key(), &map)
}

fn errors(pairs: &[(&str, &str)]) -> Vec<SpecError> {
    parse(pairs).unwrap().unwrap_err()
}

#[test]
fn no_annotation_means_no_check_even_with_stray_settings() {
    assert_eq!(parse(&[]), None);
    assert_eq!(parse(&[(spec::INTERVAL, "1s")]), None);
}

#[test]
fn defaults_withdraw_within_one_and_a_half_seconds() {
    let spec = parse(&[(spec::CHECK, "http://127.0.0.1:8080/healthz")])
        .unwrap()
        .unwrap();
    assert_eq!(
        spec.target,
        Target::Http {
            host: "127.0.0.1".into(),
            port: 8080,
            path: "/healthz".into()
        }
    );
    // Worst case: the check passed just before the failure; `fall` checks follow, one
    // interval apart, the last taking at most the timeout.
    let worst = spec.interval * spec.fall + spec.timeout;
    assert!(worst <= Duration::from_millis(1500), "{worst:?}");
    assert!(spec.rise > 1, "announced again only after several passes");
}

#[test]
fn every_scheme_and_setting_parses() {
    let spec = parse(&[
        (spec::CHECK, "https://[::1]:6443/livez?verbose"),
        (spec::TLS_VERIFY, "false"),
        (spec::INTERVAL, "200ms"),
        (spec::TIMEOUT, "150ms"),
        (spec::RISE, "1"),
        (spec::FALL, "4"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        spec,
        CheckSpec {
            target: Target::Https {
                host: "::1".into(),
                port: 6443,
                path: "/livez?verbose".into(),
                verify: false
            },
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(150),
            rise: 1,
            fall: 4,
        }
    );
    let tcp = parse(&[(spec::CHECK, "tcp://db.local:5432")])
        .unwrap()
        .unwrap();
    assert_eq!(
        tcp.target,
        Target::Tcp {
            host: "db.local".into(),
            port: 5432
        }
    );
    let https = parse(&[(spec::CHECK, "https://10.0.0.1/livez")])
        .unwrap()
        .unwrap();
    assert!(matches!(
        https.target,
        Target::Https {
            port: 443,
            verify: true,
            ..
        }
    ));
}

#[test]
fn an_unparsable_url_is_named_with_service_and_annotation() {
    for bad in [
        "127.0.0.1:80",
        "http://",
        "http://host:99999/",
        "tcp://host",
        "http://a b:80/",
    ] {
        let errors = errors(&[(spec::CHECK, bad)]);
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            matches!(errors[0].problem, Problem::UnparsableUrl(_)),
            "{bad}"
        );
        let text = errors[0].to_string();
        assert!(text.contains("kube-system/api"), "{text}");
        assert!(text.contains("oxlb.io/health-check="), "{text}");
        assert!(
            text.contains("announced as if it had no health check"),
            "{text}"
        );
    }
}

#[test]
fn an_unsupported_scheme_is_an_error() {
    let errors = errors(&[(spec::CHECK, "grpc://127.0.0.1:9000")]);
    assert_eq!(errors[0].problem, Problem::UnsupportedScheme("grpc".into()));
    assert!(errors[0].to_string().contains("unsupported scheme"));
}

#[test]
fn an_interval_below_100ms_is_an_error() {
    let errors = errors(&[
        (spec::CHECK, "tcp://127.0.0.1:80"),
        (spec::INTERVAL, "50ms"),
        (spec::TIMEOUT, "20ms"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].annotation, spec::INTERVAL);
    assert_eq!(
        errors[0].problem,
        Problem::IntervalTooShort(Duration::from_millis(50))
    );
}

#[test]
fn a_timeout_longer_than_the_interval_is_an_error() {
    let errors = errors(&[
        (spec::CHECK, "tcp://127.0.0.1:80"),
        (spec::INTERVAL, "1s"),
        (spec::TIMEOUT, "2s"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].annotation, spec::TIMEOUT);
    assert!(errors[0].to_string().contains("longer than the interval"));
    // With the default timeout, a short interval is what is wrong.
    let errors = self::errors(&[
        (spec::CHECK, "tcp://127.0.0.1:80"),
        (spec::INTERVAL, "200ms"),
    ]);
    assert_eq!(errors[0].annotation, spec::INTERVAL);
}

#[test]
fn bad_counts_durations_and_booleans_are_each_reported() {
    let errors = errors(&[
        (spec::CHECK, "https://127.0.0.1:6443/livez"),
        (spec::INTERVAL, "soon"),
        (spec::RISE, "0"),
        (spec::FALL, "many"),
        (spec::TLS_VERIFY, "nope"),
    ]);
    let annotations: Vec<_> = errors.iter().map(|e| e.annotation).collect();
    for a in [spec::INTERVAL, spec::RISE, spec::FALL, spec::TLS_VERIFY] {
        assert!(annotations.contains(&a), "{a} missing from {errors:?}");
    }
}
