//! MetalLB's pre-CRD configuration (v0.12 and older): the ConfigMap `config` with key
//! `config`, or old Helm chart values with `configInline:`. Converted into the metallb.io
//! objects MetalLB's own migration produces: one IPAddressPool per address pool, an
//! L2Advertisement for `protocol: layer2`, BGPAdvertisements for `protocol: bgp`, one
//! BGPPeer per peer, BFDProfiles, and a Community holding the `bgp-communities` aliases.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use oxlb_api::{
    BFDProfile, BFDProfileSpec, BGPAdvertisement, BGPAdvertisementSpec, BGPPeer, BGPPeerSpec,
    Community, CommunityAlias, CommunitySpec, IPAddressPool, IPAddressPoolSpec, L2Advertisement,
    L2AdvertisementSpec,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Origin};
use crate::load::{self, Loader};
use crate::schema;
use crate::snapshot::Sourced;

/// The legacy `config` document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyConfig {
    #[serde(default)]
    pub peers: Vec<LegacyPeer>,
    #[serde(rename = "bgp-communities", default)]
    pub bgp_communities: BTreeMap<String, String>,
    #[serde(rename = "address-pools", default)]
    pub address_pools: Vec<LegacyPool>,
    #[serde(rename = "bfd-profiles", default)]
    pub bfd_profiles: Vec<LegacyBfdProfile>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyPeer {
    #[serde(rename = "my-asn")]
    pub my_asn: u32,
    #[serde(rename = "peer-asn")]
    pub peer_asn: u32,
    #[serde(rename = "peer-address")]
    pub peer_address: String,
    #[serde(rename = "source-address", default)]
    pub source_address: Option<String>,
    #[serde(rename = "peer-port", default)]
    pub peer_port: Option<u16>,
    #[serde(rename = "hold-time", default)]
    pub hold_time: Option<String>,
    #[serde(rename = "keepalive-time", default)]
    pub keepalive_time: Option<String>,
    #[serde(rename = "router-id", default)]
    pub router_id: Option<String>,
    #[serde(rename = "node-selectors", default)]
    pub node_selectors: Vec<LegacyNodeSelector>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(rename = "bfd-profile", default)]
    pub bfd_profile: Option<String>,
    #[serde(rename = "ebgp-multihop", default)]
    pub ebgp_multihop: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyNodeSelector {
    #[serde(rename = "match-labels", default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(rename = "match-expressions", default)]
    pub match_expressions: Vec<LegacyMatchExpression>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyMatchExpression {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum LegacyProtocol {
    #[serde(rename = "layer2")]
    Layer2,
    #[serde(rename = "bgp")]
    Bgp,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyPool {
    pub name: String,
    pub protocol: LegacyProtocol,
    pub addresses: Vec<String>,
    #[serde(rename = "auto-assign", default)]
    pub auto_assign: Option<bool>,
    #[serde(rename = "avoid-buggy-ips", default)]
    pub avoid_buggy_ips: Option<bool>,
    #[serde(rename = "bgp-advertisements", default)]
    pub bgp_advertisements: Vec<LegacyBgpAdvertisement>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyBgpAdvertisement {
    #[serde(rename = "aggregation-length", default)]
    pub aggregation_length: Option<i32>,
    #[serde(rename = "aggregation-length-v6", default)]
    pub aggregation_length_v6: Option<i32>,
    #[serde(default)]
    pub localpref: Option<u32>,
    #[serde(default)]
    pub communities: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct LegacyBfdProfile {
    pub name: String,
    #[serde(rename = "receive-interval", default)]
    pub receive_interval: Option<u32>,
    #[serde(rename = "transmit-interval", default)]
    pub transmit_interval: Option<u32>,
    #[serde(rename = "detect-multiplier", default)]
    pub detect_multiplier: Option<u32>,
    #[serde(rename = "echo-interval", default)]
    pub echo_interval: Option<u32>,
    #[serde(rename = "echo-mode", default)]
    pub echo_mode: Option<bool>,
    #[serde(rename = "passive-mode", default)]
    pub passive_mode: Option<bool>,
    #[serde(rename = "minimum-ttl", default)]
    pub minimum_ttl: Option<u32>,
}

/// The metallb.io objects a legacy config stands for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyObjects {
    pub ip_address_pools: Vec<IPAddressPool>,
    pub l2_advertisements: Vec<L2Advertisement>,
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    pub bgp_peers: Vec<BGPPeer>,
    pub bfd_profiles: Vec<BFDProfile>,
    pub communities: Vec<Community>,
}

impl LegacyObjects {
    /// Every object as a YAML document (`---` separated), ready for `kubectl apply -f`.
    pub fn to_yaml(&self) -> Result<String, String> {
        let mut out = String::new();
        let mut add = |yaml: Result<String, serde_saphyr::SerializeError>| -> Result<(), String> {
            out.push_str("---\n");
            out.push_str(&yaml.map_err(|e| format!("rendering YAML: {e}"))?);
            Ok(())
        };
        for o in &self.ip_address_pools {
            add(serde_saphyr::to_string(o))?;
        }
        for o in &self.communities {
            add(serde_saphyr::to_string(o))?;
        }
        for o in &self.bfd_profiles {
            add(serde_saphyr::to_string(o))?;
        }
        for o in &self.bgp_peers {
            add(serde_saphyr::to_string(o))?;
        }
        for o in &self.bgp_advertisements {
            add(serde_saphyr::to_string(o))?;
        }
        for o in &self.l2_advertisements {
            add(serde_saphyr::to_string(o))?;
        }
        Ok(out)
    }
}

/// A valid Kubernetes object name (RFC 1123 label: lowercase alphanumerics and `-`,
/// at most 63 characters, alphanumeric at both ends) made from a legacy name.
pub fn normalize_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut collapsed = String::with_capacity(mapped.len());
    for c in mapped.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let mut trimmed: String = collapsed.trim_matches('-').chars().take(63).collect();
    while trimmed.ends_with('-') {
        trimmed.pop();
    }
    if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed
    }
}

/// Hands out normalised names, unique within one kind (`-2`, `-3`... on collision).
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn take(&mut self, wanted: &str) -> String {
        let base = normalize_name(wanted);
        let mut candidate = base.clone();
        let mut n = 2;
        while self.0.contains(&candidate) {
            let suffix = format!("-{n}");
            let keep = 63usize.saturating_sub(suffix.len());
            candidate = format!(
                "{}{suffix}",
                base.chars()
                    .take(keep)
                    .collect::<String>()
                    .trim_end_matches('-')
            );
            n += 1;
        }
        self.0.insert(candidate.clone());
        candidate
    }
}

fn meta(name: String, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        ..ObjectMeta::default()
    }
}

/// Converts a parsed legacy config into metallb.io objects in `namespace`.
pub fn to_objects(config: &LegacyConfig, namespace: &str) -> LegacyObjects {
    let mut out = LegacyObjects::default();
    let mut pool_names = Names::default();
    let mut l2_names = Names::default();
    let mut bgp_names = Names::default();
    let mut peer_names = Names::default();
    let mut bfd_names = Names::default();

    for pool in &config.address_pools {
        let name = pool_names.take(&pool.name);
        out.ip_address_pools.push(IPAddressPool {
            metadata: meta(name.clone(), namespace),
            spec: IPAddressPoolSpec {
                addresses: pool.addresses.clone(),
                auto_assign: Some(pool.auto_assign.unwrap_or(true)),
                avoid_buggy_ips: pool.avoid_buggy_ips,
                service_allocation: None,
            },
            status: None,
        });
        match pool.protocol {
            LegacyProtocol::Layer2 => out.l2_advertisements.push(L2Advertisement {
                metadata: meta(l2_names.take(&format!("{name}-l2")), namespace),
                spec: L2AdvertisementSpec {
                    ip_address_pools: Some(vec![name.clone()]),
                    ..Default::default()
                },
            }),
            LegacyProtocol::Bgp => {
                // A bgp pool without advertisements is announced with the defaults.
                let advertisements = if pool.bgp_advertisements.is_empty() {
                    vec![LegacyBgpAdvertisement::default()]
                } else {
                    pool.bgp_advertisements.clone()
                };
                for (i, adv) in advertisements.iter().enumerate() {
                    let wanted = if advertisements.len() == 1 {
                        format!("{name}-bgp")
                    } else {
                        format!("{name}-bgp-{}", i + 1)
                    };
                    out.bgp_advertisements.push(BGPAdvertisement {
                        metadata: meta(bgp_names.take(&wanted), namespace),
                        spec: BGPAdvertisementSpec {
                            aggregation_length: Some(adv.aggregation_length.unwrap_or(32)),
                            aggregation_length_v6: Some(adv.aggregation_length_v6.unwrap_or(128)),
                            local_pref: adv.localpref.filter(|p| *p != 0),
                            communities: (!adv.communities.is_empty())
                                .then(|| adv.communities.clone()),
                            ip_address_pools: Some(vec![name.clone()]),
                            ..Default::default()
                        },
                    });
                }
            }
        }
    }

    for (i, peer) in config.peers.iter().enumerate() {
        out.bgp_peers.push(BGPPeer {
            metadata: meta(peer_names.take(&format!("peer-{}", i + 1)), namespace),
            spec: BGPPeerSpec {
                my_asn: peer.my_asn,
                peer_asn: Some(peer.peer_asn),
                peer_address: Some(peer.peer_address.clone()),
                source_address: peer.source_address.clone(),
                peer_port: Some(peer.peer_port.filter(|p| *p != 0).unwrap_or(179)),
                hold_time: peer.hold_time.clone(),
                keepalive_time: peer.keepalive_time.clone(),
                router_id: peer.router_id.clone(),
                node_selectors: (!peer.node_selectors.is_empty()).then(|| {
                    peer.node_selectors
                        .iter()
                        .map(|s| LabelSelector {
                            match_labels: (!s.match_labels.is_empty())
                                .then(|| s.match_labels.clone()),
                            match_expressions: (!s.match_expressions.is_empty()).then(|| {
                                s.match_expressions
                                    .iter()
                                    .map(|e| LabelSelectorRequirement {
                                        key: e.key.clone(),
                                        operator: e.operator.clone(),
                                        values: (!e.values.is_empty()).then(|| e.values.clone()),
                                    })
                                    .collect()
                            }),
                        })
                        .collect()
                }),
                password: peer.password.clone(),
                bfd_profile: peer.bfd_profile.clone(),
                ebgp_multi_hop: peer.ebgp_multihop,
                ..Default::default()
            },
        });
    }

    for profile in &config.bfd_profiles {
        out.bfd_profiles.push(BFDProfile {
            metadata: meta(bfd_names.take(&profile.name), namespace),
            spec: BFDProfileSpec {
                receive_interval: profile.receive_interval,
                transmit_interval: profile.transmit_interval,
                detect_multiplier: profile.detect_multiplier,
                echo_interval: profile.echo_interval,
                echo_mode: profile.echo_mode,
                passive_mode: profile.passive_mode,
                minimum_ttl: profile.minimum_ttl,
            },
        });
    }
    // BFD profile names may have been normalised: follow them in the peers.
    for peer in &mut out.bgp_peers {
        if let Some(profile) = &peer.spec.bfd_profile
            && let Some(i) = config.bfd_profiles.iter().position(|p| &p.name == profile)
        {
            peer.spec.bfd_profile = out.bfd_profiles[i].metadata.name.clone();
        }
    }

    if !config.bgp_communities.is_empty() {
        out.communities.push(Community {
            metadata: meta("legacy-communities".to_string(), namespace),
            spec: CommunitySpec {
                communities: Some(
                    config
                        .bgp_communities
                        .iter()
                        .map(|(name, value)| CommunityAlias {
                            name: Some(name.clone()),
                            value: Some(value.clone()),
                        })
                        .collect(),
                ),
            },
        });
    }
    out
}

fn legacy_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::to_value(schemars::schema_for!(LegacyConfig)).unwrap_or(Value::Null)
    })
}

const LEGACY_KEYS: [&str; 4] = ["peers", "address-pools", "bgp-communities", "bfd-profiles"];

/// Is this document (without apiVersion/kind) a legacy config, bare or as Helm values?
/// Returns the config value and the field path it sits at.
fn legacy_part(value: &Value) -> Option<(Value, &'static str)> {
    let map = value.as_object()?;
    if let Some(inline) = map.get("configInline") {
        return Some((inline.clone(), "configInline"));
    }
    LEGACY_KEYS
        .iter()
        .any(|k| map.contains_key(*k))
        .then(|| (value.clone(), ""))
}

/// Parses a legacy config value, reporting unknown keys as warnings.
pub fn parse_value(
    value: Value,
    origin: &Origin,
    path: &str,
    warnings: &mut Vec<Diagnostic>,
) -> Result<LegacyConfig, Box<Diagnostic>> {
    // configInline may also hold the config as a YAML string.
    let value = match value {
        Value::String(text) => match load::parse_document(&text) {
            Ok(Some(v)) => v,
            Ok(None) => Value::Object(Default::default()),
            Err((message, _)) => {
                return Err(Box::new(
                    Diagnostic::error(
                        Code::Yaml,
                        format!("invalid YAML in legacy config: {message}"),
                    )
                    .at(origin)
                    .field(path),
                ));
            }
        },
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    for unknown in schema::unknown_fields(&value, legacy_schema(), path) {
        warnings.push(load::unknown_field_warning(
            &unknown,
            "legacy-config",
            "",
            origin,
        ));
    }
    serde_path_to_error::deserialize::<_, LegacyConfig>(value).map_err(|e| {
        let mut d = load::type_error(&e, origin, "legacy-config", "");
        if !path.is_empty() {
            d.field = if d.field.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{}", d.field)
            };
        }
        Box::new(d)
    })
}

/// The loader found a document without apiVersion/kind.
pub(crate) fn add_legacy_document(loader: &mut Loader, value: &Value, origin: &Origin) {
    match legacy_part(value) {
        Some((config, path)) => add_legacy_value(loader, config, origin, path),
        None => loader.snapshot.warnings.push(
            Diagnostic::warning(
                Code::NotAnObject,
                "document has no apiVersion/kind and is not a legacy MetalLB config (peers, address-pools, configInline); ignored",
            )
            .at(origin),
        ),
    }
}

/// The `config` key of the legacy ConfigMap.
pub(crate) fn add_legacy_text(loader: &mut Loader, text: &str, origin: &Origin, path: &str) {
    add_legacy_value(loader, Value::String(text.to_string()), origin, path);
}

fn add_legacy_value(loader: &mut Loader, value: Value, origin: &Origin, path: &str) {
    let namespace = loader.snapshot.namespace.clone();
    match parse_value(value, origin, path, &mut loader.snapshot.warnings) {
        Ok(config) => {
            let objects = to_objects(&config, &namespace);
            let s = &mut loader.snapshot;
            let o = || origin.clone();
            s.ip_address_pools.extend(
                objects
                    .ip_address_pools
                    .into_iter()
                    .map(|x| Sourced::new(x, o())),
            );
            s.l2_advertisements.extend(
                objects
                    .l2_advertisements
                    .into_iter()
                    .map(|x| Sourced::new(x, o())),
            );
            s.bgp_advertisements.extend(
                objects
                    .bgp_advertisements
                    .into_iter()
                    .map(|x| Sourced::new(x, o())),
            );
            s.bgp_peers
                .extend(objects.bgp_peers.into_iter().map(|x| Sourced::new(x, o())));
            s.bfd_profiles.extend(
                objects
                    .bfd_profiles
                    .into_iter()
                    .map(|x| Sourced::new(x, o())),
            );
            s.communities.extend(
                objects
                    .communities
                    .into_iter()
                    .map(|x| Sourced::new(x, o())),
            );
        }
        Err(d) => loader.errors.push(*d),
    }
}

/// `oxlb convert`: every legacy config in a file (ConfigMap `config`, Helm values with
/// `configInline`, or a bare config) converted into objects in `namespace`.
pub fn convert_text(
    text: &str,
    file: Option<&std::path::Path>,
    namespace: &str,
) -> Result<(LegacyObjects, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut configs = Vec::new();
    for (index, (line, document)) in load::split_documents(text).into_iter().enumerate() {
        let origin = Origin {
            file: file.map(|f| f.to_path_buf()),
            document: Some(index + 1),
            line: Some(line),
            namespace: None,
        };
        let value = match load::parse_document(document) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err((message, _)) => {
                errors.push(
                    Diagnostic::error(Code::Yaml, format!("invalid YAML: {message}")).at(&origin),
                );
                continue;
            }
        };
        let is_configmap = value.get("kind").and_then(Value::as_str) == Some("ConfigMap");
        let part = if is_configmap {
            value
                .pointer("/data/config")
                .cloned()
                .map(|c| (c, "data.config"))
        } else if value.get("kind").is_none() {
            legacy_part(&value)
        } else {
            None
        };
        if let Some((config, path)) = part {
            match parse_value(config, &origin, path, &mut warnings) {
                Ok(c) => configs.push(c),
                Err(d) => errors.push(*d),
            }
        }
    }
    if configs.is_empty() && errors.is_empty() {
        errors.push(
            Diagnostic::error(Code::NotAnObject, "no legacy MetalLB configuration found")
                .at(&Origin { file: file.map(|f| f.to_path_buf()), ..Origin::default() })
                .expected("a ConfigMap with key `config`, Helm values with `configInline:`, or a document with `peers:` / `address-pools:`"),
        );
    }
    if !errors.is_empty() {
        errors.extend(warnings);
        return Err(errors);
    }
    let mut merged = LegacyConfig::default();
    for c in configs {
        merged.peers.extend(c.peers);
        merged.address_pools.extend(c.address_pools);
        merged.bfd_profiles.extend(c.bfd_profiles);
        merged.bgp_communities.extend(c.bgp_communities);
    }
    Ok((to_objects(&merged, namespace), warnings))
}
