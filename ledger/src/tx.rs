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
    for tx in txs {
        tx.check_chain(chain_id)?;
    }
    let items: Vec<SignedMessage> = txs.iter().map(Tx::signed_message).collect();
    crypto::verify_batch(&items)
}
