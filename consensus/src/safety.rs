//! Safety module: the only code that signs proposals and votes.
//!
//! It keeps the *safety state*: the last message it signed (which fixes the
//! last signed height, round and step) and the lock (the value last
//! precommitted, with its height and round). Rules, checked before signing:
//!
//! 1. Positions `(height, round, step)` only grow: a message at a lower
//!    position than the last signed one is refused.
//! 2. At the same position only the *identical* message may be signed again
//!    (the stored signed message is returned, so a re-send is byte-identical);
//!    a different one is refused.
//! 3. A precommit for a value sets the lock to it; signing at a higher height
//!    clears the lock of the old height.
//!
//! Every accepted signature that changes the state returns the new state; the
//! host must make it durable *before* sending the signed message. A validator
//! restarted from its last durable state can therefore never sign two
//! different messages for one height, round and step.

use serde::{Deserialize, Serialize};

use crate::error::ConsensusError;
use crate::types::{
    Height, Proposal, Round, SignatureScheme, SignedMessage, SignedProposal, SignedVote, Step,
    ValidatorId, ValueId, Vote, VoteKind, PROPOSAL_SIGN_TAG, VOTE_SIGN_TAG,
};

/// The value this validator last precommitted (`lockedValue_p`, `lockedRound_p`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Height of the precommit.
    pub height: Height,
    /// Round of the precommit.
    pub round: Round,
    /// The value precommitted.
    pub value: ValueId,
}

/// Durable state of the safety module. Persist it whenever a signing call
/// returns a new one, before sending the signed message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyState {
    /// The last message signed, which fixes the last signed position.
    pub last_signed: Option<SignedMessage>,
    /// The current lock, if any.
    pub lock: Option<Lock>,
}

impl SafetyState {
    /// `(height, round, step)` of the last signed message.
    pub fn last_position(&self) -> Option<(Height, Round, Step)> {
        self.last_signed.map(|m| (m.height(), m.round(), m.step()))
    }
}

/// A signature the safety module agreed to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<T> {
    /// The signed message.
    pub message: T,
    /// The new safety state to persist before sending `message`; `None` when
    /// this is a re-send of the last signed message (nothing changed).
    pub new_state: Option<SafetyState>,
}

/// Signs proposals and votes for one validator key, never conflicting ones.
#[derive(Debug)]
pub struct SafetyModule<S> {
    id: ValidatorId,
    scheme: S,
    state: SafetyState,
}

fn step_of_vote(kind: VoteKind) -> Step {
    match kind {
        VoteKind::Prevote => Step::Prevote,
        VoteKind::Precommit => Step::Precommit,
    }
}

impl<S: SignatureScheme> SafetyModule<S> {
    /// A safety module for key `id`, resumed from its last durable `state`
    /// (`SafetyState::default()` for a fresh validator).
    pub fn new(id: ValidatorId, scheme: S, state: SafetyState) -> Self {
        SafetyModule { id, scheme, state }
    }

    /// This module's validator.
    pub fn id(&self) -> ValidatorId {
        self.id
    }

    /// The current safety state.
    pub fn state(&self) -> &SafetyState {
        &self.state
    }

    /// Rules 1 and 2. `Ok(Some(m))` is the identical message signed before.
    fn check(
        &self,
        candidate: (Height, Round, Step),
        same: impl Fn(&SignedMessage) -> bool,
    ) -> Result<Option<SignedMessage>, ConsensusError> {
        let Some(last) = self.state.last_signed else {
            return Ok(None);
        };
        let last_position = (last.height(), last.round(), last.step());
        let refuse = || ConsensusError::SigningRefused {
            height: candidate.0,
            round: candidate.1,
            step: candidate.2,
            signed_height: last_position.0,
            signed_round: last_position.1,
            signed_step: last_position.2,
        };
        match candidate.cmp(&last_position) {
            std::cmp::Ordering::Greater => Ok(None),
            std::cmp::Ordering::Less => Err(refuse()),
            std::cmp::Ordering::Equal if same(&last) => Ok(Some(last)),
            std::cmp::Ordering::Equal => Err(refuse()),
        }
    }

    /// Signs `vote` if it conflicts with nothing signed before.
    pub fn sign_vote(&mut self, vote: Vote) -> Result<Signed<SignedVote>, ConsensusError> {
        if vote.validator != self.id {
            return Err(ConsensusError::WrongSigner {
                requested: vote.validator,
                ours: self.id,
            });
        }
        let position = (vote.height, vote.round, step_of_vote(vote.kind));
        let resend = self.check(
            position,
            |m| matches!(m, SignedMessage::Vote(v) if v.vote == vote),
        )?;
        if let Some(SignedMessage::Vote(previous)) = resend {
            return Ok(Signed {
                message: previous,
                new_state: None,
            });
        }
        let signature = self.scheme.sign(VOTE_SIGN_TAG, &vote.sign_bytes());
        let signed = SignedVote { vote, signature };
        self.state.last_signed = Some(SignedMessage::Vote(signed));
        if self.state.lock.is_some_and(|l| l.height < vote.height) {
            self.state.lock = None;
        }
        if let (VoteKind::Precommit, Some(value)) = (vote.kind, vote.value) {
            self.state.lock = Some(Lock {
                height: vote.height,
                round: vote.round,
                value,
            });
        }
        Ok(Signed {
            message: signed,
            new_state: Some(self.state),
        })
    }

    /// Signs `proposal` if it conflicts with nothing signed before.
    pub fn sign_proposal(
        &mut self,
        proposal: Proposal,
    ) -> Result<Signed<SignedProposal>, ConsensusError> {
        if proposal.proposer != self.id {
            return Err(ConsensusError::WrongSigner {
                requested: proposal.proposer,
                ours: self.id,
            });
        }
        let position = (proposal.height, proposal.round, Step::Propose);
        let resend = self.check(
            position,
            |m| matches!(m, SignedMessage::Proposal(p) if p.proposal == proposal),
        )?;
        if let Some(SignedMessage::Proposal(previous)) = resend {
            return Ok(Signed {
                message: previous,
                new_state: None,
            });
        }
        let signature = self.scheme.sign(PROPOSAL_SIGN_TAG, &proposal.sign_bytes());
        let signed = SignedProposal {
            proposal,
            signature,
        };
        self.state.last_signed = Some(SignedMessage::Proposal(signed));
        if self.state.lock.is_some_and(|l| l.height < proposal.height) {
            self.state.lock = None;
        }
        Ok(Signed {
            message: signed,
            new_state: Some(self.state),
        })
    }
}
