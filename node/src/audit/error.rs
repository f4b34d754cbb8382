//! What a replay can find wrong, one variant per kind of discrepancy.
//!
//! Every variant carries the height (and tx index where there is one) and both sides of the
//! comparison, and its message says what the discrepancy means and what to do, so an auditor
//! can act on it without reading code. Replay stops at the first one, in chain order.

use gongzhi_ledger::{Hash, PublicKey, Timestamp};

use super::format::FormatError;

/// The first discrepancy a replay found, or why it could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file is malformed (see [`FormatError`]).
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The genesis document does not validate.
    #[error("the export's genesis is invalid: {reason}")]
    InvalidGenesis {
        /// The validation problems.
        reason: String,
    },
    /// The genesis is not the one the caller trusts.
    #[error("the export's genesis hashes to {found}, but the trusted genesis is {expected}: this export is of another chain or its genesis was replaced")]
    UntrustedGenesis {
        /// Trusted hash.
        expected: Hash,
        /// Hash of the file's genesis.
        found: Hash,
    },
    /// Block 1 does not follow the file's genesis.
    #[error("block 1 follows genesis {block_prev}, but the export's genesis hashes to {genesis}: the genesis in the file is not the one this chain started from")]
    GenesisMismatch {
        /// `prev_block_hash` of block 1.
        block_prev: Hash,
        /// Hash of the file's genesis.
        genesis: Hash,
    },
    /// A block record is not the next height.
    #[error("expected block {expected} next, found block {found}: blocks are missing, duplicated or out of order in the export")]
    HeightGap {
        /// The height that should come next.
        expected: u64,
        /// The height found.
        found: u64,
    },
    /// A block does not link to its predecessor.
    #[error("block {height} names {found} as its previous block, but block {} hashes to {expected}: the chain is broken here", height - 1)]
    BrokenLink {
        /// Height of the block.
        height: u64,
        /// Hash of the previous block as replayed.
        expected: Hash,
        /// `prev_block_hash` in the header.
        found: Hash,
    },
    /// A block is for another chain.
    #[error("block {height} is for chain {found:?}, the export's genesis is for {expected:?}")]
    WrongChain {
        /// Height.
        height: u64,
        /// Chain of the genesis.
        expected: String,
        /// Chain in the header.
        found: String,
    },
    /// The certificate certifies another block (often: the header was altered after commit).
    #[error("block {height} hashes to {block_hash}, but its commit certificate is for height {certified_height} block {certified_hash}: the header was altered or the certificate belongs to another block")]
    CertificateWrongBlock {
        /// Height of the block.
        height: u64,
        /// Hash of the block as found.
        block_hash: Hash,
        /// Height in the certificate.
        certified_height: u64,
        /// Block hash in the certificate.
        certified_hash: Hash,
    },
    /// Certificate signers hold 2/3 or less of the power.
    #[error("{what} of block {height} has signatures of {signed_power} of {total_power} voting power; more than 2/3 is required, so the block is not proven final")]
    CertificateShort {
        /// Certified height.
        height: u64,
        /// Which certificate.
        what: &'static str,
        /// Power of the valid signers.
        signed_power: u64,
        /// Power of the validator set in force.
        total_power: u64,
    },
    /// A certificate signer is not in the validator set in force.
    #[error("{what} of block {height} is signed by {signer}, which is not a validator at that height (validators: {validators})")]
    CertificateSignerNotValidator {
        /// Certified height.
        height: u64,
        /// Which certificate.
        what: &'static str,
        /// The outsider.
        signer: PublicKey,
        /// The validator keys in force, abbreviated.
        validators: String,
    },
    /// A certificate lists a signer twice or out of order.
    #[error("{what} of block {height} lists {signer} twice or out of key order")]
    CertificateDuplicateSigner {
        /// Certified height.
        height: u64,
        /// Which certificate.
        what: &'static str,
        /// The signer.
        signer: PublicKey,
    },
    /// A certificate signature does not verify.
    #[error("{what} of block {height}: the precommit signature of validator {signer} does not verify (the certificate was altered)")]
    CertificateBadSignature {
        /// Certified height.
        height: u64,
        /// Which certificate.
        what: &'static str,
        /// The signer.
        signer: PublicKey,
    },
    /// A tx signature does not verify.
    #[error("block {height} tx #{tx_index} (hash {tx_hash}, signer {signer}): the signature does not verify — the tx or its signature was altered")]
    TxBadSignature {
        /// Height.
        height: u64,
        /// Index in the block.
        tx_index: usize,
        /// Hash of the tx as found.
        tx_hash: Hash,
        /// Claimed signer.
        signer: PublicKey,
    },
    /// A tx is for another chain.
    #[error("block {height} tx #{tx_index} is for chain {found:?}; this chain is {expected:?}")]
    TxWrongChain {
        /// Height.
        height: u64,
        /// Index in the block.
        tx_index: usize,
        /// This chain.
        expected: String,
        /// The tx's chain.
        found: String,
    },
    /// A header field disagrees with the block's content or the replayed state.
    #[error("block {height}: header {field} is {header}, but {source_of_truth} gives {replayed}")]
    HeaderMismatch {
        /// Height.
        height: u64,
        /// Field name.
        field: &'static str,
        /// Value in the header.
        header: Hash,
        /// Value recomputed.
        replayed: Hash,
        /// What was recomputed ("the block's txs", "re-execution", …).
        source_of_truth: &'static str,
    },
    /// A block that fails a structural rule.
    #[error("block {height} is malformed: {reason}")]
    InvalidBlock {
        /// Height.
        height: u64,
        /// The rule broken.
        reason: String,
    },
    /// Block time does not increase.
    #[error("block {height} time {time} is not after the previous block's {previous}")]
    TimeNotIncreasing {
        /// Height.
        height: u64,
        /// Its time.
        time: Timestamp,
        /// The previous time.
        previous: Timestamp,
    },
    /// The proposer is not a validator.
    #[error("block {height} was proposed by {proposer}, which is not a validator at that height")]
    ProposerNotValidator {
        /// Height.
        height: u64,
        /// Proposer key.
        proposer: PublicKey,
    },
    /// The exported receipts disagree with the header.
    #[error("block {height}: the receipts in the export do not match the header's receipts root (header {header}, receipts give {found}): the receipts in the file were altered")]
    RecordedReceiptsAltered {
        /// Height.
        height: u64,
        /// Root in the header.
        header: Hash,
        /// Root of the exported receipts.
        found: Hash,
    },
    /// Re-execution gives another receipt for a tx.
    #[error("block {height} tx #{tx_index} (hash {tx_hash}): the chain recorded {recorded}, re-execution gives {replayed}")]
    ReceiptMismatch {
        /// Height.
        height: u64,
        /// Index in the block.
        tx_index: usize,
        /// The tx.
        tx_hash: Hash,
        /// Outcome recorded on chain.
        recorded: String,
        /// Outcome of re-execution.
        replayed: String,
    },
    /// Re-execution gives another state root.
    #[error("block {height}: header state_root is {header}, re-execution gives {replayed} (all receipts match, so a write differs: the contracts or the block were altered)")]
    StateRootMismatch {
        /// Height.
        height: u64,
        /// Root in the header.
        header: Hash,
        /// Root after re-execution.
        replayed: Hash,
    },
    /// The contracts could not execute the block (corrupt state): a bug or an invalid chain.
    #[error("block {height}: execution failed: {reason}")]
    Execution {
        /// Height.
        height: u64,
        /// The contracts' error.
        reason: String,
    },
    /// The trailer disagrees with what was read.
    #[error("the trailer says {trailer_blocks} blocks ending with {trailer_hash}, but the file holds {blocks} ending with {last_hash}: blocks were removed or appended")]
    TrailerMismatch {
        /// Count in the trailer.
        trailer_blocks: u64,
        /// Hash in the trailer.
        trailer_hash: Hash,
        /// Blocks read.
        blocks: u64,
        /// Hash of the last block read.
        last_hash: Hash,
    },
    /// A worker thread died.
    #[error("a replay worker thread stopped unexpectedly: {0}")]
    Worker(String),
}

impl ReplayError {
    /// The height the discrepancy is at, when there is one.
    pub fn height(&self) -> Option<u64> {
        use ReplayError::*;
        match self {
            HeightGap { expected, .. } => Some(*expected),
            BrokenLink { height, .. }
            | WrongChain { height, .. }
            | CertificateWrongBlock { height, .. }
            | CertificateShort { height, .. }
            | CertificateSignerNotValidator { height, .. }
            | CertificateDuplicateSigner { height, .. }
            | CertificateBadSignature { height, .. }
            | TxBadSignature { height, .. }
            | TxWrongChain { height, .. }
            | HeaderMismatch { height, .. }
            | InvalidBlock { height, .. }
            | TimeNotIncreasing { height, .. }
            | ProposerNotValidator { height, .. }
            | RecordedReceiptsAltered { height, .. }
            | ReceiptMismatch { height, .. }
            | StateRootMismatch { height, .. }
            | Execution { height, .. } => Some(*height),
            GenesisMismatch { .. } => Some(1),
            _ => None,
        }
    }
}
