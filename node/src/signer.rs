//! ed25519 for the consensus core: the local validator key and verification of peers'
//! proposals and votes, both over `chain_id ‖ tag ‖ bytes` (the ledger's signing rule), so a
//! vote from one chain is worthless on another.

use gongzhi_consensus::{Signature, SignatureScheme, SignatureVerifier, ValidatorId};
use gongzhi_ledger::crypto;
use gongzhi_ledger::{Keypair, PublicKey};

/// The node's validator key, bound to a chain.
#[derive(Debug, Clone)]
pub struct ChainSigner {
    chain_id: String,
    key: Keypair,
}

impl ChainSigner {
    /// Sign for `chain_id` with `key`.
    pub fn new(chain_id: &str, key: Keypair) -> ChainSigner {
        ChainSigner {
            chain_id: chain_id.to_string(),
            key,
        }
    }

    /// The validator identity of this key.
    pub fn validator_id(&self) -> ValidatorId {
        ValidatorId(self.key.public().0)
    }
}

impl SignatureScheme for ChainSigner {
    fn sign(&self, tag: &str, bytes: &[u8]) -> Signature {
        Signature(self.key.sign(&self.chain_id, tag, bytes).0)
    }
}

/// Verifies any validator's consensus signatures on one chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    chain_id: String,
}

impl ChainVerifier {
    /// Verify for `chain_id`.
    pub fn new(chain_id: &str) -> ChainVerifier {
        ChainVerifier {
            chain_id: chain_id.to_string(),
        }
    }
}

impl SignatureVerifier for ChainVerifier {
    fn verify(&self, signer: &ValidatorId, tag: &str, bytes: &[u8], sig: &Signature) -> bool {
        crypto::verify(
            &self.chain_id,
            tag,
            bytes,
            &PublicKey(signer.0),
            &gongzhi_ledger::Signature(sig.0),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_bound_to_the_chain() {
        let signer = ChainSigner::new("a", Keypair::from_secret([1; 32]));
        let sig = signer.sign("gongzhi/vote/v1", b"vote");
        let id = signer.validator_id();
        assert!(ChainVerifier::new("a").verify(&id, "gongzhi/vote/v1", b"vote", &sig));
        assert!(!ChainVerifier::new("b").verify(&id, "gongzhi/vote/v1", b"vote", &sig));
    }
}
