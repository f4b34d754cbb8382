//! Transactions: a signer's nonce-ordered, chain-bound, signed contract call.
//!
//! The ledger treats the call as opaque canonical bytes (the contracts crate decodes it), so
//! this crate never depends on contract types. A tx is identified by the hash of its full
//! canonical encoding (body and signature).

use serde::{Deserialize, Serialize};

use crate::codec::Canonical;
use crate::crypto::{self, Keypair, PublicKey, Signature, SignedMessage};
use crate::hash::{tags, Hash};
use crate::LedgerError;

/// Largest accepted tx encoding, in bytes.
pub const MAX_TX_BYTES: usize = 64 * 1024;

/// What a tx signer signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBody {
    /// The chain this tx is for; a tx for another chain is rejected.
    pub chain_id: String,
    /// Who signs (an organisation's operator key).
    pub signer: PublicKey,
    /// Strictly increasing per signer, starting at 1: replay protection.
    pub nonce: u64,
    /// Canonical bytes of one contract call.
    #[serde(with = "crate::codec::byte_string")]
    pub call: Vec<u8>,
}

impl Canonical for TxBody {
    const KIND: &'static str = "tx body";
    const MAX_BYTES: usize = MAX_TX_BYTES;
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The signed content.
    pub body: TxBody,
    /// ed25519 signature over `chain_id ‖ gongzhi/tx/v1 ‖ body`.
    pub signature: Signature,
}

impl Canonical for Tx {
    const KIND: &'static str = "tx";
    const MAX_BYTES: usize = MAX_TX_BYTES;
}

impl Tx {
    /// Build and sign a tx.
    pub fn sign(key: &Keypair, chain_id: &str, nonce: u64, call: Vec<u8>) -> Tx {
        let body = TxBody {
            chain_id: chain_id.to_string(),
            signer: key.public(),
            nonce,
            call,
        };
        let signature = key.sign(chain_id, tags::TX, &body.encode());
        Tx { body, signature }
    }

    /// The tx hash: blake3 under `gongzhi/tx/v1` of the full canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::TX, &self.encode())
    }

    /// Check the chain id, then the signature.
    pub fn verify(&self, chain_id: &str) -> Result<(), LedgerError> {
        self.check_chain(chain_id)?;
        crypto::verify(
            chain_id,
            tags::TX,
            &self.body.encode(),
            &self.body.signer,
            &self.signature,
        )
    }

    /// Check only that the tx is for `chain_id`.
    pub fn check_chain(&self, chain_id: &str) -> Result<(), LedgerError> {
        if self.body.chain_id != chain_id {
            return Err(LedgerError::WrongChainId {
                expected: chain_id.to_string(),
                found: self.body.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// The signed message, for batch verification (the caller checks the chain id first).
    pub fn signed_message(&self) -> SignedMessage {
        SignedMessage {
            signer: self.body.signer,
            message: crypto::signing_message(&self.body.chain_id, tags::TX, &self.body.encode()),
            signature: self.signature,
        }
    }
}

/// Verify the chain id of every tx, then all signatures in one batch.
pub fn verify_txs(chain_id: &str, txs: &[Tx]) -> Result<(), LedgerError> {
    verify_txs_except(chain_id, txs, |_, _| false)
}

/// [`verify_txs`], skipping the signatures of txs for which `verified(index, tx)` is true: txs whose
/// signature this process already checked for `chain_id` (a node's mempool admits a tx only after
/// checking it, keyed by the tx hash, which covers the signature). Skipping them cannot change
/// the verdict: a signature that passed [`crypto::verify`] or a batch satisfies the batch
/// equation on its own, so it passes every later batch too. Chain ids are checked for all txs; a
/// bad signature is named by its index in `txs`.
pub fn verify_txs_except(
    chain_id: &str,
    txs: &[Tx],
    verified: impl Fn(usize, &Tx) -> bool,
) -> Result<(), LedgerError> {
    for tx in txs {
        tx.check_chain(chain_id)?;
    }
    let unverified: Vec<usize> = (0..txs.len()).filter(|&i| !verified(i, &txs[i])).collect();
    let items: Vec<SignedMessage> = unverified
        .iter()
        .map(|&i| txs[i].signed_message())
        .collect();
    crypto::verify_batch(&items).map_err(|e| match e {
        LedgerError::BadSignatureInBatch { index, signer } => LedgerError::BadSignatureInBatch {
            index: unverified.get(index).copied().unwrap_or(index),
            signer,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(count: u8) -> Vec<Tx> {
        (0..count)
            .map(|i| Tx::sign(&Keypair::from_secret([i + 1; 32]), "c", 1, vec![i]))
            .collect()
    }

    #[test]
    fn skipping_verified_txs_names_a_bad_one_by_its_block_index() {
        let mut txs = signed(5);
        txs[3].signature.0[40] ^= 1;
        assert!(verify_txs("c", &txs).is_err());
        let first_two = |index: usize, _: &Tx| index < 2;
        match verify_txs_except("c", &txs, first_two) {
            Err(LedgerError::BadSignatureInBatch { index, signer }) => {
                assert_eq!((index, signer), (3, txs[3].body.signer));
            }
            other => panic!("expected tx 3 to be named, got {other:?}"),
        }
        // The caller's word is taken for the txs it says it checked.
        assert!(verify_txs_except("c", &txs, |_, tx| tx.body.call[0] == 3).is_ok());
        // Chain ids are checked for every tx, checked signature or not.
        let mut other_chain = signed(2);
        other_chain[1].body.chain_id = "d".into();
        assert!(matches!(
            verify_txs_except("c", &other_chain, |_, _| true),
            Err(LedgerError::WrongChainId { .. })
        ));
    }
}
