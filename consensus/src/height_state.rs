//! The variables of Algorithm 1 for the current height (`round_p`, `step_p`,
//! `lockedValue_p`/`lockedRound_p`, `validValue_p`/`validRound_p`) and the
//! height's message log (proposals, validity answers, votes).
//!
//! Invariants: everything here belongs to `height` and is dropped when the
//! next height starts (L53); stored proposals come from the round's proposer
//! and carry a verified signature; `validity` holds only host answers (or our
//! own proposals, which the host built).

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{Height, Round, SignedProposal, Step, ValueId};
use crate::validator_set::ValidatorSet;
use crate::vote_keeper::VoteKeeper;

/// State of one height.
#[derive(Debug)]
pub(crate) struct HeightState {
    pub height: Height,
    pub validators: ValidatorSet,
    /// `round_p`.
    pub round: Round,
    /// `step_p`, plus `Commit` once decided.
    pub step: Step,
    /// `(lockedRound_p, lockedValue_p)`.
    pub locked: Option<(Round, ValueId)>,
    /// `(validRound_p, validValue_p)`.
    pub valid: Option<(Round, ValueId)>,
    /// Proposals per round, in arrival order.
    pub proposals: BTreeMap<Round, Vec<SignedProposal>>,
    /// `valid(v)` answers from the host.
    pub validity: BTreeMap<ValueId, bool>,
    /// Values for which `VerifyValue` was emitted.
    pub verification_requested: BTreeSet<ValueId>,
    /// Vote tallies of this height.
    pub votes: VoteKeeper,
    /// L34 fired in the current round.
    pub prevote_timeout_scheduled: bool,
    /// L47 fired in the current round.
    pub precommit_timeout_scheduled: bool,
    /// L36 fired in the current round.
    pub polka_handled: bool,
    /// We asked the host for a value in the current round (L18).
    pub value_requested: bool,
}

impl HeightState {
    pub fn new(height: Height, validators: ValidatorSet) -> Self {
        HeightState {
            height,
            validators,
            round: Round(0),
            step: Step::Propose,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            verification_requested: BTreeSet::new(),
            votes: VoteKeeper::new(),
            prevote_timeout_scheduled: false,
            precommit_timeout_scheduled: false,
            polka_handled: false,
            value_requested: false,
        }
    }

    /// L12-L13 and the per-round "first time" flags.
    pub fn enter_round(&mut self, round: Round) {
        self.round = round;
        self.step = Step::Propose;
        self.prevote_timeout_scheduled = false;
        self.precommit_timeout_scheduled = false;
        self.polka_handled = false;
        self.value_requested = false;
    }

    /// Stores a proposal unless the same proposal is already stored.
    pub fn store_proposal(&mut self, proposal: SignedProposal) -> bool {
        let list = self.proposals.entry(proposal.proposal.round).or_default();
        if list.iter().any(|p| p.proposal == proposal.proposal) {
            return false;
        }
        list.push(proposal);
        true
    }

    /// Proposals of `round` (cloned, so rules can mutate state while iterating).
    pub fn proposals_in(&self, round: Round) -> Vec<SignedProposal> {
        self.proposals.get(&round).cloned().unwrap_or_default()
    }

    /// `valid(v)` if the host has answered.
    pub fn is_valid(&self, value: &ValueId) -> Option<bool> {
        self.validity.get(value).copied()
    }
}
