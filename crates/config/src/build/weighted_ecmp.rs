//! `oxlb.io/weighted-ecmp` on a BGPAdvertisement: an annotation rather than a field, so
//! MetalLB's CRD schema stays as it is and a MetalLB speaker ignores it.

use std::collections::BTreeMap;

use super::{Context, Subject};
use crate::diagnostic::Code;

/// The annotation that turns weighted ECMP on for an advertisement.
pub const ANNOTATION: &str = "oxlb.io/weighted-ecmp";

/// `"true"` turns it on, `"false"` or no annotation leaves it off; any other value is a
/// warning naming the object, and leaves it off (equal paths, MetalLB's behaviour).
pub(super) fn weighted_ecmp(
    cx: &mut Context,
    subject: &Subject<'_>,
    annotations: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(value) = annotations.and_then(|a| a.get(ANNOTATION)) else {
        return false;
    };
    match value.trim() {
        "true" => true,
        "false" => false,
        other => {
            cx.warnings.push(
                subject
                    .warning(
                        Code::Ignored,
                        format!("metadata.annotations[{ANNOTATION}]"),
                        "not \"true\" or \"false\": weighted ECMP stays off for this advertisement",
                    )
                    .value(other)
                    .expected("\"true\" or \"false\""),
            );
            false
        }
    }
}
