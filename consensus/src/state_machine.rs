//! The consensus core: Algorithm 1 of "The latest gossip on BFT consensus"
//! (Buchman, Kwon, Milosevic, arXiv 1807.04938) as a deterministic state
//! machine. `handle(Input) -> Vec<Output>`; no I/O, clocks or randomness.
//!
//! Structure: [`Consensus::handle`] dispatches an input; messages pass the
//! *edge* (`admit`: height, membership, proposer, round quota, signature) and
//! land in the height's log; then `run_rules` evaluates the `upon` rules of
//! the paper against the log until none fires. Each rule fires at most once
//! per trigger (guarded by `step_p` or a "first time" flag), so the loop ends.
//!
//! Invariants:
//! - Nothing unverified reaches the log: every peer message's signature is
//!   checked through [`SignatureVerifier`] before it is stored or counted.
//! - Every signature goes through the [`SafetyModule`]; its state change is
//!   emitted as `PersistSafetyState` before the matching broadcast.
//! - Heights only grow; one validator set per height.
//!
//! Deviations from the paper, all liveness-neutral for safety:
//! - `getValue()` and `valid(v)` are asynchronous host calls
//!   (`RequestValue`/`ValueReady`, `VerifyValue`/`ValueVerified`), so the
//!   proposer also schedules `timeoutPropose` while it waits for its value.
//! - After deciding (L49-L51) the core waits in `Step::Commit` for the host's
//!   `StartHeight` instead of starting the next height itself (L52-L54).
//! - On restart the core resumes at the round of its last signed message and
//!   re-sends that message.

use crate::buffer::FutureBuffer;
use crate::height_state::HeightState;
use crate::io::{ConsensusConfig, Input, Output, TimeoutKind};
use crate::safety::{SafetyModule, SafetyState};
use crate::types::{
    Height, Proposal, Round, SignatureScheme, SignatureVerifier, SignedMessage, SignedVote, Step,
    ValidatorId, ValueId, Vote, VoteKind,
};
use crate::validator_set::ValidatorSet;
use crate::vote_keeper::AddVoteOutcome;

/// One validator's (or observer's) consensus instance.
#[derive(Debug)]
pub struct Consensus<S, V> {
    config: ConsensusConfig,
    safety: SafetyModule<S>,
    verifier: V,
    state: Option<HeightState>,
    buffer: FutureBuffer,
}

/// L23: may we prevote for `value` with no proof-of-lock round?
fn unlocked_or_locked_on(locked: Option<(Round, ValueId)>, value: ValueId) -> bool {
    if cfg!(feature = "mutation-no-lock-rule") {
        return true;
    }
    locked.is_none_or(|(_, locked_value)| locked_value == value)
}

/// L29: may we prevote for `value` re-proposed with proof-of-lock round `pol_round`?
fn lock_allows_pol(locked: Option<(Round, ValueId)>, value: ValueId, pol_round: Round) -> bool {
    if cfg!(feature = "mutation-no-lock-rule") {
        return true;
    }
    locked.is_none_or(|(locked_round, locked_value)| {
        locked_round <= pol_round || locked_value == value
    })
}

impl<S: SignatureScheme, V: SignatureVerifier> Consensus<S, V> {
    /// A core that signs through `safety` (resumed from its persisted state)
    /// and verifies peers through `verifier`. Feed `Input::StartHeight` next.
    pub fn new(config: ConsensusConfig, safety: SafetyModule<S>, verifier: V) -> Self {
        Consensus {
            config,
            safety,
            verifier,
            state: None,
            buffer: FutureBuffer::default(),
        }
    }

    /// Applies one input; returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if let Input::StartHeight { height, validators } = input {
            self.start_height(height, validators, &mut out);
            return out;
        }
        let Some(mut hs) = self.state.take() else {
            if let Input::Proposal(p) = input {
                self.buffer_message(SignedMessage::Proposal(p), None);
            } else if let Input::Vote(v) = input {
                self.buffer_message(SignedMessage::Vote(v), None);
            }
            return out;
        };
        match input {
            Input::StartHeight { .. } => {}
            Input::Proposal(p) => self.admit(&mut hs, SignedMessage::Proposal(p), &mut out),
            Input::Vote(v) => self.admit(&mut hs, SignedMessage::Vote(v), &mut out),
            Input::TimeoutElapsed {
                kind,
                height,
                round,
            } => self.on_timeout(&mut hs, kind, height, round, &mut out),
            Input::ValueReady {
                height,
                round,
                value,
            } => {
                let ours = hs.validators.proposer(height, round).id == self.safety.id();
                if height == hs.height
                    && round == hs.round
                    && hs.step == Step::Propose
                    && hs.value_requested
                    && ours
                {
                    hs.value_requested = false;
                    hs.validity.insert(value, true);
                    self.propose(&mut hs, value, None, &mut out); // L18-L19
                }
            }
            Input::ValueVerified {
                height,
                value,
                valid,
            } => {
                if height == hs.height {
                    hs.validity.entry(value).or_insert(valid);
                }
            }
        }
        self.run_rules(&mut hs, &mut out);
        self.state = Some(hs);
        out
    }

    /// L10 / L54: start `height`, resuming from the safety state if it
    /// already signed something at this height.
    fn start_height(&mut self, height: Height, validators: ValidatorSet, out: &mut Vec<Output>) {
        if self.state.as_ref().is_some_and(|hs| height <= hs.height) {
            return;
        }
        let mut hs = HeightState::new(height, validators);
        let safety: SafetyState = *self.safety.state();
        if let Some(lock) = safety.lock.filter(|l| l.height == height) {
            hs.locked = Some((lock.round, lock.value));
        }
        let mut round = Round(0);
        if let Some(last) = safety.last_signed.filter(|m| m.height() == height) {
            round = last.round();
            if let SignedMessage::Vote(vote) = last {
                // Already durable: re-send and count it.
                out.push(Output::BroadcastVote(vote));
                let power = hs.validators.power_of(&vote.vote.validator);
                hs.votes.add_vote(vote, power);
            }
        }
        let buffered = self.buffer.take_height(height);
        self.start_round(&mut hs, round, out);
        for message in buffered {
            self.admit(&mut hs, message, out);
        }
        self.run_rules(&mut hs, out);
        self.state = Some(hs);
    }

    /// L11-L21: StartRound.
    fn start_round(&mut self, hs: &mut HeightState, round: Round, out: &mut Vec<Output>) {
        hs.enter_round(round); // L12-L13
        let us = self.safety.id();
        if hs.validators.proposer(hs.height, round).id == us {
            // L14: we are the proposer.
            let resumed = match self.safety.state().last_signed {
                Some(SignedMessage::Proposal(p))
                    if p.proposal.height == hs.height && p.proposal.round == round =>
                {
                    Some((p.proposal.value, p.proposal.pol_round))
                }
                _ => None,
            };
            if let Some((value, pol_round)) = resumed {
                // Restarted after proposing: re-send the identical proposal.
                hs.validity.insert(value, true);
                self.propose(hs, value, pol_round, out);
            } else if let Some((valid_round, valid_value)) = hs.valid {
                // L15-L16, L19
                self.propose(hs, valid_value, Some(valid_round), out);
            } else {
                // L18: getValue() is asynchronous; wait with timeoutPropose.
                hs.value_requested = true;
                out.push(Output::RequestValue {
                    height: hs.height,
                    round,
                });
                self.schedule(hs, TimeoutKind::Propose, out);
            }
        } else {
            self.schedule(hs, TimeoutKind::Propose, out); // L21
        }
    }

    fn schedule(&self, hs: &HeightState, kind: TimeoutKind, out: &mut Vec<Output>) {
        out.push(Output::ScheduleTimeout {
            kind,
            height: hs.height,
            round: hs.round,
            duration: self.config.timeouts.duration(kind, hs.round),
        });
    }

    /// L19: sign and broadcast a proposal, then handle it as received.
    fn propose(
        &mut self,
        hs: &mut HeightState,
        value: ValueId,
        pol_round: Option<Round>,
        out: &mut Vec<Output>,
    ) {
        let proposal = Proposal {
            height: hs.height,
            round: hs.round,
            value,
            pol_round,
            proposer: self.safety.id(),
        };
        let Ok(signed) = self.safety.sign_proposal(proposal) else {
            return; // refused: a different proposal was signed here before a restart
        };
        if let Some(state) = signed.new_state {
            out.push(Output::PersistSafetyState(state));
        }
        out.push(Output::BroadcastProposal(signed.message));
        let power = hs.validators.power_of(&proposal.proposer);
        hs.votes
            .record_proposal_sender(hs.round, proposal.proposer, power);
        hs.store_proposal(signed.message);
    }

    /// Sign and broadcast our vote for the current round, and count it.
    fn cast(
        &mut self,
        hs: &mut HeightState,
        kind: VoteKind,
        value: Option<ValueId>,
        out: &mut Vec<Output>,
    ) {
        let us = self.safety.id();
        let power = hs.validators.power_of(&us);
        if power == 0 {
            return; // observer: not a validator at this height
        }
        let vote = Vote {
            kind,
            height: hs.height,
            round: hs.round,
            value,
            validator: us,
        };
        let Ok(signed) = self.safety.sign_vote(vote) else {
            return; // refused: a different vote was signed here before a restart
        };
        if let Some(state) = signed.new_state {
            out.push(Output::PersistSafetyState(state));
        }
        out.push(Output::BroadcastVote(signed.message));
        hs.votes.add_vote(signed.message, power);
    }

    fn buffer_message(&mut self, message: SignedMessage, current: Option<Height>) {
        if let Some(current) = current {
            if message.height().0 > current.0.saturating_add(self.config.max_future_heights) {
                return;
            }
        }
        self.buffer.push(
            message,
            self.config.max_buffered_messages,
            self.config.max_buffered_per_signer,
        );
    }

    /// The edge: checks a peer message and stores it in the log. Invalid,
    /// late, unknown-signer, wrong-proposer and over-quota messages are
    /// dropped; a conflicting vote becomes evidence.
    fn admit(&mut self, hs: &mut HeightState, message: SignedMessage, out: &mut Vec<Output>) {
        if message.height() > hs.height {
            self.buffer_message(message, Some(hs.height));
            return;
        }
        if message.height() < hs.height || hs.step == Step::Commit {
            return;
        }
        let signer = message.signer();
        let power = hs.validators.power_of(&signer);
        if power == 0 {
            return;
        }
        let round = message.round();
        if round > hs.round
            && !hs.votes.has_sender(round, &signer)
            && hs.votes.rounds_above_with_sender(hs.round, &signer)
                >= self.config.max_future_rounds_per_validator
        {
            return;
        }
        match message {
            SignedMessage::Proposal(sp) => {
                let p = sp.proposal;
                if p.proposer != hs.validators.proposer(hs.height, round).id
                    || p.pol_round.is_some_and(|vr| vr >= round)
                {
                    return;
                }
                let stored = hs.proposals.get(&round);
                if stored.is_some_and(|list| list.iter().any(|s| s.proposal == p)) {
                    return;
                }
                let full =
                    stored.is_some_and(|list| list.len() >= self.config.max_proposals_per_round);
                let has_quorum = [VoteKind::Prevote, VoteKind::Precommit].iter().any(|&k| {
                    hs.validators
                        .is_quorum(hs.votes.power_for(round, k, Some(p.value)))
                });
                if (full && !has_quorum) || !sp.verify(&self.verifier) {
                    return;
                }
                hs.votes.record_proposal_sender(round, signer, power);
                hs.store_proposal(sp);
                if hs.is_valid(&p.value).is_none() && hs.verification_requested.insert(p.value) {
                    out.push(Output::VerifyValue {
                        height: hs.height,
                        round,
                        value: p.value,
                    });
                }
            }
            SignedMessage::Vote(sv) => {
                if hs.votes.contains(&sv) || !sv.verify(&self.verifier) {
                    return;
                }
                if let AddVoteOutcome::Equivocation(evidence) = hs.votes.add_vote(sv, power) {
                    out.push(Output::Evidence(*evidence));
                }
            }
        }
    }

    fn on_timeout(
        &mut self,
        hs: &mut HeightState,
        kind: TimeoutKind,
        height: Height,
        round: Round,
        out: &mut Vec<Output>,
    ) {
        if height != hs.height || round != hs.round {
            return;
        }
        match (kind, hs.step) {
            (TimeoutKind::Propose, Step::Propose) => {
                // L57-L60
                self.cast(hs, VoteKind::Prevote, None, out);
                hs.step = Step::Prevote;
            }
            (TimeoutKind::Prevote, Step::Prevote) => {
                // L61-L64
                self.cast(hs, VoteKind::Precommit, None, out);
                hs.step = Step::Precommit;
            }
            (TimeoutKind::Precommit, step) if step != Step::Commit => {
                self.start_round(hs, round.next(), out); // L65-L67
            }
            _ => {}
        }
    }

    /// Evaluates the `upon` rules until none fires.
    fn run_rules(&mut self, hs: &mut HeightState, out: &mut Vec<Output>) {
        loop {
            if hs.step == Step::Commit || self.rule_decide(hs, out) {
                return;
            }
            if let Some(round) = Self::round_to_skip_to(hs) {
                self.start_round(hs, round, out); // L55-L56
                continue;
            }
            if hs.step == Step::Propose && self.rule_prevote_on_proposal(hs, out) {
                continue;
            }
            if hs.step >= Step::Prevote && !hs.polka_handled && self.rule_polka_for_value(hs, out) {
                continue;
            }
            let round = hs.round;
            if hs.step == Step::Prevote
                && hs
                    .validators
                    .is_quorum(hs.votes.power_for(round, VoteKind::Prevote, None))
            {
                // L44-L46
                self.cast(hs, VoteKind::Precommit, None, out);
                hs.step = Step::Precommit;
                continue;
            }
            if hs.step == Step::Prevote
                && !hs.prevote_timeout_scheduled
                && hs
                    .validators
                    .is_quorum(hs.votes.power_any(round, VoteKind::Prevote))
            {
                // L34-L35
                hs.prevote_timeout_scheduled = true;
                self.schedule(hs, TimeoutKind::Prevote, out);
                continue;
            }
            if !hs.precommit_timeout_scheduled
                && hs
                    .validators
                    .is_quorum(hs.votes.power_any(round, VoteKind::Precommit))
            {
                // L47-L48
                hs.precommit_timeout_scheduled = true;
                self.schedule(hs, TimeoutKind::Precommit, out);
                continue;
            }
            return;
        }
    }

    /// L49-L51: a proposal for a valid `v` in any round `r` plus 2f+1
    /// precommits for `v` in `r` decide `v`.
    fn rule_decide(&mut self, hs: &mut HeightState, out: &mut Vec<Output>) -> bool {
        let found = hs.proposals.iter().find_map(|(round, list)| {
            list.iter().map(|sp| sp.proposal.value).find_map(|value| {
                let power = hs.votes.power_for(*round, VoteKind::Precommit, Some(value));
                (hs.is_valid(&value) == Some(true) && hs.validators.is_quorum(power))
                    .then_some((*round, value))
            })
        });
        let Some((round, value)) = found else {
            return false;
        };
        let certificate: Vec<SignedVote> =
            hs.votes.votes_for(round, VoteKind::Precommit, Some(value));
        hs.step = Step::Commit;
        out.push(Output::Decide {
            height: hs.height,
            round,
            value,
            certificate,
        });
        true
    }

    /// L55: the highest round above `round_p` with messages from f+1 power.
    fn round_to_skip_to(hs: &HeightState) -> Option<Round> {
        hs.votes
            .rounds_above(hs.round)
            .filter(|r| hs.validators.is_one_third_plus(hs.votes.sender_power(*r)))
            .last()
    }

    /// L22-L27 and L28-L33, while `step_p = propose`.
    fn rule_prevote_on_proposal(&mut self, hs: &mut HeightState, out: &mut Vec<Output>) -> bool {
        for sp in hs.proposals_in(hs.round) {
            let value = sp.proposal.value;
            let Some(valid) = hs.is_valid(&value) else {
                continue; // wait for the host's ValueVerified (or timeoutPropose)
            };
            let vote = match sp.proposal.pol_round {
                None => {
                    // L22-L23
                    if valid && unlocked_or_locked_on(hs.locked, value) {
                        Some(value) // L24
                    } else {
                        None // L26
                    }
                }
                Some(pol_round) => {
                    // L28: needs 2f+1 prevotes for v in pol_round.
                    let power = hs
                        .votes
                        .power_for(pol_round, VoteKind::Prevote, Some(value));
                    if !hs.validators.is_quorum(power) {
                        continue;
                    }
                    if valid && lock_allows_pol(hs.locked, value, pol_round) {
                        Some(value) // L29-L30
                    } else {
                        None // L32
                    }
                }
            };
            self.cast(hs, VoteKind::Prevote, vote, out);
            hs.step = Step::Prevote; // L27, L33
            return true;
        }
        false
    }

    /// L36-L43: proposal for valid `v` and 2f+1 prevotes for `v` in `round_p`,
    /// while `step_p ≥ prevote`, for the first time.
    fn rule_polka_for_value(&mut self, hs: &mut HeightState, out: &mut Vec<Output>) -> bool {
        let round = hs.round;
        for sp in hs.proposals_in(round) {
            let value = sp.proposal.value;
            let power = hs.votes.power_for(round, VoteKind::Prevote, Some(value));
            if hs.is_valid(&value) != Some(true) || !hs.validators.is_quorum(power) {
                continue;
            }
            hs.polka_handled = true;
            if hs.step == Step::Prevote {
                // L37-L41
                hs.locked = Some((round, value));
                self.cast(hs, VoteKind::Precommit, Some(value), out);
                hs.step = Step::Precommit;
            }
            hs.valid = Some((round, value)); // L42-L43
            return true;
        }
        false
    }

    /// Current height, once started.
    pub fn height(&self) -> Option<Height> {
        self.state.as_ref().map(|hs| hs.height)
    }

    /// Current round (`round_p`).
    pub fn round(&self) -> Option<Round> {
        self.state.as_ref().map(|hs| hs.round)
    }

    /// Current step (`step_p`, or `Commit` after deciding).
    pub fn step(&self) -> Option<Step> {
        self.state.as_ref().map(|hs| hs.step)
    }

    /// `(lockedRound_p, lockedValue_p)`.
    pub fn locked(&self) -> Option<(Round, ValueId)> {
        self.state.as_ref().and_then(|hs| hs.locked)
    }

    /// `(validRound_p, validValue_p)`.
    pub fn valid(&self) -> Option<(Round, ValueId)> {
        self.state.as_ref().and_then(|hs| hs.valid)
    }

    /// This instance's validator key.
    pub fn validator_id(&self) -> ValidatorId {
        self.safety.id()
    }

    /// The safety state (the host persists it on `PersistSafetyState`).
    pub fn safety_state(&self) -> &SafetyState {
        self.safety.state()
    }

    /// True iff exactly this vote is counted at the current height.
    pub fn knows_vote(&self, vote: &SignedVote) -> bool {
        self.state
            .as_ref()
            .is_some_and(|hs| hs.votes.contains(vote))
    }

    /// Messages buffered for future heights.
    pub fn buffered_messages(&self) -> usize {
        self.buffer.count()
    }
}
