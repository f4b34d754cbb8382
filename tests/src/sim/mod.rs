//! Deterministic discrete-event simulation of N consensus cores.
//!
//! One seeded RNG (ChaCha20) drives everything: the scenario (who is
//! byzantine, partitions, crashes), message delays, loss, duplication and
//! reordering, and the hosts' choices. Virtual time only; the same
//! `RunConfig` always gives the same run, so every failure prints a
//! `REPRODUCE WITH: …` command.
//!
//! Modules: [`crypto`] (signing schemes), [`scenario`] (fault mixes and the
//! scripted negative controls), [`network`] (event queue, faulty links),
//! `world` (hosts driving the real cores), [`invariants`] (one checker per
//! file), [`runner`] (one run, end conditions, liveness).

pub mod crypto;
pub mod invariants;
pub mod network;
pub mod runner;
pub mod scenario;
mod world;

pub use crypto::CryptoKind;
pub use runner::{run, Outcome, RunConfig, RunReport, LIVENESS_BOUND_MS};
pub use scenario::{Behaviour, Scenario, ScenarioKind};

/// Totals over many runs.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Runs done.
    pub runs: u64,
    /// Runs that broke a safety invariant.
    pub safety_failures: Vec<RunReport>,
    /// Runs that stalled after healing.
    pub liveness_failures: Vec<RunReport>,
    /// Heights committed (min over honest nodes), summed over runs.
    pub heights: u64,
    /// Events processed.
    pub events: u64,
    /// Evidence reports by honest nodes.
    pub evidence: u64,
    /// Worst recovery time after healing, virtual ms.
    pub max_recovery_ms: u64,
}

impl Summary {
    /// Adds one run.
    pub fn add(&mut self, report: RunReport) {
        self.runs += 1;
        self.heights += report.heights;
        self.events += report.events;
        self.evidence += report.evidence;
        self.max_recovery_ms = self.max_recovery_ms.max(report.recovery_ms.unwrap_or(0));
        match report.outcome {
            Outcome::Ok => {}
            Outcome::Safety(_) => self.safety_failures.push(report),
            Outcome::Liveness(_) => self.liveness_failures.push(report),
        }
    }
}

/// The failure line a person can paste to re-run one seed.
pub fn reproduce_line(report: &RunReport) -> String {
    format!("REPRODUCE WITH: {}", report.config.reproduce_command())
}
