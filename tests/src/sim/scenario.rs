//! Scenarios: who is byzantine and how, and what the network does, drawn
//! from the run's seeded RNG (or scripted, for the negative controls).
//!
//! Invariants of the generated `Mixed` scenarios: byzantine validators
//! (counting a twin pair as one) never exceed `f = (n - 1) / 3`; every
//! network fault (loss, partition) and every crash ends by `heal_at`, after
//! which the network only delays, duplicates and reorders.

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use gongzhi_consensus::{Height, Round, SignedMessage, Step};

/// What one validator's instance(s) do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Runs the core and follows its outputs.
    Honest,
    /// Runs the core, never sends anything.
    Silent,
    /// As proposer, sends one proposal to some peers and a different one to the others.
    EquivocatingProposer,
    /// Signs a second, different vote for each vote and splits them between peers.
    DoubleVoter,
    /// Restarts now and then from its safety state with the lock erased.
    Amnesia,
    /// Two instances share the key, each with its own safety state.
    Twin,
}

impl Behaviour {
    /// All byzantine behaviours.
    pub const BYZANTINE: [Behaviour; 5] = [
        Behaviour::Silent,
        Behaviour::EquivocatingProposer,
        Behaviour::DoubleVoter,
        Behaviour::Amnesia,
        Behaviour::Twin,
    ];
}

/// Which scenario family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioKind {
    /// Random mix of all faults with at most f byzantine validators.
    Mixed,
    /// Negative control: 2 of 4 validators twinned, twins split by a partition.
    TwinsSplit,
    /// Scripted message loss that forks a core without the lock rule.
    LockSplit,
}

impl ScenarioKind {
    /// Name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Mixed => "mixed",
            ScenarioKind::TwinsSplit => "twins-split",
            ScenarioKind::LockSplit => "lock-split",
        }
    }
}

/// A drop rule of a scripted scenario: messages of `step` at `height`/`round`
/// signed by validator `signer` (any if None) to validators in `to` are lost
/// until the network heals.
#[derive(Clone, Debug)]
pub struct DropRule {
    /// Height of dropped messages.
    pub height: Height,
    /// Round of dropped messages.
    pub round: Round,
    /// Step (message type) of dropped messages.
    pub step: Step,
    /// Signer validator index, or any.
    pub signer: Option<usize>,
    /// Receiving validator indexes.
    pub to: Vec<usize>,
}

impl DropRule {
    /// True iff `message` from validator `signer` to validator `to` is dropped.
    pub fn drops(&self, message: &SignedMessage, signer: usize, to: usize) -> bool {
        message.height() == self.height
            && message.round() == self.round
            && message.step() == self.step
            && self.signer.is_none_or(|s| s == signer)
            && self.to.contains(&to)
    }
}

/// A crash of one instance and its restart.
#[derive(Clone, Copy, Debug)]
pub struct CrashPlan {
    /// Instance index.
    pub instance: usize,
    /// Virtual ms of the crash.
    pub at: u64,
    /// Virtual ms of the restart.
    pub restart_at: u64,
    /// Crash in the middle of applying an output batch (after a persist, maybe before a send).
    pub mid_batch: bool,
}

/// Everything that defines one run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Scenario family.
    pub kind: ScenarioKind,
    /// Number of validators (equal power 1).
    pub validators: usize,
    /// Behaviour per validator.
    pub behaviours: Vec<Behaviour>,
    /// Message delay range in virtual ms.
    pub delay_ms: (u64, u64),
    /// Loss probability before `heal_at`.
    pub drop_probability: f64,
    /// Duplication probability.
    pub duplicate_probability: f64,
    /// Partition: `(from, until, side of each instance)`.
    pub partition: Option<(u64, u64, Vec<bool>)>,
    /// Scripted drops before `heal_at`.
    pub drop_rules: Vec<DropRule>,
    /// Crash-restarts.
    pub crashes: Vec<CrashPlan>,
    /// Virtual ms after which the network is healthy and all crashed nodes are back.
    pub heal_at: u64,
    /// Heights every honest node must decide (at least).
    pub target_height: u64,
}

impl Scenario {
    /// Instance count (twins add one instance each).
    pub fn instances(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for (v, b) in self.behaviours.iter().enumerate() {
            out.push(v);
            if *b == Behaviour::Twin {
                out.push(v);
            }
        }
        out
    }

    /// A random mix of faults for `n` validators.
    pub fn mixed(rng: &mut ChaCha20Rng, n: usize) -> Scenario {
        let f = (n - 1) / 3;
        let mut behaviours = vec![Behaviour::Honest; n];
        let byzantine = rng.gen_range(0..=f);
        let mut chosen = 0;
        while chosen < byzantine {
            let v = rng.gen_range(0..n);
            if behaviours[v] == Behaviour::Honest {
                behaviours[v] = Behaviour::BYZANTINE[rng.gen_range(0..Behaviour::BYZANTINE.len())];
                chosen += 1;
            }
        }
        let heal_at = rng.gen_range(2_000..15_000);
        let max_delay = rng.gen_range(10..200);
        let mut scenario = Scenario {
            kind: ScenarioKind::Mixed,
            validators: n,
            behaviours,
            delay_ms: (1, max_delay),
            drop_probability: if rng.gen_bool(0.7) {
                rng.gen_range(0.0..0.3)
            } else {
                0.0
            },
            duplicate_probability: rng.gen_range(0.0..0.1),
            partition: None,
            drop_rules: Vec::new(),
            crashes: Vec::new(),
            heal_at,
            target_height: 4,
        };
        let instances = scenario.instances().len();
        if rng.gen_bool(0.5) {
            let from = rng.gen_range(0..heal_at / 2);
            let sides = (0..instances).map(|_| rng.gen_bool(0.5)).collect();
            scenario.partition = Some((from, heal_at, sides));
        }
        for (v, b) in scenario.behaviours.clone().iter().enumerate() {
            if *b == Behaviour::Amnesia {
                let instance = scenario
                    .instances()
                    .iter()
                    .position(|&x| x == v)
                    .unwrap_or(0);
                for _ in 0..2 {
                    let at = rng.gen_range(0..heal_at - 500);
                    let restart_at = rng.gen_range(at + 1..heal_at);
                    scenario.crashes.push(CrashPlan {
                        instance,
                        at,
                        restart_at,
                        mid_batch: false,
                    });
                }
            }
        }
        if rng.gen_bool(0.5) {
            for _ in 0..rng.gen_range(1..=2) {
                let at = rng.gen_range(0..heal_at - 500);
                scenario.crashes.push(CrashPlan {
                    instance: rng.gen_range(0..instances),
                    at,
                    restart_at: rng.gen_range(at + 1..heal_at),
                    mid_batch: rng.gen_bool(0.5),
                });
            }
        }
        scenario
    }

    /// Negative control: validators 2 and 3 of 4 are twins (byzantine power
    /// 1/2); a partition puts one twin of each on each side.
    pub fn twins_split(rng: &mut ChaCha20Rng) -> Scenario {
        let behaviours = vec![
            Behaviour::Honest,
            Behaviour::Honest,
            Behaviour::Twin,
            Behaviour::Twin,
        ];
        // Instances: 0 → v0, 1 → v1, 2 → v2a, 3 → v2b, 4 → v3a, 5 → v3b.
        let sides = vec![true, false, true, false, true, false];
        Scenario {
            kind: ScenarioKind::TwinsSplit,
            validators: 4,
            behaviours,
            delay_ms: (1, rng.gen_range(5..50)),
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            partition: Some((0, 20_000, sides)),
            drop_rules: Vec::new(),
            crashes: Vec::new(),
            heal_at: 20_000,
            target_height: 3,
        }
    }

    /// Scripted fork for a core without the lock rule (all four honest).
    /// With A = proposer(1, 0), D = proposer(1, 1), B and C the others:
    /// D misses A's proposal and C's prevote in round 0, so it neither sees
    /// the polka for v nor locks; B, C and D miss A's precommit, so only A
    /// decides v. In round 1 D proposes a new value w: locked B and C must
    /// prevote nil. Without the lock rule they prevote w and decide it.
    pub fn lock_split(rng: &mut ChaCha20Rng, proposer_r0: usize, proposer_r1: usize) -> Scenario {
        let (a, d) = (proposer_r0, proposer_r1);
        let others: Vec<usize> = (0..4).filter(|&i| i != a && i != d).collect();
        let (b, c) = (others[0], others[1]);
        let rule = |step, round, signer, to: Vec<usize>| DropRule {
            height: Height(1),
            round: Round(round),
            step,
            signer,
            to,
        };
        Scenario {
            kind: ScenarioKind::LockSplit,
            validators: 4,
            behaviours: vec![Behaviour::Honest; 4],
            delay_ms: (1, rng.gen_range(2..10)),
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            partition: None,
            drop_rules: vec![
                rule(Step::Propose, 0, None, vec![d]),
                rule(Step::Prevote, 0, Some(c), vec![d]),
                rule(Step::Precommit, 0, Some(a), vec![b, c, d]),
            ],
            crashes: Vec::new(),
            heal_at: 8_000,
            target_height: 3,
        }
    }
}
