//! The seeded simulation as an ordinary test: a few hundred seeds of the
//! whole fault mix with f=1 of 4 and f=2 of 7 (0 safety violations, 0
//! liveness failures after healing), the scripted lock-split scenario, and
//! the ≥1/3-byzantine negative control (twins split by a partition).
//!
//! Longer soak: `cargo run --release -p gongzhi-tests --bin sim -- --seeds 10000`.
#![cfg(not(feature = "mutation-no-lock-rule"))]

use gongzhi_tests::sim::{
    reproduce_line, run, CryptoKind, Outcome, RunConfig, ScenarioKind, Summary,
};

fn assert_all_pass(configs: impl Iterator<Item = RunConfig>) -> Summary {
    let mut summary = Summary::default();
    for config in configs {
        let report = run(config);
        assert!(
            report.outcome == Outcome::Ok,
            "{:?}\n{}",
            report.outcome,
            reproduce_line(&report)
        );
        summary.add(report);
    }
    summary
}

#[test]
fn mixed_faults_f1_of_4() {
    let summary = assert_all_pass((0..150).map(|seed| RunConfig::mixed(seed, 4)));
    assert!(summary.heights >= 150 * 4);
}

#[test]
fn mixed_faults_f2_of_7() {
    let summary = assert_all_pass((0..150).map(|seed| RunConfig::mixed(seed, 7)));
    assert!(summary.heights >= 150 * 4);
}

#[test]
fn ed25519_signatures_f1_of_4() {
    assert_all_pass((0..10).map(|seed| RunConfig {
        crypto: CryptoKind::Ed25519,
        ..RunConfig::mixed(seed, 4)
    }));
}

#[test]
fn lock_split_is_safe_with_the_lock_rule() {
    assert_all_pass((0..20).map(|seed| RunConfig {
        scenario: ScenarioKind::LockSplit,
        ..RunConfig::mixed(seed, 4)
    }));
}

#[test]
fn equivocations_become_evidence() {
    let summary = assert_all_pass((0..40).map(|seed| RunConfig::mixed(seed, 7)));
    assert!(
        summary.evidence > 0,
        "no equivocation was detected in 40 seeds"
    );
}

/// Negative control: two of four validators twinned (byzantine power 1/2 ≥ 1/3)
/// and split by a partition. The checker must find a fork or a stall.
#[test]
fn twins_with_half_the_power_are_caught() {
    let mut caught = 0;
    for seed in 0..20 {
        let report = run(RunConfig {
            scenario: ScenarioKind::TwinsSplit,
            ..RunConfig::mixed(seed, 4)
        });
        if report.outcome != Outcome::Ok {
            caught += 1;
        }
    }
    assert!(caught >= 10, "only {caught} of 20 twins-split runs failed");
}

#[test]
fn runs_are_deterministic() {
    let a = run(RunConfig::mixed(7, 7));
    let b = run(RunConfig::mixed(7, 7));
    assert_eq!(
        (a.events, a.virtual_ms, a.heights),
        (b.events, b.virtual_ms, b.heights)
    );
}
