//! `sim`: run the deterministic consensus simulator from the command line.
//!
//! ```text
//! cargo run --release -p gongzhi-tests --bin sim -- --seeds 1000          # 4 and 7 validators
//! cargo run --release -p gongzhi-tests --bin sim -- --seed 42 --validators 7 -v
//! cargo run --release -p gongzhi-tests --bin sim -- --seeds 50 --scenario twins-split --expect-failure
//! ```
//! Exit status 1 on any safety or liveness failure (or, with
//! `--expect-failure`, when no run fails). Each failure prints a
//! `REPRODUCE WITH: …` line.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use gongzhi_tests::sim::{
    reproduce_line, run, CryptoKind, Outcome, RunConfig, ScenarioKind, Summary, LIVENESS_BOUND_MS,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScenarioArg {
    Mixed,
    TwinsSplit,
    LockSplit,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CryptoArg {
    Blake3,
    Ed25519,
}

/// Deterministic simulation of Gongzhi's consensus core under faults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Run exactly this seed (overrides --seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of seeds to run, starting at --start.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Validator counts to run each seed with (f = (n-1)/3).
    #[arg(long, value_delimiter = ',', default_values_t = vec![4, 7])]
    validators: Vec<usize>,
    /// Scenario family.
    #[arg(long, value_enum, default_value = "mixed")]
    scenario: ScenarioArg,
    /// Signature scheme.
    #[arg(long, value_enum, default_value = "blake3")]
    crypto: CryptoArg,
    /// Virtual ms after healing within which every honest node must decide.
    #[arg(long, default_value_t = LIVENESS_BOUND_MS)]
    liveness_bound_ms: u64,
    /// Negative control: succeed only if some run fails.
    #[arg(long)]
    expect_failure: bool,
    /// Print every run.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scenario = match args.scenario {
        ScenarioArg::Mixed => ScenarioKind::Mixed,
        ScenarioArg::TwinsSplit => ScenarioKind::TwinsSplit,
        ScenarioArg::LockSplit => ScenarioKind::LockSplit,
    };
    let crypto = match args.crypto {
        CryptoArg::Blake3 => CryptoKind::Blake3Mac,
        CryptoArg::Ed25519 => CryptoKind::Ed25519,
    };
    let seeds: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (args.start..args.start + args.seeds).collect(),
    };
    let started = Instant::now();
    let mut summary = Summary::default();
    for &seed in &seeds {
        for &validators in &args.validators {
            let config = RunConfig {
                seed,
                validators,
                scenario,
                crypto,
                liveness_bound_ms: args.liveness_bound_ms,
            };
            let report = run(config);
            if args.verbose || args.seed.is_some() {
                println!(
                    "seed {seed} n={validators}: {:?}; heights {}, events {}, virtual {} ms, recovery {:?} ms, evidence {}, messages sent/lost {:?}",
                    report.outcome, report.heights, report.events, report.virtual_ms, report.recovery_ms, report.evidence, report.messages
                );
                if args.seed.is_some() {
                    println!("scenario: {}", report.scenario);
                }
            }
            if report.outcome != Outcome::Ok && !args.expect_failure {
                println!("FAILED seed {seed} n={validators}: {:?}", report.outcome);
                println!("{}", reproduce_line(&report));
            }
            summary.add(report);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "runs {} ({} seeds × n={:?}, scenario {}): safety violations {}, liveness failures {}",
        summary.runs,
        seeds.len(),
        args.validators,
        scenario.name(),
        summary.safety_failures.len(),
        summary.liveness_failures.len()
    );
    println!(
        "heights decided {}, events {}, evidence reports {}, worst recovery after heal {} virtual ms",
        summary.heights, summary.events, summary.evidence, summary.max_recovery_ms
    );
    println!(
        "wall {:.2} s on one core: {:.0} heights/s, {:.0} events/s",
        seconds,
        summary.heights as f64 / seconds,
        summary.events as f64 / seconds
    );
    let failures = summary.safety_failures.len() + summary.liveness_failures.len();
    if args.expect_failure {
        if failures == 0 {
            bail!("negative control passed unexpectedly: no run failed");
        }
        println!("negative control: the checker caught {failures} failing runs (expected)");
        return Ok(());
    }
    if failures > 0 {
        bail!("{failures} failing runs");
    }
    Ok(())
}
