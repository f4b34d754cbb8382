//! The simulated world: N hosts, each driving one instance of the real
//! consensus core, on a faulty network, in virtual time.
//!
//! Each host does what the node will do: it makes `PersistSafetyState`
//! durable (here: copies it into `durable_safety`, which survives a crash)
//! before acting on later outputs, answers `RequestValue`/`VerifyValue`,
//! schedules timeouts, commits decisions and starts the next height,
//! re-gossips its messages of the current height periodically, and answers a
//! peer that is behind with the proposal and commit certificate of that height
//! (block sync). Byzantine hosts change what they send (see [`Behaviour`]).
//!
//! Invariants: a run is a pure function of (scenario, seed); every safety
//! invariant is checked after every event; the run stops at the first
//! violation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gongzhi_consensus::{
    Consensus, ConsensusConfig, Height, Input, Output, SafetyModule, SafetyState, SignatureScheme,
    SignedMessage, SignedProposal, SignedVote, Step, TimeoutConfig, Validator, ValidatorSet,
    ValueId, Vote, PROPOSAL_SIGN_TAG, VOTE_SIGN_TAG,
};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::crypto::{CryptoKind, SimKey, SimVerifier};
use super::invariants::{Invariants, Violation};
use super::network::{Event, EventQueue, Network};
use super::scenario::{Behaviour, Scenario};

type Core = Consensus<SimKey, SimVerifier>;

/// Re-gossip period of each host, virtual ms.
pub const RETRANSMIT_MS: u64 = 300;

/// The core configuration used in simulations.
pub fn sim_consensus_config() -> ConsensusConfig {
    ConsensusConfig {
        timeouts: TimeoutConfig {
            propose: Duration::from_millis(1000),
            prevote: Duration::from_millis(500),
            precommit: Duration::from_millis(500),
            per_round: Duration::from_millis(250),
        },
        ..ConsensusConfig::default()
    }
}

/// One host and its consensus instance.
#[derive(Debug)]
pub(crate) struct Host {
    pub validator: usize,
    pub behaviour: Behaviour,
    pub core: Option<Core>,
    epoch: u32,
    pub durable_safety: SafetyState,
    /// Last committed height (durable).
    pub committed: Height,
    /// Proposal and certificate of each committed height (durable block store).
    commits: BTreeMap<Height, Vec<SignedMessage>>,
    /// Messages sent at the current height: recipients (None = all) and
    /// message. Durable (the node's consensus WAL), re-gossiped periodically.
    sent_log: Vec<(Option<Vec<usize>>, SignedMessage)>,
    /// Messages received at the current height (durable WAL), replayed into
    /// the core after a restart — except by amnesiac hosts.
    received_log: BTreeSet<SignedMessage>,
    crash_mid_batch: bool,
    last_catch_up: BTreeMap<usize, u64>,
}

impl Host {
    pub fn is_honest(&self) -> bool {
        self.behaviour == Behaviour::Honest
    }
}

/// The world of one run.
#[derive(Debug)]
pub(crate) struct World {
    pub scenario: Scenario,
    pub rng: ChaCha20Rng,
    pub queue: EventQueue,
    pub network: Network,
    pub hosts: Vec<Host>,
    keys: Vec<SimKey>,
    verifier: SimVerifier,
    pub validator_set: ValidatorSet,
    pub invariants: Invariants,
    valid_values: BTreeSet<ValueId>,
    proposals: BTreeMap<(Height, ValueId), SignedProposal>,
    value_counter: u64,
    seed: u64,
    pub events: u64,
}

impl World {
    pub fn new(scenario: Scenario, seed: u64, rng: ChaCha20Rng, crypto: CryptoKind) -> World {
        let keys: Vec<SimKey> = (0..scenario.validators)
            .map(|i| SimKey::derive(crypto, seed, i))
            .collect();
        let validator_set = ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    id: k.id(),
                    power: 1,
                })
                .collect(),
        )
        .unwrap_or_else(|e| panic!("simulated validator set: {e}"));
        let instances = scenario.instances();
        let hosts = instances
            .iter()
            .map(|&v| Host {
                validator: v,
                behaviour: scenario.behaviours[v],
                core: None,
                epoch: 0,
                durable_safety: SafetyState::default(),
                committed: Height(0),
                commits: BTreeMap::new(),
                sent_log: Vec::new(),
                received_log: BTreeSet::new(),
                crash_mid_batch: false,
                last_catch_up: BTreeMap::new(),
            })
            .collect();
        let network = Network {
            validator_of: instances.clone(),
            index_of: keys.iter().enumerate().map(|(i, k)| (k.id(), i)).collect(),
            sent: 0,
            dropped: 0,
        };
        let verifier = SimVerifier::new(&keys);
        let mut world = World {
            scenario,
            rng,
            queue: EventQueue::default(),
            network,
            hosts,
            keys,
            verifier,
            validator_set,
            invariants: Invariants::default(),
            valid_values: BTreeSet::new(),
            proposals: BTreeMap::new(),
            value_counter: 0,
            seed,
            events: 0,
        };
        for node in 0..world.hosts.len() {
            let jitter = world.rng.gen_range(0..RETRANSMIT_MS);
            world.queue.push_after(jitter, Event::Retransmit { node });
        }
        for plan in world.scenario.crashes.clone() {
            world.queue.push_at(
                plan.at,
                Event::Crash {
                    node: plan.instance,
                    mid_batch: plan.mid_batch,
                },
            );
            world.queue.push_at(
                plan.restart_at,
                Event::Restart {
                    node: plan.instance,
                },
            );
        }
        world
    }

    /// Validator index of the proposer of `(height, round)`.
    pub fn proposer_index(
        set: &ValidatorSet,
        keys: &[SimKey],
        height: Height,
        round: u32,
    ) -> usize {
        let id = set.proposer(height, gongzhi_consensus::Round(round)).id;
        keys.iter().position(|k| k.id() == id).unwrap_or(0)
    }

    /// Starts every host at height 1.
    pub fn boot(&mut self) -> Result<(), Violation> {
        for node in 0..self.hosts.len() {
            self.start_core(node)?;
        }
        Ok(())
    }

    fn start_core(&mut self, node: usize) -> Result<(), Violation> {
        let host = &mut self.hosts[node];
        let mut state = host.durable_safety;
        if host.behaviour == Behaviour::Amnesia {
            state.lock = None; // forgets its lock
        }
        let key = self.keys[host.validator].clone();
        let module = SafetyModule::new(key.id(), key, state);
        let mut core = Consensus::new(sim_consensus_config(), module, self.verifier.clone());
        let outputs = core.handle(Input::StartHeight {
            height: host.committed.next(),
            validators: self.validator_set.clone(),
        });
        host.core = Some(core);
        let replay = if host.behaviour == Behaviour::Amnesia {
            Vec::new()
        } else {
            host.received_log.iter().copied().collect()
        };
        self.apply(node, outputs)?;
        for message in replay {
            let input = match message {
                SignedMessage::Proposal(p) => Input::Proposal(p),
                SignedMessage::Vote(v) => Input::Vote(v),
            };
            self.feed(node, input)?;
        }
        Ok(())
    }

    fn crash(&mut self, node: usize) {
        let host = &mut self.hosts[node];
        host.core = None;
        host.epoch += 1;
        host.crash_mid_batch = false;
    }

    fn new_value(&mut self) -> ValueId {
        self.value_counter += 1;
        let mut hasher = blake3::Hasher::new();
        hasher
            .update(&self.seed.to_le_bytes())
            .update(&self.value_counter.to_le_bytes());
        let value = ValueId(*hasher.finalize().as_bytes());
        self.valid_values.insert(value);
        value
    }

    fn feed(&mut self, node: usize, input: Input) -> Result<(), Violation> {
        let Some(core) = self.hosts[node].core.as_mut() else {
            return Ok(());
        };
        let outputs = core.handle(input);
        self.apply(node, outputs)
    }

    /// Processes one event; checks the invariants afterwards.
    pub fn step(&mut self, event: Event) -> Result<(), Violation> {
        self.events += 1;
        match event {
            Event::Deliver { to, from, message } => self.deliver(to, from, message)?,
            Event::Timeout {
                node,
                epoch,
                kind,
                height,
                round,
            } if epoch == self.hosts[node].epoch => {
                self.feed(
                    node,
                    Input::TimeoutElapsed {
                        kind,
                        height,
                        round,
                    },
                )?;
            }
            Event::ValueReady {
                node,
                epoch,
                height,
                round,
                value,
            } if epoch == self.hosts[node].epoch => {
                self.feed(
                    node,
                    Input::ValueReady {
                        height,
                        round,
                        value,
                    },
                )?;
            }
            Event::ValueVerified {
                node,
                epoch,
                height,
                value,
            } if epoch == self.hosts[node].epoch => {
                let valid = self.valid_values.contains(&value);
                self.feed(
                    node,
                    Input::ValueVerified {
                        height,
                        value,
                        valid,
                    },
                )?;
            }
            Event::Timeout { .. } | Event::ValueReady { .. } | Event::ValueVerified { .. } => {}
            Event::Retransmit { node } => {
                self.retransmit(node);
                self.queue
                    .push_after(RETRANSMIT_MS, Event::Retransmit { node });
            }
            Event::Crash { node, mid_batch } => {
                if self.hosts[node].core.is_some() {
                    if mid_batch {
                        self.hosts[node].crash_mid_batch = true;
                    } else {
                        self.crash(node);
                    }
                }
            }
            Event::Restart { node } => {
                // A mid-batch crash that found no batch before its restart time is void.
                self.hosts[node].crash_mid_batch = false;
                if self.hosts[node].core.is_none() {
                    self.start_core(node)?;
                }
            }
        }
        for (node, host) in self.hosts.iter().enumerate() {
            if let Some(height) = host.core.as_ref().and_then(|c| c.height()) {
                self.invariants.heights.on_step(node, height)?;
            }
        }
        let hosts = &self.hosts;
        self.invariants
            .evidence
            .check(|node| hosts[node].core.is_some())
    }

    fn deliver(&mut self, to: usize, from: usize, message: SignedMessage) -> Result<(), Violation> {
        let now = self.queue.now;
        let host = &mut self.hosts[to];
        let Some(core) = host.core.as_ref() else {
            return Ok(());
        };
        let (height, round, step) = (core.height(), core.round(), core.step());
        if height.is_some_and(|h| message.height() < h) {
            // Block sync: the sender is behind; send it what decided that height.
            let due = host
                .last_catch_up
                .get(&from)
                .is_none_or(|t| now >= t + RETRANSMIT_MS);
            if let (true, Some(commit)) = (due, host.commits.get(&message.height()).cloned()) {
                host.last_catch_up.insert(from, now);
                for m in commit {
                    self.network
                        .send(&mut self.queue, &mut self.rng, &self.scenario, to, from, m);
                }
            }
            return Ok(());
        }
        if let SignedMessage::Vote(vote) = message {
            let working = height == Some(vote.vote.height)
                && step != Some(Step::Commit)
                && round.is_some_and(|r| vote.vote.round <= r);
            if host.is_honest() && working && self.validator_set.get(&vote.vote.validator).is_some()
            {
                self.invariants.evidence.on_seen(to, vote);
            }
        }
        if height == Some(message.height()) {
            host.received_log.insert(message);
        }
        let input = match message {
            SignedMessage::Proposal(p) => Input::Proposal(p),
            SignedMessage::Vote(v) => Input::Vote(v),
        };
        self.feed(to, input)
    }

    /// Re-gossip, like Tendermint's gossip routines: the host's own messages
    /// and the ones it received (relay), of the last two rounds in full and,
    /// of older rounds, what can still matter — proposals and non-nil votes
    /// (proofs of lock for L28, commits for L49).
    fn retransmit(&mut self, node: usize) {
        let host = &self.hosts[node];
        let Some(round) = host.core.as_ref().and_then(|c| c.round()) else {
            return;
        };
        let wanted = |m: &SignedMessage| {
            let recent = m.round().0 + 1 >= round.0;
            let non_nil = match m {
                SignedMessage::Proposal(_) => true,
                SignedMessage::Vote(v) => v.vote.value.is_some(),
            };
            recent || non_nil
        };
        let mut entries: Vec<_> = host
            .sent_log
            .iter()
            .filter(|(_, m)| wanted(m))
            .cloned()
            .collect();
        entries.extend(
            host.received_log
                .iter()
                .filter(|m| wanted(m))
                .map(|m| (None, *m)),
        );
        for (recipients, message) in entries {
            self.send_to(node, recipients, message);
        }
    }

    fn send_to(&mut self, node: usize, recipients: Option<Vec<usize>>, message: SignedMessage) {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        for to in recipients.unwrap_or(all) {
            self.network.send(
                &mut self.queue,
                &mut self.rng,
                &self.scenario,
                node,
                to,
                message,
            );
        }
    }

    /// Sends `message` as `node`'s behaviour dictates, and logs it for re-gossip.
    fn broadcast(&mut self, node: usize, message: SignedMessage) {
        let behaviour = self.hosts[node].behaviour;
        let key = self.keys[self.hosts[node].validator].clone();
        let alternative = match (behaviour, message) {
            (Behaviour::Silent, _) => return,
            (Behaviour::EquivocatingProposer, SignedMessage::Proposal(p)) => {
                let mut proposal = p.proposal;
                proposal.value = self.new_value();
                let signature = key.sign(PROPOSAL_SIGN_TAG, &proposal.sign_bytes());
                let alt = SignedProposal {
                    proposal,
                    signature,
                };
                self.invariants
                    .validity
                    .on_proposal(proposal.height, proposal.value);
                self.proposals
                    .insert((proposal.height, proposal.value), alt);
                Some(SignedMessage::Proposal(alt))
            }
            (Behaviour::DoubleVoter, SignedMessage::Vote(v)) => {
                let value = match v.vote.value {
                    Some(_) => None,
                    None => Some(self.new_value()),
                };
                let vote = Vote { value, ..v.vote };
                let signature = key.sign(VOTE_SIGN_TAG, &vote.sign_bytes());
                Some(SignedMessage::Vote(SignedVote { vote, signature }))
            }
            _ => None,
        };
        let log = &mut self.hosts[node].sent_log;
        match alternative {
            None => {
                log.push((None, message));
                self.send_to(node, None, message);
            }
            Some(alt) => {
                let mut peers: Vec<usize> = (0..self.hosts.len()).filter(|&p| p != node).collect();
                peers.shuffle(&mut self.rng);
                let split = self.rng.gen_range(0..=peers.len());
                let (first, second) = peers.split_at(split);
                let (first, second) = (first.to_vec(), second.to_vec());
                let log = &mut self.hosts[node].sent_log;
                log.push((Some(first.clone()), message));
                log.push((Some(second.clone()), alt));
                self.send_to(node, Some(first), message);
                self.send_to(node, Some(second), alt);
            }
        }
    }

    /// Performs `outputs` of `node`'s core in order, as the node's driver would.
    fn apply(&mut self, node: usize, outputs: Vec<Output>) -> Result<(), Violation> {
        let mut batch = outputs;
        loop {
            let cut = if self.hosts[node].crash_mid_batch && !batch.is_empty() {
                Some(self.rng.gen_range(0..batch.len()))
            } else {
                None
            };
            let mut next_height = None;
            for (i, output) in batch.into_iter().enumerate() {
                if cut == Some(i) {
                    self.crash(node);
                    return Ok(());
                }
                next_height = self.apply_one(node, output)?.or(next_height);
            }
            let Some(height) = next_height else {
                return Ok(());
            };
            let host = &mut self.hosts[node];
            host.sent_log.clear();
            host.received_log.clear();
            let Some(core) = host.core.as_mut() else {
                return Ok(());
            };
            batch = core.handle(Input::StartHeight {
                height,
                validators: self.validator_set.clone(),
            });
        }
    }

    /// Performs one output; returns the next height to start after a decision.
    fn apply_one(&mut self, node: usize, output: Output) -> Result<Option<Height>, Violation> {
        let honest = self.hosts[node].is_honest();
        let epoch = self.hosts[node].epoch;
        match output {
            Output::PersistSafetyState(state) => self.hosts[node].durable_safety = state,
            Output::BroadcastProposal(p) => {
                self.invariants
                    .validity
                    .on_proposal(p.proposal.height, p.proposal.value);
                self.proposals
                    .insert((p.proposal.height, p.proposal.value), p);
                let message = SignedMessage::Proposal(p);
                if honest {
                    self.invariants.signatures.on_send(
                        node,
                        message,
                        &self.hosts[node].durable_safety,
                    )?;
                }
                self.broadcast(node, message);
            }
            Output::BroadcastVote(v) => {
                let message = SignedMessage::Vote(v);
                if honest {
                    self.invariants.signatures.on_send(
                        node,
                        message,
                        &self.hosts[node].durable_safety,
                    )?;
                }
                self.broadcast(node, message);
            }
            Output::ScheduleTimeout {
                kind,
                height,
                round,
                duration,
            } => {
                let delay = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2);
                self.queue.push_after(
                    delay,
                    Event::Timeout {
                        node,
                        epoch,
                        kind,
                        height,
                        round,
                    },
                );
            }
            Output::RequestValue { height, round } => {
                let value = self.new_value();
                let delay = self.rng.gen_range(0..20);
                self.queue.push_after(
                    delay,
                    Event::ValueReady {
                        node,
                        epoch,
                        height,
                        round,
                        value,
                    },
                );
            }
            Output::VerifyValue { height, value, .. } => {
                let delay = self.rng.gen_range(0..20);
                self.queue.push_after(
                    delay,
                    Event::ValueVerified {
                        node,
                        epoch,
                        height,
                        value,
                    },
                );
            }
            Output::Decide {
                height,
                round,
                value,
                certificate,
            } => {
                let power: u64 = certificate
                    .iter()
                    .map(|v| self.validator_set.power_of(&v.vote.validator))
                    .sum();
                if honest {
                    self.invariants.agreement.on_decide(node, height, value)?;
                    let valid =
                        self.valid_values.contains(&value) && self.validator_set.is_quorum(power);
                    self.invariants
                        .validity
                        .on_decide(node, height, value, valid)?;
                    self.invariants.heights.on_decide(node, height)?;
                }
                let _ = round;
                let mut commit: Vec<SignedMessage> =
                    certificate.into_iter().map(SignedMessage::Vote).collect();
                let proposal = self.proposals.get(&(height, value)).copied();
                commit.extend(proposal.map(SignedMessage::Proposal));
                let host = &mut self.hosts[node];
                host.committed = height;
                host.commits.insert(height, commit);
                return Ok(Some(height.next()));
            }
            Output::Evidence(evidence) => {
                if honest {
                    self.invariants.evidence.on_evidence(node, &evidence.first);
                }
            }
        }
        Ok(None)
    }
}
