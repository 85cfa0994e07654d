//! The timeline as a picture: one lane of faults (injected to healed, then the time the
//! lab took to look whole again), one lane per Service with its outages in red, and a
//! mark wherever an invariant broke. Plain SVG, no dependency.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::kinds::FaultKind;
use super::score::{Outage, Violation};
use super::timeline::FaultRecord;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const LANE: f64 = 34.0;

fn colour(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Kill => "#d62728",
        FaultKind::Term => "#ff7f0e",
        FaultKind::LinkFlap => "#9467bd",
        FaultKind::Partition => "#8c564b",
        FaultKind::Lossy => "#e377c2",
        FaultKind::BgpdRestart => "#1f77b4",
        FaultKind::RouterReload => "#17becf",
        FaultKind::PoolEdit => "#bcbd22",
        FaultKind::ServiceChange => "#2ca02c",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the timeline. `duration_ms` is the run's length; `services` the lanes.
pub fn render(
    title: &str,
    duration_ms: u64,
    faults: &[FaultRecord],
    outages: &[Outage],
    violations: &[Violation],
    services: &BTreeSet<String>,
) -> String {
    let span = duration_ms.max(1) as f64;
    let x = |ms: u64| LEFT + (ms as f64 / span).min(1.0) * (WIDTH - LEFT - RIGHT);
    let lanes = 1 + services.len();
    let height = TOP + LANE * lanes as f64 + 70.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15">{}</text>"#,
        escape(title)
    );
    // Lane labels and guides.
    let lane_y = |lane: usize| TOP + LANE * lane as f64;
    let _ = writeln!(
        out,
        r#"<text x="10" y="{}">faults</text>"#,
        lane_y(0) + LANE / 2.0 + 4.0
    );
    for (i, service) in services.iter().enumerate() {
        let y = lane_y(i + 1);
        let _ = writeln!(
            out,
            r##"<text x="10" y="{}">{}</text><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>"##,
            y + LANE / 2.0 + 4.0,
            escape(service),
            WIDTH - RIGHT,
            y + LANE / 2.0,
            y + LANE / 2.0
        );
    }
    // Time axis: a tick every 10 % of the run, labelled in seconds.
    let axis_y = lane_y(lanes) + 8.0;
    for step in 0..=10u64 {
        let ms = duration_ms * step / 10;
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{axis_y}" stroke="#eee"/><text x="{0:.1}" y="{1}" text-anchor="middle">{2:.0}s</text>"##,
            x(ms),
            axis_y + 14.0,
            ms as f64 / 1000.0
        );
    }
    // Faults: solid while injected, pale until the lab looked whole again.
    for (i, fault) in faults.iter().enumerate() {
        let y = lane_y(0) + 5.0;
        let (a, b, c) = (x(fault.start_ms), x(fault.healed_ms), x(fault.end_ms));
        let label = format!(
            "#{} {}{} {:.1}s-{:.1}s (healed {:.1}s){}",
            i + 1,
            fault.kind.name(),
            fault
                .node
                .as_ref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            fault.start_ms as f64 / 1000.0,
            fault.end_ms as f64 / 1000.0,
            fault.healed_ms as f64 / 1000.0,
            if fault.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", fault.detail)
            }
        );
        let _ = writeln!(
            out,
            r#"<g><title>{}</title><rect x="{a:.1}" y="{y}" width="{:.1}" height="{}" fill="{}"/><rect x="{b:.1}" y="{y}" width="{:.1}" height="{}" fill="{}" opacity="0.35"/></g>"#,
            escape(&label),
            (b - a).max(1.0),
            LANE - 10.0,
            colour(fault.kind),
            (c - b).max(0.0),
            LANE - 10.0,
            colour(fault.kind)
        );
    }
    // Outages per Service.
    let index: Vec<&String> = services.iter().collect();
    for outage in outages {
        let Some(lane) = index.iter().position(|s| **s == outage.service) else {
            continue;
        };
        let y = lane_y(lane + 1) + 7.0;
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{y}" width="{:.1}" height="{}" fill="#c00"><title>{} {} outage {:.2}s ({} failed requests, during {})</title></rect>"##,
            x(outage.start_ms),
            (x(outage.end_ms) - x(outage.start_ms)).max(1.5),
            LANE - 14.0,
            escape(&outage.service),
            outage.ip,
            outage.length_ms() as f64 / 1000.0,
            outage.failed,
            outage.phase.name()
        );
    }
    // Broken invariants: a dashed red line across every lane.
    for violation in violations {
        let t = match violation {
            Violation::IpMoved { t_ms, .. } | Violation::TwoAnswerers { t_ms, .. } => *t_ms,
            _ => continue,
        };
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{1}" stroke="#f00" stroke-dasharray="4,3"><title>{2}</title></line>"##,
            x(t),
            lane_y(lanes),
            escape(&violation.describe())
        );
    }
    // Legend.
    let mut lx = LEFT;
    let ly = axis_y + 34.0;
    for kind in FaultKind::ALL {
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="{}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly}">{}</text>"#,
            ly - 10.0,
            colour(kind),
            lx + 16.0,
            kind.name()
        );
        lx += 16.0 + 8.0 * kind.name().len() as f64 + 14.0;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{lx:.1}" y="{}" width="12" height="12" fill="#c00"/><text x="{:.1}" y="{ly}">outage</text>"##,
        ly - 10.0,
        lx + 16.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::score::Phase;

    #[test]
    fn lanes_bars_and_marks_are_drawn_and_text_escaped() {
        let faults = [FaultRecord {
            kind: FaultKind::Kill,
            node: Some("node<1>".into()),
            start_ms: 10_000,
            healed_ms: 15_000,
            end_ms: 20_000,
            sessions_back: true,
            sessions_missing: vec![],
            detail: String::new(),
        }];
        let outages = [Outage {
            ip: "10.0.0.1".parse().unwrap(),
            service: "default/web".into(),
            start_ms: 11_000,
            end_ms: 12_000,
            failed: 3,
            phase: Phase::Fault(FaultKind::Kill),
        }];
        let violations = [Violation::TwoAnswerers {
            t_ms: 50_000,
            ip: "10.0.0.200".parse().unwrap(),
            nodes: BTreeSet::from(["a".to_string(), "b".to_string()]),
        }];
        let services = BTreeSet::from(["default/web".to_string(), "default/l2".to_string()]);
        let svg = render("seed 1", 100_000, &faults, &outages, &violations, &services);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("node&lt;1&gt;") && !svg.contains("node<1>"));
        // The fault starts at 10 % of the plot width: LEFT + 0.1 * (1200 - 190 - 20).
        assert!(svg.contains(r#"x="289.0""#), "{svg}");
        assert!(svg.contains("default/web 10.0.0.1 outage 1.00s (3 failed requests, during kill)"));
        assert!(svg.contains("stroke-dasharray") && svg.contains("2 nodes answered ARP"));
        assert_eq!(
            svg.matches("fill=\"#c00\"").count(),
            2,
            "one outage and the legend"
        );
    }
}
