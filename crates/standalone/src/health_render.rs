//! The health-check rows of `oxlb status` and `oxlb explain` (the checks themselves run
//! in `oxlb_node::health`, shared with `oxlb speaker`).

use oxlb_node::status::StatusReport;

/// The `oxlb status` section (empty when no Service is checked).
pub fn status_table(report: &StatusReport) -> String {
    if report.health_checks.is_empty() {
        return String::new();
    }
    let mut rows = vec![
        [
            "SERVICE",
            "CHECK",
            "STATE",
            "LATENCY",
            "CHECKS",
            "FAILED",
            "LAST ERROR",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for h in &report.health_checks {
        rows.push(vec![
            h.service.clone(),
            h.check.clone(),
            if h.failing_everywhere {
                format!("{} (everywhere)", h.state)
            } else {
                h.state.clone()
            },
            h.latency_ms
                .map_or_else(|| "-".into(), |ms| format!("{ms:.1}ms")),
            h.checks.to_string(),
            h.failures.to_string(),
            h.error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    format!(
        "\nHealth checks (a Service is announced by this node only while its check is up; \
         when it fails on every node it is withdrawn everywhere)\n{}",
        crate::render::indent(&crate::render::table(&rows))
    )
}

/// `oxlb explain` lines for one Service.
pub fn explain(report: &StatusReport, service: &str) -> String {
    let Some(h) = report.health_checks.iter().find(|h| h.service == service) else {
        return String::new();
    };
    let latency = h
        .latency_ms
        .map(|ms| format!(", last latency {ms:.1}ms"))
        .unwrap_or_default();
    let error = h
        .error
        .as_deref()
        .map(|e| format!(", last error: {e}"))
        .unwrap_or_default();
    match h.state.as_str() {
        "invalid" => format!(
            "  Health check annotation invalid, announced as if unchecked: {}\n",
            h.error.as_deref().unwrap_or("?")
        ),
        "up" => format!("  Health check {} is up{latency}: announced.\n", h.check),
        "pending" => format!(
            "  Health check {} has no result yet: not announced until it passes.\n",
            h.check
        ),
        _ if h.failing_everywhere => format!(
            "  Health check {} is down{error}, and on every live speaker: withdrawn \
             everywhere (a node announces only while its own check passes).\n",
            h.check
        ),
        _ => format!(
            "  Health check {} is down{error}: withdrawn from this node \
             (and from every node where it fails, even if that is all of them).\n",
            h.check
        ),
    }
}
