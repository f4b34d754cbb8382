//! Tx receipts: what executing one tx did. Receipts are part of consensus (their Merkle root
//! is in the header), so everything in them is deterministic.

use serde::{Deserialize, Serialize};

use crate::codec::Canonical;
use crate::hash::Hash;

/// The result of executing one tx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The tx this receipt is for.
    pub tx_hash: Hash,
    /// Success or the contract's typed failure.
    pub outcome: Outcome,
}

/// Success, or a rule violation with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The call was applied.
    Success {
        /// Canonical bytes of the call's result (e.g. the id of a created grant); may be empty.
        #[serde(with = "crate::codec::byte_string")]
        data: Vec<u8>,
    },
    /// The call was rejected; nothing changed but the signer's nonce.
    Failure {
        /// Stable numeric error code (never reused).
        code: u32,
        /// Stable error name, e.g. `GRANT_EXPIRED`.
        name: String,
        /// What went wrong and what to do, for a person.
        message: String,
    },
}

impl Receipt {
    /// Whether the call was applied.
    pub fn is_success(&self) -> bool {
        matches!(self.outcome, Outcome::Success { .. })
    }
}

impl Canonical for Receipt {
    const KIND: &'static str = "receipt";
    const MAX_BYTES: usize = 64 * 1024;
}
