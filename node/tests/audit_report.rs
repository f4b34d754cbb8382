//! The audit report of the demo chain: the figures derived from replayed txs, receipts and
//! states, and the HTML page rendered in headless Chromium (charts present, page non-trivial).

#![allow(clippy::unwrap_used, clippy::panic)]

mod audit_common;

use std::process::Command;

use audit_common::demo_export;
use gongzhi_node::audit::html::{self, CHART_TITLES};
use gongzhi_node::audit::{replay_file, AuditReport, ReplayOptions, ReportBuilder};

fn demo_report() -> (audit_common::Exported, AuditReport) {
    let export = demo_export();
    let mut builder = ReportBuilder::new();
    let summary = replay_file(&export.file, &ReplayOptions::default(), &mut builder).unwrap();
    (export, builder.finish(summary))
}

#[test]
fn report_figures_match_the_story() {
    let (_export, report) = demo_report();
    let grants = &report.grants_by_agency;
    // civil-affairs approved the health commission's request and delegated one grant.
    assert_eq!(grants["civil-affairs"].issued, 2);
    assert_eq!(grants["civil-affairs"].delegated, 1);
    // yuetan-street issued two grants, revoked one (cascading to the delegated one), and its
    // two-hour grant to the police expired.
    assert_eq!(grants["yuetan-street"].issued, 2);
    assert_eq!(grants["yuetan-street"].revoked, 2);
    assert_eq!(grants["yuetan-street"].expired, 1);
    let requests = &report.requests_by_agency;
    assert_eq!(requests["civil-affairs"].approved, 1);
    assert_eq!(requests["civil-affairs"].rejected, 1);
    assert_eq!(requests["health-commission"].filed, 1);
    assert_eq!(requests["police-subbureau"].filed, 1);
    let yuetan = &report.civility_by_issuer["yuetan-street"]["garbage-sorting"];
    assert_eq!((yuetan.awards, yuetan.points_awarded), (6, 30));
    assert_eq!((yuetan.reversals, yuetan.points_reversed), (1, 5));
    assert_eq!(
        report.civility_by_issuer["civil-affairs"]["volunteering"].points_awarded,
        20
    );
    assert_eq!(
        report.redemptions_by_service_point["service-point"].points,
        10
    );
    let a = &report.anomalies;
    assert_eq!(a.quota_breaches, 1);
    assert_eq!(a.quota_breach_events[0].height, 7);
    assert_eq!(a.quota_breach_events[0].tx_index, 6);
    assert_eq!(a.reversals, 1);
    assert_eq!((a.revocation_cascades, a.grants_revoked_by_cascade), (1, 1));
    assert_eq!(report.failures_by_error["QUOTA_EXCEEDED"], 1);

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["anomalies"]["quota_breaches"], 1);
    assert_eq!(json["summary"]["blocks"], 13);
    let table = report.to_table();
    assert!(
        table.contains("Grants per agency") && table.contains("yuetan-street"),
        "{table}"
    );
}

#[test]
fn html_report_renders_offline_in_chromium() {
    let (export, report) = demo_report();
    let page = html::render(&report);
    for forbidden in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(
            !page.contains(forbidden),
            "the report must be self-contained, found {forbidden}"
        );
    }
    let path = export.dir.path().join("report.html");
    std::fs::write(&path, &page).unwrap();

    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|bin| Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("chromium is needed to check the HTML report: run `make deps` (apt-get install chromium)");
    let profile = tempfile::tempdir().unwrap();
    let png = export.dir.path().join("report.png");
    let url = format!("file://{}", path.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    let shot = Command::new(chromium)
        .args(common)
        .arg(&profile_arg)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,2000")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot is only {size} bytes: the page did not render"
    );

    let dom = Command::new(chromium)
        .args(common)
        .arg(&profile_arg)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    for title in CHART_TITLES {
        assert!(
            dom.contains(title),
            "rendered DOM lacks the chart {title:?}"
        );
    }
    assert!(
        dom.matches("<svg").count() >= CHART_TITLES.len(),
        "charts are missing"
    );

    // To look at the page: GONGZHI_AUDIT_KEEP_REPORT=/some/dir cargo test … --test audit_report
    if let Some(dir) = std::env::var_os("GONGZHI_AUDIT_KEEP_REPORT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&path, dir.join("report.html")).unwrap();
        std::fs::copy(&png, dir.join("report.png")).unwrap();
        std::fs::write(dir.join("report.json"), report.to_json()).unwrap();
        std::fs::write(dir.join("report.txt"), report.to_table()).unwrap();
    }
}
