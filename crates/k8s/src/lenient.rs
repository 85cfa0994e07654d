//! Watching the metallb.io kinds without letting one object stop the whole kind.
//!
//! A typed watcher decodes a list response as one piece: a single object that does not
//! decode fails the list, the watcher retries forever, and the controller never syncs.
//! That object need not be wrong. MetalLB's CRDs allow an object without `spec` (its
//! documented `L2Advertisement` has none), and such objects stay stored that way until
//! they are written again; kube-derive's types require `spec`. So these kinds are
//! watched untyped and decoded one object at a time: a missing or null `spec` reads as
//! `{}` (what oxlb's CRDs default it to), and an object that still does not decode is
//! left out with a warning naming it, while every other object is used.

use std::fmt::Debug;

use futures::{Stream, StreamExt, future};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes one object as `K`, reading a missing or null `spec` as `{}`.
pub fn decode<K: DeserializeOwned>(object: DynamicObject) -> Result<K, String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    if let Some(fields) = value.as_object_mut() {
        let spec = fields.entry("spec").or_insert(Value::Null);
        if spec.is_null() {
            *spec = Value::Object(serde_json::Map::new());
        }
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// One watch event with its object decoded; `None` drops an object that cannot be.
/// A deleted object that cannot be decoded is still deleted (by name), so the cache
/// never keeps something the API server no longer has.
pub fn decode_event<K>(event: Event<DynamicObject>) -> Option<Event<K>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Default,
{
    let decoded = |object: DynamicObject| {
        let name = object.metadata.name.clone().unwrap_or_default();
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        decode::<K>(object).map_err(|error| {
            tracing::warn!(
                kind = %K::kind(&()),
                object = %format!("{namespace}/{name}"),
                %error,
                "ignoring an object that does not decode; fix or delete it"
            );
        })
    };
    match event {
        Event::Apply(object) => decoded(object).ok().map(Event::Apply),
        Event::InitApply(object) => decoded(object).ok().map(Event::InitApply),
        Event::Delete(object) => {
            let metadata = object.metadata.clone();
            let typed = decoded(object).unwrap_or_else(|()| {
                let mut bare = K::default();
                *bare.meta_mut() = metadata;
                bare
            });
            Some(Event::Delete(typed))
        }
        Event::Init => Some(Event::Init),
        Event::InitDone => Some(Event::InitDone),
    }
}

/// The watch of `K` in `namespace`, decoded object by object (same requests, paths and
/// RBAC as a typed watch).
pub fn watch_namespaced<K>(
    client: Client,
    namespace: &str,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Default + Clone + Debug + Send + 'static,
{
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &resource);
    watch(api, config).default_backoff().filter_map(|result| {
        future::ready(match result {
            Ok(event) => decode_event::<K>(event).map(Ok),
            Err(e) => Some(Err(e)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxlb_api::{BGPPeer, L2Advertisement};
    use serde_json::json;

    fn dynamic(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn an_object_without_spec_reads_as_an_empty_spec() {
        let stored = dynamic(json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
            "metadata": {"name": "example", "namespace": "metallb-system"}
        }));
        let typed: L2Advertisement = decode(stored).unwrap();
        assert_eq!(typed.metadata.name.as_deref(), Some("example"));
        assert_eq!(typed.spec, Default::default());
        // kube-derive's type alone refuses it: this is what the lenient watch is for.
        let strict: Result<L2Advertisement, _> = serde_json::from_value(json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
            "metadata": {"name": "example"}
        }));
        assert!(strict.is_err());
    }

    #[test]
    fn an_undecodable_object_is_dropped_and_its_deletion_still_passes() {
        let bad = json!({
            "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "odd", "namespace": "metallb-system"},
            "spec": {"myASN": "not a number", "peerASN": 64501, "peerAddress": "10.0.0.1"}
        });
        assert!(decode_event::<BGPPeer>(Event::Apply(dynamic(bad.clone()))).is_none());
        assert!(decode_event::<BGPPeer>(Event::InitApply(dynamic(bad.clone()))).is_none());
        match decode_event::<BGPPeer>(Event::Delete(dynamic(bad))) {
            Some(Event::Delete(peer)) => {
                assert_eq!(peer.metadata.name.as_deref(), Some("odd"));
                assert_eq!(peer.metadata.namespace.as_deref(), Some("metallb-system"));
            }
            other => panic!("expected the deletion to pass, got {other:?}"),
        }
        let good = json!({
            "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "router", "namespace": "metallb-system"},
            "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}
        });
        assert!(matches!(
            decode_event::<BGPPeer>(Event::Apply(dynamic(good))),
            Some(Event::Apply(_))
        ));
    }
}
