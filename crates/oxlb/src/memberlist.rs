//! `oxlb memberlist-secret`: a fresh shared key for the Layer 2 speakers' gossip.

use std::io::Read;
use std::process::ExitCode;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// MetalLB generates 128 random bytes for the same Secret.
const KEY_BYTES: usize = 128;

pub fn run(namespace: &str) -> ExitCode {
    let mut key = vec![0u8; KEY_BYTES];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)) {
        eprintln!("oxlb memberlist-secret: cannot read /dev/urandom: {e}");
        return ExitCode::FAILURE;
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("memberlist".into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some([("secretkey".to_string(), ByteString(key))].into()),
        ..Default::default()
    };
    let mut value = match serde_json::to_value(&secret) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("oxlb memberlist-secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(object) = value.as_object_mut() {
        object.insert("apiVersion".into(), "v1".into());
        object.insert("kind".into(), "Secret".into());
    }
    match serde_saphyr::to_string(&value) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxlb memberlist-secret: {e}");
            ExitCode::FAILURE
        }
    }
}
