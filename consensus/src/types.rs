//! Protocol data types: heights, rounds, identifiers, votes, proposals and the
//! host-supplied signing traits.
//!
//! Invariants:
//! - The canonical bytes that are signed are `postcard::to_stdvec(message)`, with
//!   fields in declaration order; the domain tag is passed next to them
//!   ([`VOTE_SIGN_TAG`], [`PROPOSAL_SIGN_TAG`]), never inside them.
//! - A [`Signature`] is exactly 64 bytes, also when decoded.
//! - The core does no cryptography: it calls [`SignatureVerifier`] at its edge
//!   and signs only through the safety module's [`SignatureScheme`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Domain tag for vote signatures.
pub const VOTE_SIGN_TAG: &str = "gongzhi/vote/v1";
/// Domain tag for proposal signatures.
pub const PROPOSAL_SIGN_TAG: &str = "gongzhi/proposal/v1";

/// Block height. Height 0 is genesis; consensus runs from height 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Height(pub u64);

impl Height {
    /// The next height.
    pub fn next(self) -> Height {
        Height(self.0.saturating_add(1))
    }
}

/// Round within a height. "No round" (the paper's -1) is `Option<Round>::None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Round(pub u32);

impl Round {
    /// The next round.
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }
}

/// A proposed value: the hash of a block.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ValueId(pub [u8; 32]);

/// A validator identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ValidatorId(pub [u8; 32]);

fn short_hex(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    write!(f, "{name}(")?;
    for b in bytes.iter().take(4) {
        write!(f, "{b:02x}")?;
    }
    write!(f, "…)")
}

impl fmt::Debug for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "ValueId", &self.0)
    }
}

impl fmt::Debug for ValidatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "ValidatorId", &self.0)
    }
}

/// A 64-byte signature. Serialised as a byte string of exactly 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(f, "Signature", &self.0)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SignatureVisitor;
        impl<'de> serde::de::Visitor<'de> for SignatureVisitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string of exactly 64 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let bytes: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(bytes))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Signature, E> {
                self.visit_bytes(&v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, slot) in bytes.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(65, &self));
                }
                Ok(Signature(bytes))
            }
        }
        deserializer.deserialize_bytes(SignatureVisitor)
    }
}

/// The two vote types of Algorithm 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// First voting step.
    Prevote,
    /// Second voting step; >2/3 of these for one value decide it.
    Precommit,
}

/// A vote. `value == None` is a vote for nil.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height voted at.
    pub height: Height,
    /// Round voted at.
    pub round: Round,
    /// The value voted for, or nil.
    pub value: Option<ValueId>,
    /// The signer.
    pub validator: ValidatorId,
}

/// Canonical encoding of a plain serde struct into a `Vec`. Serialising these
/// types cannot fail (no maps, no custom errors, growable output).
fn canonical_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

impl Vote {
    /// Canonical bytes covered by the signature (with [`VOTE_SIGN_TAG`]).
    pub fn sign_bytes(&self) -> Vec<u8> {
        canonical_bytes(self)
    }
}

/// A vote with its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Signature by `vote.validator` over `VOTE_SIGN_TAG` and `vote.sign_bytes()`.
    pub signature: Signature,
}

impl SignedVote {
    /// Checks the signature through the host's verifier.
    pub fn verify(&self, verifier: &dyn SignatureVerifier) -> bool {
        verifier.verify(
            &self.vote.validator,
            VOTE_SIGN_TAG,
            &self.vote.sign_bytes(),
            &self.signature,
        )
    }
}

/// A proposal. `pol_round` is the paper's `validRound` (None = -1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Proposal {
    /// Height proposed at.
    pub height: Height,
    /// Round proposed at.
    pub round: Round,
    /// The proposed value (block hash).
    pub value: ValueId,
    /// Round of the proof-of-lock for `value`, if re-proposed.
    pub pol_round: Option<Round>,
    /// The signer; must be the round's proposer.
    pub proposer: ValidatorId,
}

impl Proposal {
    /// Canonical bytes covered by the signature (with [`PROPOSAL_SIGN_TAG`]).
    pub fn sign_bytes(&self) -> Vec<u8> {
        canonical_bytes(self)
    }
}

/// A proposal with its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Signature by `proposal.proposer` over `PROPOSAL_SIGN_TAG` and `proposal.sign_bytes()`.
    pub signature: Signature,
}

impl SignedProposal {
    /// Checks the signature through the host's verifier.
    pub fn verify(&self, verifier: &dyn SignatureVerifier) -> bool {
        verifier.verify(
            &self.proposal.proposer,
            PROPOSAL_SIGN_TAG,
            &self.proposal.sign_bytes(),
            &self.signature,
        )
    }
}

/// A consensus message as it travels between validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SignedMessage {
    /// A signed proposal.
    Proposal(SignedProposal),
    /// A signed vote.
    Vote(SignedVote),
}

impl SignedMessage {
    /// Height of the message.
    pub fn height(&self) -> Height {
        match self {
            SignedMessage::Proposal(p) => p.proposal.height,
            SignedMessage::Vote(v) => v.vote.height,
        }
    }
    /// Round of the message.
    pub fn round(&self) -> Round {
        match self {
            SignedMessage::Proposal(p) => p.proposal.round,
            SignedMessage::Vote(v) => v.vote.round,
        }
    }
    /// The signer.
    pub fn signer(&self) -> ValidatorId {
        match self {
            SignedMessage::Proposal(p) => p.proposal.proposer,
            SignedMessage::Vote(v) => v.vote.validator,
        }
    }
    /// The step of Algorithm 1 the message belongs to.
    pub fn step(&self) -> Step {
        match self {
            SignedMessage::Proposal(_) => Step::Propose,
            SignedMessage::Vote(v) => match v.vote.kind {
                VoteKind::Prevote => Step::Prevote,
                VoteKind::Precommit => Step::Precommit,
            },
        }
    }
}

/// The step within a round (`step_p`), ordered as in the paper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Waiting for (or building) the round's proposal.
    Propose,
    /// Prevoted; waiting for a prevote quorum.
    Prevote,
    /// Precommitted; waiting for a precommit quorum.
    Precommit,
    /// Decided this height; waiting for the host's next `StartHeight`.
    Commit,
}

/// The local validator's signing key, implemented by the host.
///
/// Only the safety module calls it. The node signs `chain_id ‖ tag ‖ bytes`.
pub trait SignatureScheme {
    /// Signs `bytes` under the domain `tag`.
    fn sign(&self, tag: &str, bytes: &[u8]) -> Signature;
}

/// Signature verification for any validator, implemented by the host.
pub trait SignatureVerifier {
    /// True iff `sig` is `signer`'s signature over `tag` and `bytes`.
    fn verify(&self, signer: &ValidatorId, tag: &str, bytes: &[u8], sig: &Signature) -> bool;
}
