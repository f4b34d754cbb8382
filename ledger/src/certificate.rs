//! Commit certificates: the finality proof of a block.
//!
//! A certificate holds precommit signatures for one block hash at one (height, round). It is
//! valid for a validator set when every signer is in the set, no signer appears twice, every
//! signature verifies over the consensus vote's sign bytes, and the signers hold more than
//! 2/3 of the set's power. Block + certificate + validator set is a self-contained proof.

use serde::{Deserialize, Serialize};

use gongzhi_consensus::{
    Height, Round, ValidatorId, ValidatorSet, ValueId, Vote, VoteKind, VOTE_SIGN_TAG,
};

use crate::codec::{self, Canonical};
use crate::crypto::{self, PublicKey, Signature, SignedMessage};
use crate::hash::{tags, Hash};
use crate::LedgerError;

/// One validator's precommit signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSignature {
    /// The validator's consensus key.
    pub validator: PublicKey,
    /// Its signature over the precommit for the certified block.
    pub signature: Signature,
}

/// Precommits of more than 2/3 of the voting power for one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height of the certified block.
    pub height: u64,
    /// Round in which it was decided.
    pub round: u32,
    /// Hash of the certified block.
    pub block_hash: Hash,
    /// Precommit signatures, sorted by validator key.
    pub signatures: Vec<CommitSignature>,
}

impl Canonical for CommitCertificate {
    const KIND: &'static str = "commit certificate";
    const MAX_BYTES: usize = 1024 * 1024;
}

/// Hash of a validator set's canonical encoding.
pub fn validator_set_hash(set: &ValidatorSet) -> Hash {
    Hash::tagged(tags::VALIDATOR_SET, &codec::to_bytes(set))
}

impl CommitCertificate {
    /// The certificate hash (committed to by the next block's header).
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::COMMIT, &self.encode())
    }

    /// The consensus precommit that `validator` signed for this certificate.
    pub fn precommit_for(&self, validator: &PublicKey) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height: Height(self.height),
            round: Round(self.round),
            value: Some(ValueId(self.block_hash.0)),
            validator: ValidatorId(validator.0),
        }
    }

    /// The signed messages of this certificate, for batching across many certificates.
    pub fn signed_messages(&self, chain_id: &str) -> Vec<SignedMessage> {
        self.signatures
            .iter()
            .map(|s| SignedMessage {
                signer: s.validator,
                message: crypto::signing_message(
                    chain_id,
                    VOTE_SIGN_TAG,
                    &self.precommit_for(&s.validator).sign_bytes(),
                ),
                signature: s.signature,
            })
            .collect()
    }

    /// Check membership, duplicates and the 2/3 threshold, without checking signatures.
    /// Returns the signed power.
    pub fn check_quorum(&self, set: &ValidatorSet) -> Result<u64, LedgerError> {
        let invalid = |reason: String| LedgerError::InvalidCertificate {
            height: self.height,
            reason,
        };
        let mut signed_power: u64 = 0;
        let mut previous: Option<&PublicKey> = None;
        for sig in &self.signatures {
            if previous.is_some_and(|p| p >= &sig.validator) {
                return Err(invalid(format!(
                    "signatures not sorted by validator or {} appears twice",
                    sig.validator
                )));
            }
            previous = Some(&sig.validator);
            let validator = set.get(&ValidatorId(sig.validator.0)).ok_or_else(|| {
                invalid(format!(
                    "signer {} is not in the validator set",
                    sig.validator
                ))
            })?;
            signed_power = signed_power.saturating_add(validator.power);
        }
        let total = set.total_power();
        if u128::from(signed_power) * 3 <= u128::from(total) * 2 {
            return Err(invalid(format!(
                "signers hold {signed_power} of {total} voting power; more than 2/3 is required"
            )));
        }
        Ok(signed_power)
    }

    /// Full verification against the validator set in force at this height.
    pub fn verify(&self, chain_id: &str, set: &ValidatorSet) -> Result<(), LedgerError> {
        self.check_quorum(set)?;
        crypto::verify_batch(&self.signed_messages(chain_id)).map_err(|e| {
            LedgerError::InvalidCertificate {
                height: self.height,
                reason: e.to_string(),
            }
        })
    }
}
