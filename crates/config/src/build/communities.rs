//! `Community` objects: alias name → value. Alias names are unique across all objects.

use std::collections::BTreeMap;

use oxlb_api::Community as CommunityObject;

use super::{Context, parse};
use crate::diagnostic::Code;
use crate::model::Community;
use crate::snapshot::Sourced;

pub(super) fn build(
    cx: &mut Context,
    objects: &[Sourced<CommunityObject>],
) -> BTreeMap<String, Community> {
    let mut seen = BTreeMap::new();
    let mut aliases = BTreeMap::new();
    let mut alias_owner: BTreeMap<String, String> = BTreeMap::new();
    for object in objects {
        let Some(subject) = cx.claim_name(
            "Community",
            object,
            object.object.metadata.name.as_deref(),
            &mut seen,
        ) else {
            continue;
        };
        for (i, alias) in object.object.spec.communities.iter().flatten().enumerate() {
            let field = format!("spec.communities[{i}]");
            let name = alias.name.clone().unwrap_or_default();
            if name.is_empty() {
                cx.errors.push(
                    subject
                        .error(
                            Code::InvalidName,
                            format!("{field}.name"),
                            "alias has no name",
                        )
                        .expected("a non-empty name"),
                );
                continue;
            }
            if let Some(owner) = alias_owner.get(&name) {
                cx.errors.push(
                    subject
                        .error(
                            Code::DuplicateName,
                            format!("{field}.name"),
                            format!("alias already defined in Community {owner:?}"),
                        )
                        .value(&name)
                        .expected("alias names unique across all Community objects"),
                );
                continue;
            }
            let value = alias.value.clone().unwrap_or_default();
            match parse::parse_community(&value) {
                Ok(community) => {
                    alias_owner.insert(name.clone(), subject.name.to_string());
                    aliases.insert(name, community);
                }
                Err(reason) => cx.errors.push(
                    subject
                        .error(Code::InvalidCommunity, format!("{field}.value"), format!("invalid community: {reason}"))
                        .value(&value)
                        .expected("A:B with 16-bit numbers (65535:65282) or large:A:B:C with 32-bit numbers"),
                ),
            }
        }
    }
    aliases
}
