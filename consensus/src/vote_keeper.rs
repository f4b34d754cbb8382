//! Vote keeper: the weighted tallies of one height, per round and vote kind.
//!
//! Invariants:
//! - Per (round, kind), each validator counts at most once in the *any*
//!   total (its first vote) and at most once for each *value* it signed. A
//!   later, different vote from it for the same (round, kind) is an
//!   equivocation, returned once as [`DoubleSignEvidence`]; it still counts
//!   for its own value, because the rules "2f+1 ⟨PREVOTE/PRECOMMIT, v⟩" are
//!   about distinct signers of that message: 2f+1 signers of v include f+1
//!   correct ones whatever else the faulty ones signed. Counting only first
//!   votes would let an equivocator hide a valid commit from a node that saw
//!   its other vote first. At most [`MAX_VALUES_PER_SIGNER`] distinct values
//!   per signer, round and kind are kept.
//! - Tallies are sums of the power of counted votes; the caller passes the
//!   power from the height's validator set and has verified the signature.
//! - `message_senders` remembers who sent *any* message (vote or proposal) per
//!   round, for the f+1 round-skip rule (L55).
//! - Memory is bounded by the caller (see `Consensus`'s future-round quota):
//!   at most one vote per validator, kind and stored round.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::types::{Round, SignedVote, ValidatorId, ValueId, VoteKind};

/// Two votes by the same validator, same height, round and kind, for
/// different values: proof of equivocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DoubleSignEvidence {
    /// The vote counted first.
    pub first: SignedVote,
    /// The conflicting vote seen later.
    pub second: SignedVote,
}

/// What [`VoteKeeper::add_vote`] did with a vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddVoteOutcome {
    /// Counted.
    Added,
    /// Already had this exact vote; nothing changed.
    Duplicate,
    /// Conflicts with a vote seen before; first time for this (validator,
    /// round, kind). Counted for its own value (within the per-signer bound).
    Equivocation(Box<DoubleSignEvidence>),
    /// Conflicts with a vote seen before; evidence was already returned.
    EquivocationAlreadyReported,
}

/// Distinct values kept per signer, round and kind (first vote included).
pub const MAX_VALUES_PER_SIGNER: usize = 3;

#[derive(Clone, Debug, Default)]
struct Tally {
    /// Per signer: its first vote, then conflicting ones (distinct values).
    votes: BTreeMap<ValidatorId, Vec<SignedVote>>,
    power_by_value: BTreeMap<Option<ValueId>, u64>,
    total: u64,
}

#[derive(Clone, Debug, Default)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
    message_senders: BTreeMap<ValidatorId, u64>,
}

impl RoundVotes {
    fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }
    fn tally_mut(&mut self, kind: VoteKind) -> &mut Tally {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}

/// Weighted vote tallies for one height.
#[derive(Clone, Debug, Default)]
pub struct VoteKeeper {
    rounds: BTreeMap<Round, RoundVotes>,
    reported: BTreeSet<(ValidatorId, Round, VoteKind)>,
}

impl VoteKeeper {
    /// An empty keeper.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a verified vote with its signer's `power`.
    pub fn add_vote(&mut self, vote: SignedVote, power: u64) -> AddVoteOutcome {
        let v = vote.vote;
        let round_votes = self.rounds.entry(v.round).or_default();
        let tally = round_votes.tally_mut(v.kind);
        if let Some(signed) = tally.votes.get_mut(&v.validator) {
            if signed.iter().any(|s| s.vote == v) {
                return AddVoteOutcome::Duplicate;
            }
            let first = signed[0];
            if signed.len() < MAX_VALUES_PER_SIGNER {
                signed.push(vote);
                *tally.power_by_value.entry(v.value).or_insert(0) += power;
            }
            if self.reported.insert((v.validator, v.round, v.kind)) {
                return AddVoteOutcome::Equivocation(Box::new(DoubleSignEvidence {
                    first,
                    second: vote,
                }));
            }
            return AddVoteOutcome::EquivocationAlreadyReported;
        }
        tally.votes.insert(v.validator, vec![vote]);
        *tally.power_by_value.entry(v.value).or_insert(0) += power;
        tally.total += power;
        round_votes.message_senders.insert(v.validator, power);
        AddVoteOutcome::Added
    }

    /// Records that `validator` sent a (verified) proposal in `round`.
    pub fn record_proposal_sender(&mut self, round: Round, validator: ValidatorId, power: u64) {
        self.rounds
            .entry(round)
            .or_default()
            .message_senders
            .insert(validator, power);
    }

    /// Power of `kind` votes for `value` (None = nil) in `round`.
    pub fn power_for(&self, round: Round, kind: VoteKind, value: Option<ValueId>) -> u64 {
        self.rounds
            .get(&round)
            .and_then(|r| r.tally(kind).power_by_value.get(&value).copied())
            .unwrap_or(0)
    }

    /// Power of all `kind` votes in `round`, whatever their value.
    pub fn power_any(&self, round: Round, kind: VoteKind) -> u64 {
        self.rounds.get(&round).map_or(0, |r| r.tally(kind).total)
    }

    /// Power of distinct validators that sent any message in `round`.
    pub fn sender_power(&self, round: Round) -> u64 {
        self.rounds
            .get(&round)
            .map_or(0, |r| r.message_senders.values().sum())
    }

    /// Rounds strictly above `round` in which some message was recorded.
    pub fn rounds_above(&self, round: Round) -> impl Iterator<Item = Round> + '_ {
        self.rounds
            .range(round.next()..)
            .filter(move |_| round.0 < u32::MAX)
            .map(|(r, _)| *r)
    }

    /// Number of distinct rounds above `round` in which `validator` sent something.
    pub fn rounds_above_with_sender(&self, round: Round, validator: &ValidatorId) -> usize {
        self.rounds
            .range(round.next()..)
            .filter(|(r, votes)| **r > round && votes.message_senders.contains_key(validator))
            .count()
    }

    /// True iff `validator` already sent something in `round`.
    pub fn has_sender(&self, round: Round, validator: &ValidatorId) -> bool {
        self.rounds
            .get(&round)
            .is_some_and(|r| r.message_senders.contains_key(validator))
    }

    /// The counted `kind` votes for `value` in `round`, sorted by validator.
    pub fn votes_for(
        &self,
        round: Round,
        kind: VoteKind,
        value: Option<ValueId>,
    ) -> Vec<SignedVote> {
        self.rounds.get(&round).map_or_else(Vec::new, |r| {
            r.tally(kind)
                .votes
                .values()
                .flatten()
                .filter(|v| v.vote.value == value)
                .copied()
                .collect()
        })
    }

    /// True iff exactly this vote is counted.
    pub fn contains(&self, vote: &SignedVote) -> bool {
        self.rounds.get(&vote.vote.round).is_some_and(|r| {
            r.tally(vote.vote.kind)
                .votes
                .get(&vote.vote.validator)
                .is_some_and(|votes| votes.contains(vote))
        })
    }
}
