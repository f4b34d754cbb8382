//! The audit report as one self-contained HTML file: inline CSS and inline SVG charts, no
//! scripts, fonts or images from anywhere, so it opens offline and can be archived as is.
//!
//! Every chart is a `<section>` with an `<h2>` title (the titles are the [`CHART_TITLES`]) and an
//! SVG carrying the same `<title>` for screen readers. All text from the chain is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{AuditReport, Event, GrantCounts};

/// Titles of the charts, in page order (tests look for them in the rendered DOM).
pub const CHART_TITLES: &[&str] = &[
    "Grants issued, revoked and expired per agency",
    "Grants over time per agency",
    "Access requests approved and rejected",
    "Civility points awarded and reversed per issuer and reason",
    "Civility points redeemed per service point",
    "Anomalies",
];

const ISSUED: &str = "#2f6fb0";
const REVOKED: &str = "#c0392b";
const EXPIRED: &str = "#9a9a9a";
const APPROVED: &str = "#2e8b57";
const AWARDED: &str = "#d49a00";
const MAX_BUCKETS: usize = 48;

/// Escape text for HTML content and attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One series of a bar chart: name, colour, one value per category.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    values: Vec<u64>,
}

/// A grouped vertical bar chart as inline SVG.
fn bar_chart(title: &str, categories: &[String], series: &[Series<'_>]) -> String {
    let (width, height) = (1100.0_f64, 340.0_f64);
    let (left, right, top, bottom) = (60.0, 170.0, 36.0, 110.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    // An even maximum of at least 2, so the three gridlines are whole numbers.
    let highest = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let max = highest.max(2).div_ceil(2) * 2;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{t}" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title>{t}</title>"#,
        t = esc(title)
    );
    // Axis and three gridlines.
    for i in 0..=2 {
        let value = max as f64 * f64::from(i) / 2.0;
        let y = top + plot_h - plot_h * f64::from(i) / 2.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{ty:.1}" font-size="11" text-anchor="end" fill="#555">{v}</text>"##,
            x2 = left + plot_w,
            tx = left - 6.0,
            ty = y + 4.0,
            v = value.round() as u64
        );
    }
    if categories.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="14" text-anchor="middle" fill="#777">no activity recorded</text>"##,
            x = left + plot_w / 2.0,
            y = top + plot_h / 2.0
        );
    }
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).clamp(1.0, 48.0);
    for (ci, category) in categories.iter().enumerate() {
        let used = bar_w * series.len() as f64;
        let gx = left + group_w * ci as f64 + (group_w - used) / 2.0;
        for (si, s) in series.iter().enumerate() {
            let value = s.values.get(ci).copied().unwrap_or(0);
            let h = plot_h * value as f64 / max as f64;
            let x = gx + bar_w * si as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{cat} — {name}: {value}</title></rect>"#,
                y = top + plot_h - h,
                w = (bar_w - 1.0).max(0.5),
                c = s.color,
                cat = esc(category),
                name = esc(s.name)
            );
        }
        let lx = gx + used / 2.0;
        let ly = top + plot_h + 14.0;
        let _ = write!(
            svg,
            r##"<text x="{lx:.1}" y="{ly:.1}" font-size="11" fill="#333" text-anchor="start" transform="rotate(30 {lx:.1} {ly:.1})">{}</text>"##,
            esc(category)
        );
    }
    for (si, s) in series.iter().enumerate() {
        let x = left + 160.0 * si as f64;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="8" width="12" height="12" fill="{c}"/><text x="{tx:.1}" y="18" font-size="12" fill="#333">{name}</text>"##,
            c = s.color,
            tx = x + 16.0,
            name = esc(s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn section(title: &str, body: &str) -> String {
    format!("<section><h2>{}</h2>{body}</section>\n", esc(title))
}

fn events_table(caption: &str, events: &[Event], total: u64) -> String {
    if events.is_empty() {
        return format!("<p class=\"muted\">{}: none.</p>", esc(caption));
    }
    let mut out = format!(
        "<table><caption>{} ({} in total{})</caption><tr><th>height</th><th>tx</th><th>time (UTC)</th><th>organisation</th><th>detail</th></tr>",
        esc(caption),
        total,
        if (events.len() as u64) < total { format!(", first {} listed", events.len()) } else { String::new() }
    );
    for e in events {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.height,
            e.tx_index,
            esc(&e.time),
            esc(&e.org),
            esc(&e.detail)
        );
    }
    out.push_str("</table>");
    out
}

/// Merge daily buckets into months (or years) so a chart has at most [`MAX_BUCKETS`] bars.
fn bucketed(
    by_day: &BTreeMap<String, BTreeMap<String, GrantCounts>>,
) -> BTreeMap<String, BTreeMap<String, GrantCounts>> {
    let mut width = 10; // YYYY-MM-DD
    for candidate in [10, 7, 4] {
        width = candidate;
        let keys: std::collections::BTreeSet<&str> = by_day
            .keys()
            .map(|d| &d[..candidate.min(d.len())])
            .collect();
        if keys.len() <= MAX_BUCKETS {
            break;
        }
    }
    let mut out: BTreeMap<String, BTreeMap<String, GrantCounts>> = BTreeMap::new();
    for (d, orgs) in by_day {
        let bucket = out.entry(d[..width.min(d.len())].to_string()).or_default();
        for (org, c) in orgs {
            let entry = bucket.entry(org.clone()).or_default();
            entry.issued += c.issued;
            entry.delegated += c.delegated;
            entry.revoked += c.revoked;
            entry.expired += c.expired;
        }
    }
    out
}

fn grant_series(rows: &[&GrantCounts]) -> Vec<Series<'static>> {
    vec![
        Series {
            name: "issued",
            color: ISSUED,
            values: rows.iter().map(|c| c.issued).collect(),
        },
        Series {
            name: "revoked",
            color: REVOKED,
            values: rows.iter().map(|c| c.revoked).collect(),
        },
        Series {
            name: "expired",
            color: EXPIRED,
            values: rows.iter().map(|c| c.expired).collect(),
        },
    ]
}

/// Render the whole report.
pub fn render(report: &AuditReport) -> String {
    let mut body = String::new();
    if let Some(s) = &report.summary {
        let _ = write!(
            body,
            "<p class=\"ok\">Verified from genesis: chain <b>{}</b>, {} blocks, {} txs ({} failed), {} signatures, in {:.2} s on {} threads.</p>\
             <p class=\"muted\">Genesis {} · last block {} · final state root {} · {} to {}</p>",
            esc(&s.chain_id),
            s.blocks,
            s.txs,
            s.failed_txs,
            s.signatures,
            s.seconds,
            s.threads,
            esc(&s.genesis_hash),
            esc(&s.last_block_hash),
            esc(&s.final_state_root),
            esc(&report.first_block_time),
            esc(&report.last_block_time)
        );
    }

    let agencies: Vec<String> = report.grants_by_agency.keys().cloned().collect();
    let rows: Vec<&GrantCounts> = report.grants_by_agency.values().collect();
    body += &section(
        CHART_TITLES[0],
        &bar_chart(CHART_TITLES[0], &agencies, &grant_series(&rows)),
    );

    let buckets = bucketed(&report.grants_by_day);
    let periods: Vec<String> = buckets.keys().cloned().collect();
    let mut over_time = String::new();
    let empty = GrantCounts::default();
    for agency in &agencies {
        let rows: Vec<&GrantCounts> = buckets
            .values()
            .map(|orgs| orgs.get(agency).unwrap_or(&empty))
            .collect();
        let title = format!("Grants over time: {agency}");
        let _ = write!(
            over_time,
            "<h3>{}</h3>{}",
            esc(&title),
            bar_chart(&title, &periods, &grant_series(&rows))
        );
    }
    if agencies.is_empty() {
        over_time = bar_chart(CHART_TITLES[1], &[], &grant_series(&[]));
    }
    body += &section(CHART_TITLES[1], &over_time);

    let orgs: Vec<String> = report.requests_by_agency.keys().cloned().collect();
    let requests = report.requests_by_agency.values();
    let series = vec![
        Series {
            name: "filed",
            color: ISSUED,
            values: requests.clone().map(|c| c.filed).collect(),
        },
        Series {
            name: "approved",
            color: APPROVED,
            values: requests.clone().map(|c| c.approved).collect(),
        },
        Series {
            name: "rejected",
            color: REVOKED,
            values: requests.map(|c| c.rejected).collect(),
        },
    ];
    body += &section(CHART_TITLES[2], &bar_chart(CHART_TITLES[2], &orgs, &series));

    let mut labels = Vec::new();
    let (mut awarded, mut reversed) = (Vec::new(), Vec::new());
    for (issuer, reasons) in &report.civility_by_issuer {
        for (reason, c) in reasons {
            labels.push(format!("{issuer} / {reason}"));
            awarded.push(c.points_awarded);
            reversed.push(c.points_reversed);
        }
    }
    let series = vec![
        Series {
            name: "points awarded",
            color: AWARDED,
            values: awarded,
        },
        Series {
            name: "points reversed",
            color: REVOKED,
            values: reversed,
        },
    ];
    body += &section(
        CHART_TITLES[3],
        &bar_chart(CHART_TITLES[3], &labels, &series),
    );

    let points: Vec<String> = report
        .redemptions_by_service_point
        .keys()
        .cloned()
        .collect();
    let series = vec![Series {
        name: "points redeemed",
        color: APPROVED,
        values: report
            .redemptions_by_service_point
            .values()
            .map(|c| c.points)
            .collect(),
    }];
    body += &section(
        CHART_TITLES[4],
        &bar_chart(CHART_TITLES[4], &points, &series),
    );

    let a = &report.anomalies;
    let kinds = vec![
        "quota breaches".to_string(),
        "award reversals".to_string(),
        "revocation cascades".to_string(),
        "grants revoked by cascade".to_string(),
    ];
    let series = vec![Series {
        name: "count",
        color: REVOKED,
        values: vec![
            a.quota_breaches,
            a.reversals,
            a.revocation_cascades,
            a.grants_revoked_by_cascade,
        ],
    }];
    let mut anomalies = bar_chart(CHART_TITLES[5], &kinds, &series);
    anomalies += &events_table(
        "Attempted quota breaches (QUOTA_EXCEEDED receipts)",
        &a.quota_breach_events,
        a.quota_breaches,
    );
    anomalies += &events_table("Award reversals", &a.reversal_events, a.reversals);
    anomalies += &events_table(
        "Revocation cascades",
        &a.cascade_events,
        a.revocation_cascades,
    );
    body += &section(CHART_TITLES[5], &anomalies);

    let mut failures = String::from("<table><tr><th>error</th><th>failed txs</th></tr>");
    for (name, count) in &report.failures_by_error {
        let _ = write!(failures, "<tr><td>{}</td><td>{count}</td></tr>", esc(name));
    }
    failures.push_str("</table>");
    body += &section("Failed txs per error", &failures);

    let chain = report.summary.as_ref().map_or("", |s| s.chain_id.as_str());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Gongzhi audit report — {}</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222;max-width:1140px}}h1{{font-size:22px}}\
         h2{{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}}h3{{font-size:14px;margin:12px 0 0}}\
         table{{border-collapse:collapse;margin:10px 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         caption{{text-align:left;font-weight:bold;padding:4px 0}}.muted{{color:#666;font-size:13px}}.ok{{color:#1d6b36}}</style></head>\
         <body><h1>Gongzhi audit report (共治审计报告)</h1>\n{body}</body></html>\n",
        esc(chain)
    )
}
