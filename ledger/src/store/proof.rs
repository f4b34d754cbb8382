//! State proofs: a key's value (or its absence) at one height, checkable offline against the
//! state root in that height's header.
//!
//! [`StateProof`] wraps jmt's sparse Merkle proof and has a canonical encoding, so it can travel
//! in decision receipts and API answers. [`verify_state_proof`] needs no store: auditors and
//! light clients call it with a root they trust (from a header whose commit certificate they
//! verified). A proof for a value proves exactly that value; a proof of absence proves the key
//! has no value; neither verifies under another root.

use jmt::proof::SparseMerkleProof;
use jmt::RootHash;
use serde::{Deserialize, Serialize};

use super::state_tree::{key_hash, StateHasher};
use crate::codec::Canonical;
use crate::hash::Hash;
use crate::LedgerError;

/// A Merkle proof for one state key at one version of the state tree.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StateProof {
    /// Siblings from the key's leaf (or empty slot) up to the root.
    inner: SparseMerkleProof<StateHasher>,
}

impl std::fmt::Debug for StateProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateProof")
            .field("leaf_present", &self.inner.leaf().is_some())
            .finish()
    }
}

impl Canonical for StateProof {
    const KIND: &'static str = "state proof";
    // At most 256 siblings of under 70 bytes each, plus a leaf.
    const MAX_BYTES: usize = 32 * 1024;
}

impl StateProof {
    pub(super) fn new(inner: SparseMerkleProof<StateHasher>) -> Self {
        StateProof { inner }
    }
}

/// Check that under `root`, `key` holds `value` (`Some`) or has no value (`None`).
pub fn verify_state_proof(
    root: Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), LedgerError> {
    proof
        .inner
        .verify(RootHash(root.0), key_hash(key), value)
        .map_err(|e| LedgerError::InvalidStateProof {
            root,
            reason: e.to_string(),
        })
}
