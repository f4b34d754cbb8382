//! The core's boundary: [`Input`]s the host feeds in, [`Output`]s it must act
//! on, and the configuration of timeouts and buffers.
//!
//! Output order is a contract. The host processes the `Vec<Output>` of one
//! `handle` call front to back, and:
//! - makes every [`Output::PersistSafetyState`] durable before it sends any
//!   later [`Output::BroadcastProposal`] / [`Output::BroadcastVote`] (of this
//!   call or a later one); the core always emits the persist first;
//! - commits a [`Output::Decide`] durably before it calls `StartHeight` for
//!   the next height;
//! - may perform the other outputs in any order relative to one another.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::safety::SafetyState;
use crate::types::{Height, Round, SignedProposal, SignedVote, ValueId};
use crate::validator_set::ValidatorSet;
use crate::vote_keeper::DoubleSignEvidence;

/// The three timeouts of Algorithm 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeoutKind {
    /// `OnTimeoutPropose` (L57).
    Propose,
    /// `OnTimeoutPrevote` (L61).
    Prevote,
    /// `OnTimeoutPrecommit` (L65).
    Precommit,
}

/// Timeout durations: `base + round * per_round` for each kind, so they grow
/// with the round and eventually exceed any (unknown) message delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutConfig {
    /// Base of `timeoutPropose`.
    pub propose: Duration,
    /// Base of `timeoutPrevote`.
    pub prevote: Duration,
    /// Base of `timeoutPrecommit`.
    pub precommit: Duration,
    /// Added per round to each timeout.
    pub per_round: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose: Duration::from_millis(3000),
            prevote: Duration::from_millis(1000),
            precommit: Duration::from_millis(1000),
            per_round: Duration::from_millis(500),
        }
    }
}

impl TimeoutConfig {
    /// Duration of `kind` in `round`.
    pub fn duration(&self, kind: TimeoutKind, round: Round) -> Duration {
        let base = match kind {
            TimeoutKind::Propose => self.propose,
            TimeoutKind::Prevote => self.prevote,
            TimeoutKind::Precommit => self.precommit,
        };
        base.saturating_add(self.per_round.saturating_mul(round.0))
    }
}

/// Configuration of a [`crate::Consensus`] instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusConfig {
    /// Timeout durations.
    pub timeouts: TimeoutConfig,
    /// Rounds above the current one in which one validator's messages are
    /// kept (more are dropped until the node catches up). Bounds memory
    /// against validators that spam far-future rounds.
    pub max_future_rounds_per_validator: usize,
    /// Distinct proposals kept per round (beyond this, only a proposal whose
    /// value already has a prevote or precommit quorum is accepted).
    pub max_proposals_per_round: usize,
    /// Heights above the current one whose messages are buffered.
    pub max_future_heights: u64,
    /// Total messages buffered for future heights.
    pub max_buffered_messages: usize,
    /// Messages buffered for future heights per signer.
    pub max_buffered_per_signer: usize,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            timeouts: TimeoutConfig::default(),
            max_future_rounds_per_validator: 4,
            max_proposals_per_round: 2,
            max_future_heights: 2,
            max_buffered_messages: 4096,
            max_buffered_per_signer: 64,
        }
    }
}

/// Everything the host tells the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Start `height` with its validator set (L10, L54). Heights only grow:
    /// a height not above the current one is ignored.
    StartHeight {
        /// The height to start.
        height: Height,
        /// The validators of that height.
        validators: ValidatorSet,
    },
    /// A proposal from the network (signature not yet checked: the core
    /// verifies it at its edge).
    Proposal(SignedProposal),
    /// A vote from the network (signature not yet checked).
    Vote(SignedVote),
    /// A timeout scheduled by [`Output::ScheduleTimeout`] elapsed.
    TimeoutElapsed {
        /// Which timeout.
        kind: TimeoutKind,
        /// Height it was scheduled for.
        height: Height,
        /// Round it was scheduled for.
        round: Round,
    },
    /// Answer to [`Output::RequestValue`]: the host built (and executed) a block.
    ValueReady {
        /// Height requested.
        height: Height,
        /// Round requested.
        round: Round,
        /// Hash of the block to propose.
        value: ValueId,
    },
    /// Answer to [`Output::VerifyValue`]: the host executed the block `value`.
    ValueVerified {
        /// Height of the proposal.
        height: Height,
        /// The block hash.
        value: ValueId,
        /// `valid(v)` of the paper.
        valid: bool,
    },
}

/// Everything the core asks of the host. See the module doc for ordering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this safety state durable before sending any later broadcast.
    PersistSafetyState(SafetyState),
    /// Send this signed proposal to all validators (the block itself travels
    /// separately). Already counted locally: do not feed it back.
    BroadcastProposal(SignedProposal),
    /// Send this signed vote to all validators. Already counted locally.
    BroadcastVote(SignedVote),
    /// After `duration`, feed `Input::TimeoutElapsed { kind, height, round }`.
    ScheduleTimeout {
        /// Which timeout.
        kind: TimeoutKind,
        /// Height to report back.
        height: Height,
        /// Round to report back.
        round: Round,
        /// Delay from now.
        duration: Duration,
    },
    /// We are the proposer: build a block and answer with `Input::ValueReady`.
    RequestValue {
        /// Height to build for.
        height: Height,
        /// Round to report back.
        round: Round,
    },
    /// Fetch and execute block `value`, then answer `Input::ValueVerified`.
    VerifyValue {
        /// Height of the proposal.
        height: Height,
        /// Round of the (first) proposal carrying it.
        round: Round,
        /// The block hash.
        value: ValueId,
    },
    /// `value` is decided at `height` (L49-L51). `certificate` holds the
    /// precommits for it (more than 2/3 of the power), sorted by validator.
    /// Commit durably, then send
    /// `Input::StartHeight` for the next height.
    Decide {
        /// The decided height.
        height: Height,
        /// The round whose precommits decided it.
        round: Round,
        /// The decided block hash.
        value: ValueId,
        /// The commit certificate.
        certificate: Vec<SignedVote>,
    },
    /// A validator signed two different votes for one height, round and
    /// kind. Record it on chain.
    Evidence(DoubleSignEvidence),
}
