//! Negative control for the lock rule: with
//! `cargo test --release -p gongzhi-tests --features mutation-no-lock-rule --test negative_lock_rule`
//! the consensus core is built without L23/L29's lock conditions, and the
//! scripted lock-split scenario must produce an agreement violation. Without
//! the feature this file asserts the opposite (the same scenario is safe).

use gongzhi_tests::sim::{run, Outcome, RunConfig, ScenarioKind};

fn lock_split_failures(seeds: u64) -> Vec<String> {
    (0..seeds)
        .map(|seed| {
            run(RunConfig {
                scenario: ScenarioKind::LockSplit,
                ..RunConfig::mixed(seed, 4)
            })
        })
        .filter_map(|r| match r.outcome {
            Outcome::Safety(v) if v.invariant == "agreement" => {
                Some(format!("seed {}: {v}", r.config.seed))
            }
            _ => None,
        })
        .collect()
}

#[cfg(feature = "mutation-no-lock-rule")]
#[test]
fn simulator_catches_a_core_without_the_lock_rule() {
    let failures = lock_split_failures(20);
    assert!(
        !failures.is_empty(),
        "the lock-rule mutation survived 20 lock-split seeds"
    );
    println!("caught: {}", failures.join("\n"));
}

#[cfg(not(feature = "mutation-no-lock-rule"))]
#[test]
fn lock_split_is_safe_without_the_mutation() {
    assert_eq!(lock_split_failures(20), Vec::<String>::new());
}
