//! Blocks and headers.
//!
//! A block at height h carries the commit certificate of block h-1, and its header commits to
//! everything: the previous block, that certificate, the txs, their receipts, the state root
//! *after* executing them (execution is immediate), and the validator sets for h and h+1.
//! The block hash is the header hash.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::certificate::CommitCertificate;
use crate::codec::Canonical;
use crate::crypto::PublicKey;
use crate::hash::{merkle_root, tagged_many, tags, Hash};
use crate::receipt::Receipt;
use crate::tx::Tx;
use crate::LedgerError;

/// Largest accepted block encoding, in bytes.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;

/// BFT time: milliseconds since the Unix epoch, agreed in consensus, strictly increasing
/// from block to block. Contracts see only this time, never a wall clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub fn seconds(self) -> u64 {
        self.0 / 1000
    }

    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_millis(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601 in UTC, e.g. `2026-11-29T00:42:19.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60,
            self.0 % 1000
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A block header. Its hash is the block hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Chain this block belongs to.
    pub chain_id: String,
    /// Height, starting at 1 (0 is genesis state).
    pub height: u64,
    /// BFT time of this block.
    pub time: Timestamp,
    /// Hash of block height-1 (the genesis hash at height 1).
    pub prev_block_hash: Hash,
    /// Hash of the commit certificate for height-1 carried in this block ([`Hash::ZERO`] at 1).
    pub last_commit_hash: Hash,
    /// Merkle root of the txs' canonical encodings.
    pub tx_root: Hash,
    /// Merkle root of the txs' receipts.
    pub receipts_root: Hash,
    /// Root of the authenticated state after executing this block.
    pub state_root: Hash,
    /// Hash of the validator set that commits this block.
    pub validator_set_hash: Hash,
    /// Hash of the validator set that commits the next block.
    pub next_validator_set_hash: Hash,
    /// Validator key of the proposer.
    pub proposer: PublicKey,
}

impl Canonical for Header {
    const KIND: &'static str = "header";
    const MAX_BYTES: usize = 4096;
}

impl Header {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::HEADER, &self.encode())
    }
}

/// A block: header, txs, and the certificate that committed the previous block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Transactions in execution order.
    pub txs: Vec<Tx>,
    /// Commit certificate of block height-1 (`None` only at height 1).
    pub last_commit: Option<CommitCertificate>,
}

impl Canonical for Block {
    const KIND: &'static str = "block";
    const MAX_BYTES: usize = MAX_BLOCK_BYTES;
}

impl Block {
    /// The block hash (= header hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Height of this block.
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// Merkle root over tx encodings.
    pub fn compute_tx_root(txs: &[Tx]) -> Hash {
        let encoded: Vec<Vec<u8>> = txs.iter().map(Canonical::encode).collect();
        merkle_root(&encoded)
    }

    /// Each tx's hash ([`Tx::hash`]) and the tx root ([`Block::compute_tx_root`]), from one
    /// encoding of each tx.
    pub fn compute_tx_hashes_and_root(txs: &[Tx]) -> (Vec<Hash>, Hash) {
        let encoded: Vec<Vec<u8>> = txs.iter().map(Canonical::encode).collect();
        let hashes = tagged_many(tags::TX, &encoded);
        (hashes, merkle_root(&encoded))
    }

    /// Merkle root over receipt encodings.
    pub fn compute_receipts_root(receipts: &[Receipt]) -> Hash {
        let encoded: Vec<Vec<u8>> = receipts.iter().map(Canonical::encode).collect();
        merkle_root(&encoded)
    }

    /// Hash of an optional last commit ([`Hash::ZERO`] when absent).
    pub fn compute_last_commit_hash(last_commit: Option<&CommitCertificate>) -> Hash {
        last_commit.map_or(Hash::ZERO, CommitCertificate::hash)
    }

    /// Checks that need no state: chain id, height ≥ 1, the tx root and last-commit hash match
    /// the header, and the last commit is present exactly when height > 1 and is for height-1.
    /// Signatures and execution are checked elsewhere.
    pub fn validate_basic(&self, chain_id: &str) -> Result<(), LedgerError> {
        self.validate_basic_with_tx_root(chain_id, Self::compute_tx_root(&self.txs))
    }

    /// [`Block::validate_basic`] with the tx root already computed from `self.txs` (by
    /// [`Block::compute_tx_hashes_and_root`], say).
    pub fn validate_basic_with_tx_root(
        &self,
        chain_id: &str,
        tx_root: Hash,
    ) -> Result<(), LedgerError> {
        let height = self.header.height;
        if self.header.chain_id != chain_id {
            return Err(LedgerError::WrongChainId {
                expected: chain_id.to_string(),
                found: self.header.chain_id.clone(),
            });
        }
        if height == 0 {
            return Err(LedgerError::InvalidBlock {
                height,
                reason: "height 0 is the genesis state, not a block".into(),
            });
        }
        if tx_root != self.header.tx_root {
            return Err(LedgerError::BlockMismatch {
                height,
                field: "tx_root",
                expected: self.header.tx_root,
                found: tx_root,
            });
        }
        let commit_hash = Self::compute_last_commit_hash(self.last_commit.as_ref());
        if commit_hash != self.header.last_commit_hash {
            return Err(LedgerError::BlockMismatch {
                height,
                field: "last_commit_hash",
                expected: self.header.last_commit_hash,
                found: commit_hash,
            });
        }
        match (&self.last_commit, height) {
            (None, 1) => Ok(()),
            (Some(_), 1) => Err(LedgerError::InvalidBlock {
                height,
                reason: "block 1 must not carry a previous commit".into(),
            }),
            (None, _) => Err(LedgerError::InvalidBlock {
                height,
                reason: "missing the commit certificate of the previous block".into(),
            }),
            (Some(cert), _) if cert.height != height - 1 || cert.block_hash != self.header.prev_block_hash => {
                Err(LedgerError::InvalidBlock {
                    height,
                    reason: format!(
                        "carried certificate is for height {} block {}, expected height {} block {}",
                        cert.height,
                        cert.block_hash,
                        height - 1,
                        self.header.prev_block_hash
                    ),
                })
            }
            (Some(_), _) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_formats_as_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_913_339_123).to_string(),
            "2026-11-29T00:48:59.123Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
