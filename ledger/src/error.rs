//! The ledger's one error type. Every variant carries what a reader needs to act on it.

use crate::crypto::PublicKey;
use crate::hash::Hash;

/// Everything that can go wrong decoding, verifying or storing chain data.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Bytes that do not decode as the expected object.
    #[error("malformed {kind}: {reason}")]
    Malformed {
        /// Object kind ("tx", "block", …).
        kind: &'static str,
        /// What the decoder found wrong.
        reason: String,
    },
    /// A valid object followed by extra bytes.
    #[error("malformed {kind}: {count} trailing byte(s) after the value")]
    TrailingBytes {
        /// Object kind.
        kind: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// Input over the size limit for its kind.
    #[error("{kind} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Object kind.
        kind: &'static str,
        /// Size seen.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// An encoding version this build does not understand.
    #[error("{kind} has encoding version {found}; this node supports version {supported} (upgrade the node?)")]
    UnknownVersion {
        /// Object kind.
        kind: &'static str,
        /// Version byte found.
        found: u8,
        /// Version this build writes.
        supported: u8,
    },
    /// A public key that is not valid.
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    /// A signature that does not verify for the claimed signer.
    #[error("signature by {signer} does not verify")]
    BadSignature {
        /// Claimed signer.
        signer: PublicKey,
    },
    /// The first failing signature in a batch.
    #[error("signature #{index} (by {signer}) in the batch does not verify")]
    BadSignatureInBatch {
        /// Position in the batch.
        index: usize,
        /// Claimed signer.
        signer: PublicKey,
    },
    /// An object made for another chain.
    #[error("wrong chain id: expected {expected:?}, found {found:?}")]
    WrongChainId {
        /// This node's chain id.
        expected: String,
        /// The object's chain id.
        found: String,
    },
    /// A block whose contents disagree with its header or its predecessor.
    #[error("block {height}: {field} mismatch (header says {expected}, computed {found})")]
    BlockMismatch {
        /// Block height.
        height: u64,
        /// Which field disagrees.
        field: &'static str,
        /// What the header (or chain) says.
        expected: Hash,
        /// What was computed.
        found: Hash,
    },
    /// A structurally invalid block.
    #[error("invalid block {height}: {reason}")]
    InvalidBlock {
        /// Block height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// A commit certificate that does not prove finality.
    #[error("invalid commit certificate for height {height}: {reason}")]
    InvalidCertificate {
        /// Height the certificate claims.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// A key file that cannot be used.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The storage engine failed (disk full, permissions, …).
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data that fails its own checks.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A block committed out of order.
    #[error("cannot commit height {found}: the store expects height {expected}")]
    HeightGap {
        /// The next height the store can take.
        expected: u64,
        /// The height offered.
        found: u64,
    },
    /// A height that is not (or no longer) stored.
    #[error("height {height} is not available (store holds {lowest}..={latest})")]
    HeightUnavailable {
        /// Requested height.
        height: u64,
        /// Lowest stored height.
        lowest: u64,
        /// Latest stored height.
        latest: u64,
    },
    /// A store that holds another chain's genesis than the one offered.
    #[error(
        "store already holds chain {stored_chain_id:?} with genesis {stored_hash}; refusing genesis \
         {offered_hash} of chain {offered_chain_id:?} (wrong --home directory?)"
    )]
    GenesisMismatch {
        /// Chain id in the store.
        stored_chain_id: String,
        /// Genesis hash in the store.
        stored_hash: Hash,
        /// Chain id offered.
        offered_chain_id: String,
        /// Genesis hash offered.
        offered_hash: Hash,
    },
    /// A store with no genesis yet, asked for chain data.
    #[error("store has no genesis yet; initialise it with the chain's genesis first")]
    NotInitialised,
    /// A prepared state change computed on another parent than the store's latest state.
    #[error(
        "prepared state is for height {prepared_height} on root {prepared_parent}, but the store \
         is at height {latest_height} with root {latest_root}; prepare again"
    )]
    StalePreparedState {
        /// Height the state was prepared for.
        prepared_height: u64,
        /// Root it was prepared on.
        prepared_parent: Hash,
        /// The store's latest height.
        latest_height: u64,
        /// The store's latest root.
        latest_root: Hash,
    },
    /// A state proof that does not prove the claimed value (or absence) under the root.
    #[error("state proof does not verify against root {root}: {reason}")]
    InvalidStateProof {
        /// The trusted root.
        root: Hash,
        /// What failed.
        reason: String,
    },
}

#[cfg(feature = "store")]
impl From<rocksdb::Error> for LedgerError {
    fn from(e: rocksdb::Error) -> Self {
        LedgerError::Storage(e.into_string())
    }
}
