//! Reads: blocks, certificates, txs and receipts by height or hash; the state at the latest or
//! a past height; values with Merkle proofs.
//!
//! Invariants: heights above the tip are [`LedgerError::HeightUnavailable`] even if a commit is
//! in flight; an index entry whose target is missing, or stored bytes that do not decode, are
//! [`LedgerError::Corrupt`]. [`LatestState`] reads one RocksDB snapshot, so all its reads see
//! the same height even while blocks are being committed.

use rocksdb::{Direction, IteratorMode, Snapshot};

use super::columns::{self, meta_keys};
use super::proof::StateProof;
use super::state_tree::{self, key_hash, DbTreeReader, StateTree};
use super::Store;
use crate::certificate::CommitCertificate;
use crate::codec::Canonical;
use crate::hash::Hash;
use crate::receipt::Receipt;
use crate::state::StateReader;
use crate::tx::Tx;
use crate::{Block, LedgerError};

/// Decode a stored canonical object, calling any failure corruption.
pub(super) fn decode_stored<T: Canonical>(bytes: &[u8], height: u64) -> Result<T, LedgerError> {
    T::decode(bytes)
        .map_err(|e| LedgerError::Corrupt(format!("stored {} at height {height}: {e}", T::KIND)))
}

impl Store {
    /// The block at `height` (1 ..= latest).
    pub fn block(&self, height: u64) -> Result<Block, LedgerError> {
        self.check_block_height(height)?;
        let bytes = self
            .get(columns::BLOCKS, columns::height_key(height))?
            .ok_or_else(|| LedgerError::Corrupt(format!("block {height} is missing")))?;
        decode_stored(&bytes, height)
    }

    /// The height of the block with this hash, if stored.
    pub fn block_height(&self, hash: &Hash) -> Result<Option<u64>, LedgerError> {
        self.get(columns::BLOCK_INDEX, hash.0)?
            .map(|bytes| columns::decode_height(&bytes, "block index entry"))
            .transpose()
    }

    /// The block with this hash, if stored.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, LedgerError> {
        let Some(height) = self.block_height(hash)? else {
            return Ok(None);
        };
        let block = self.block(height)?;
        if block.hash() != *hash {
            return Err(LedgerError::Corrupt(format!(
                "block index maps {hash} to height {height}, whose block is {}",
                block.hash()
            )));
        }
        Ok(Some(block))
    }

    /// The certificate that committed block `height` (1 ..= latest).
    pub fn certificate(&self, height: u64) -> Result<CommitCertificate, LedgerError> {
        self.check_block_height(height)?;
        let bytes = self
            .get(columns::CERTIFICATES, columns::height_key(height))?
            .ok_or_else(|| LedgerError::Corrupt(format!("certificate {height} is missing")))?;
        decode_stored(&bytes, height)
    }

    /// Where the tx with this hash was committed: (height, index in block).
    pub fn tx_position(&self, tx_hash: &Hash) -> Result<Option<(u64, u32)>, LedgerError> {
        self.get(columns::TX_INDEX, tx_hash.0)?
            .map(|bytes| columns::decode_tx_position(&bytes))
            .transpose()
    }

    /// A committed tx with its height and index. Reads (and decodes) the whole block.
    pub fn tx(&self, tx_hash: &Hash) -> Result<Option<(u64, u32, Tx)>, LedgerError> {
        let Some((height, index)) = self.tx_position(tx_hash)? else {
            return Ok(None);
        };
        let block = self.block(height)?;
        let tx = usize::try_from(index)
            .ok()
            .and_then(|i| block.txs.get(i))
            .filter(|tx| tx.hash() == *tx_hash)
            .cloned()
            .ok_or_else(|| {
                LedgerError::Corrupt(format!(
                    "tx index maps {tx_hash} to block {height} #{index}, which is another tx"
                ))
            })?;
        Ok(Some((height, index, tx)))
    }

    /// The receipt of a committed tx.
    pub fn receipt(&self, tx_hash: &Hash) -> Result<Option<Receipt>, LedgerError> {
        let Some((height, index)) = self.tx_position(tx_hash)? else {
            return Ok(None);
        };
        let bytes = self
            .get(columns::RECEIPTS, columns::tx_position_key(height, index))?
            .ok_or_else(|| {
                LedgerError::Corrupt(format!("receipt for block {height} #{index} is missing"))
            })?;
        let receipt: Receipt = decode_stored(&bytes, height)?;
        if receipt.tx_hash != *tx_hash {
            return Err(LedgerError::Corrupt(format!(
                "receipt at block {height} #{index} is for another tx"
            )));
        }
        Ok(Some(receipt))
    }

    /// All receipts of block `height`, in tx order.
    pub fn receipts(&self, height: u64) -> Result<Vec<Receipt>, LedgerError> {
        self.check_block_height(height)?;
        let start = columns::tx_position_key(height, 0);
        let prefix = columns::height_key(height);
        let mut receipts = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(columns::RECEIPTS)?,
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (_, index) = columns::decode_tx_position(&key)?;
            if usize::try_from(index).ok() != Some(receipts.len()) {
                return Err(LedgerError::Corrupt(format!(
                    "block {height}: receipt #{index} follows {} receipts",
                    receipts.len()
                )));
            }
            receipts.push(decode_stored(&value, height)?);
        }
        Ok(receipts)
    }

    /// The latest state, from the flat key → value family (one point read per key).
    pub fn latest_state(&self) -> Result<LatestState<'_>, LedgerError> {
        self.require_tip()?;
        let snapshot = self.db.snapshot();
        let height = snapshot
            .get_cf(self.cf(columns::META)?, meta_keys::LATEST_HEIGHT)?
            .ok_or_else(|| LedgerError::Corrupt("metadata has no latest height".into()))?;
        Ok(LatestState {
            height: columns::decode_height(&height, "latest height")?,
            state: self.cf(columns::STATE)?,
            snapshot,
        })
    }

    /// The state after block `height` (0 = genesis), from the value history.
    pub fn state_at(&self, height: u64) -> Result<HistoricState<'_>, LedgerError> {
        self.check_height(height)?;
        Ok(HistoricState {
            height,
            reader: self.tree_reader()?,
        })
    }

    /// The value of `key` after block `height` and a proof of it (or of its absence) against
    /// [`Store::state_root`]`(height)`.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, StateProof), LedgerError> {
        self.check_height(height)?;
        let reader = self.tree_reader()?;
        let (value, proof) = StateTree::new(&reader)
            .get_with_proof(key_hash(key), height)
            .map_err(state_tree::from_jmt)?;
        Ok((value, StateProof::new(proof)))
    }

    fn check_block_height(&self, height: u64) -> Result<(), LedgerError> {
        let latest = self.require_tip()?.height;
        if height == 0 || height > latest {
            return Err(LedgerError::HeightUnavailable {
                height,
                lowest: 1,
                latest,
            });
        }
        Ok(())
    }
}

/// The latest state as of one snapshot.
pub struct LatestState<'a> {
    height: u64,
    state: &'a rocksdb::ColumnFamily,
    snapshot: Snapshot<'a>,
}

impl std::fmt::Debug for LatestState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatestState")
            .field("height", &self.height)
            .finish()
    }
}

impl LatestState<'_> {
    /// The height this state is after.
    pub fn height(&self) -> u64 {
        self.height
    }
}

impl StateReader for LatestState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.snapshot.get_cf(self.state, key)?)
    }
}

/// The state after one past (or the latest) height, read from the value history.
#[derive(Debug)]
pub struct HistoricState<'a> {
    height: u64,
    reader: DbTreeReader<'a>,
}

impl HistoricState<'_> {
    /// The height this state is after.
    pub fn height(&self) -> u64 {
        self.height
    }
}

impl StateReader for HistoricState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.reader.value_at(self.height, key_hash(key))
    }
}
