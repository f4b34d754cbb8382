//! Runs one seeded simulation to completion and judges it.
//!
//! A run ends when (a) an invariant breaks (safety failure), (b) every honest
//! host has committed the target height — at least `scenario.target_height`
//! and at least one height above the highest honest decision at `heal_at` —
//! or (c) the liveness deadline `heal_at + liveness_bound_ms` passes first
//! (liveness failure). With `SIM_DEBUG=1` a liveness failure also prints each
//! host's durable position, lock and valid value to stderr.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::crypto::CryptoKind;
use super::invariants::Violation;
use super::scenario::{Scenario, ScenarioKind};
use super::world::World;
use gongzhi_consensus::Height;

/// Default virtual time allowed after the network heals for every honest
/// node to decide the next height.
pub const LIVENESS_BOUND_MS: u64 = 120_000;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct RunConfig {
    /// The seed; with the other fields it determines the whole run.
    pub seed: u64,
    /// Validator count (4 → f = 1, 7 → f = 2).
    pub validators: usize,
    /// Scenario family.
    pub scenario: ScenarioKind,
    /// Signature scheme.
    pub crypto: CryptoKind,
    /// Virtual ms after healing within which honest nodes must progress.
    pub liveness_bound_ms: u64,
}

impl RunConfig {
    /// Defaults for `seed` and `validators`: mixed faults, blake3 MAC.
    pub fn mixed(seed: u64, validators: usize) -> Self {
        RunConfig {
            seed,
            validators,
            scenario: ScenarioKind::Mixed,
            crypto: CryptoKind::Blake3Mac,
            liveness_bound_ms: LIVENESS_BOUND_MS,
        }
    }

    /// The command that reproduces this run.
    pub fn reproduce_command(&self) -> String {
        let crypto = match self.crypto {
            CryptoKind::Blake3Mac => "",
            CryptoKind::Ed25519 => " --crypto ed25519",
        };
        format!(
            "cargo run --release -p gongzhi-tests --bin sim -- --seed {} --validators {} --scenario {}{crypto}",
            self.seed,
            self.validators,
            self.scenario.name()
        )
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All invariants held and every honest node reached the target.
    Ok,
    /// A safety invariant broke.
    Safety(Violation),
    /// Honest nodes did not progress in time after healing.
    Liveness(String),
}

/// Result of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// What ran.
    pub config: RunConfig,
    /// How it ended.
    pub outcome: Outcome,
    /// Highest height committed by every honest node.
    pub heights: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual ms at the end.
    pub virtual_ms: u64,
    /// Virtual ms after healing until all honest nodes passed the heal-time height.
    pub recovery_ms: Option<u64>,
    /// Equivocations turned into evidence by honest nodes.
    pub evidence: u64,
    /// Messages sent / lost.
    pub messages: (u64, u64),
    /// The scenario, for the failure report.
    pub scenario: String,
}

/// Runs one simulation.
pub fn run(config: RunConfig) -> RunReport {
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed ^ ((config.validators as u64) << 56));
    let scenario = match config.scenario {
        ScenarioKind::Mixed => Scenario::mixed(&mut rng, config.validators),
        ScenarioKind::TwinsSplit => Scenario::twins_split(&mut rng),
        ScenarioKind::LockSplit => {
            // Roles depend on the proposer rotation, which depends on the keys.
            let keys: Vec<_> = (0..4)
                .map(|i| super::crypto::SimKey::derive(config.crypto, config.seed, i))
                .collect();
            let set = gongzhi_consensus::ValidatorSet::new(
                keys.iter()
                    .map(|k| gongzhi_consensus::Validator {
                        id: k.id(),
                        power: 1,
                    })
                    .collect(),
            )
            .unwrap_or_else(|e| panic!("validator set: {e}"));
            let a = World::proposer_index(&set, &keys, Height(1), 0);
            let d = World::proposer_index(&set, &keys, Height(1), 1);
            Scenario::lock_split(&mut rng, a, d)
        }
    };
    let description = format!("{scenario:?}");
    let mut world = World::new(scenario, config.seed, rng, config.crypto);
    let outcome = drive(&mut world, &config);
    let honest: Vec<_> = world.hosts.iter().filter(|h| h.is_honest()).collect();
    RunReport {
        config,
        heights: honest.iter().map(|h| h.committed.0).min().unwrap_or(0),
        events: world.events,
        virtual_ms: world.queue.now,
        recovery_ms: outcome.1,
        evidence: world.invariants.evidence.reports,
        messages: (world.network.sent, world.network.dropped),
        scenario: description,
        outcome: outcome.0,
    }
}

fn drive(world: &mut World, config: &RunConfig) -> (Outcome, Option<u64>) {
    if let Err(v) = world.boot() {
        return (Outcome::Safety(v), None);
    }
    let heal_at = world.scenario.heal_at;
    let deadline = heal_at + config.liveness_bound_ms;
    let mut target: Option<u64> = None;
    let mut recovery = None;
    loop {
        if target.is_none() && world.queue.now >= heal_at {
            let highest = world.invariants.agreement.highest().map_or(0, |h| h.0);
            target = Some(highest + 1);
        }
        let min_committed = world
            .hosts
            .iter()
            .filter(|h| h.is_honest())
            .map(|h| h.committed.0)
            .min()
            .unwrap_or(u64::MAX);
        if let Some(t) = target {
            if recovery.is_none() && min_committed >= t {
                recovery = Some(world.queue.now - heal_at);
            }
            if min_committed >= t.max(world.scenario.target_height) {
                return (Outcome::Ok, recovery);
            }
        }
        if world.queue.now > deadline {
            if std::env::var("SIM_DEBUG").is_ok() {
                for (i, h) in world.hosts.iter().enumerate() {
                    eprintln!(
                        "host {i} {:?} durable {:?} locked {:?} valid {:?} lock {:?}",
                        h.behaviour,
                        h.durable_safety.last_position(),
                        h.core.as_ref().and_then(|c| c.locked()),
                        h.core.as_ref().and_then(|c| c.valid()),
                        h.durable_safety.lock
                    );
                }
            }
            let behind: Vec<String> = world
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.is_honest())
                .map(|(i, h)| {
                    let core = h.core.as_ref();
                    format!(
                        "node {i}: committed {}, at {:?}/{:?}/{:?}",
                        h.committed.0,
                        core.and_then(|c| c.height()).map(|x| x.0),
                        core.and_then(|c| c.round()).map(|x| x.0),
                        core.and_then(|c| c.step())
                    )
                })
                .collect();
            return (
                Outcome::Liveness(format!(
                    "no progress to height {} within {} ms after healing at {heal_at} ms: {}",
                    target.unwrap_or(0).max(world.scenario.target_height),
                    config.liveness_bound_ms,
                    behind.join("; ")
                )),
                recovery,
            );
        }
        let Some(event) = world.queue.pop() else {
            return (Outcome::Liveness("event queue ran dry".into()), recovery);
        };
        if let Err(v) = world.step(event) {
            return (Outcome::Safety(v), recovery);
        }
    }
}
