//! The `memberlist` Secret (key `secretkey`) that speakers use to encrypt their
//! membership gossip. MetalLB's manifests need it created by hand or by Helm's random
//! functions; here the controller creates it once, if missing, so `kubectl apply` of
//! one file is enough. An existing Secret (e.g. left by MetalLB) is kept as it is.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::reflector::ObjectRef;

use crate::stores::Stores;

pub use oxlb_config::memberlist::{SECRET_KEY, SECRET_NAME};

/// Creates the Secret with 128 random bytes unless the cache already holds it. A 409
/// (another replica created it first) is success.
pub async fn ensure_secret(
    client: &Client,
    namespace: &str,
    stores: &Stores,
) -> Result<(), String> {
    if stores
        .secrets
        .get(&ObjectRef::new(SECRET_NAME).within(namespace))
        .is_some()
    {
        return Ok(());
    }
    let key =
        oxlb_config::memberlist::random_key().map_err(|e| format!("reading /dev/urandom: {e}"))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some([("app.kubernetes.io/name".to_string(), "oxlb".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([(SECRET_KEY.to_string(), ByteString(key))].into()),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = SECRET_NAME, "created the memberlist Secret");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
