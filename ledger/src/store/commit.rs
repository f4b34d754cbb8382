//! Preparing and committing a block.
//!
//! [`Store::prepare`] computes the tree update in memory (see `state_tree::compute_update`) and
//! returns a [`PreparedState`]: the root for height latest+1, the tree nodes (already in stored
//! form) and value history to write, and the flat changes. A proposer
//! puts its root in the header before the block is decided.
//!
//! [`Store::commit`] accepts a block only if it extends the tip (height latest+1, previous hash
//! = latest block hash), passes [`Block::validate_basic`], carries exactly one receipt per tx
//! matching the header's receipts root, was prepared on the current state with the root in its
//! header, and comes with a certificate for its own height and hash. Then everything goes into
//! **one WriteBatch written with `sync = true`**, and only after that write returns does the
//! in-memory tip move. Certificate *signatures* are checked by the caller, which knows the
//! validator set; the store checks that the certificate names this block.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use rocksdb::{ColumnFamily, WriteBatch};

use super::columns::{self, meta_keys};
use super::state_tree::{self, node_key_bytes, TreeUpdate};
use super::{stored, Store, Tip};
use crate::certificate::CommitCertificate;
use crate::hash::Hash;
use crate::receipt::Receipt;
use crate::state::StateChanges;
use crate::{Block, LedgerError};

/// A block's state change, computed but not written. Only [`Store::prepare`] makes one, and
/// [`Store::commit`] takes it by value, so it is applied at most once.
#[derive(Debug)]
pub struct PreparedState {
    height: u64,
    parent_root: Hash,
    root: Hash,
    update: TreeUpdate,
    changes: Arc<StateChanges>,
}

impl PreparedState {
    /// The state root after the block: what its header's `state_root` must be.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The height this state is for.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The root it was computed on (the store's latest root at the time).
    pub fn parent_root(&self) -> Hash {
        self.parent_root
    }

    /// The changes it applies.
    pub fn changes(&self) -> &StateChanges {
        &self.changes
    }

    /// The changes it applies, shared (no copy): what callers keep after the commit.
    pub fn shared_changes(&self) -> Arc<StateChanges> {
        Arc::clone(&self.changes)
    }
}

impl Store {
    /// Compute the state after applying `changes` to the latest state, for height latest+1.
    pub fn prepare(&self, changes: &StateChanges) -> Result<PreparedState, LedgerError> {
        self.prepare_owned(changes.clone())
    }

    /// [`Store::prepare`] taking the changes, for callers that no longer need them (no copy).
    pub fn prepare_owned(&self, changes: StateChanges) -> Result<PreparedState, LedgerError> {
        let tip = self.require_tip()?;
        let height = tip.height + 1;
        // Older versions are immutable, so this is consistent with `tip` even if a commit
        // lands meanwhile; commit then refuses the stale result.
        let (root, update) = state_tree::compute_update(&self.tree_reader()?, &changes, height)?;
        Ok(PreparedState {
            height,
            parent_root: tip.state_root,
            root,
            update,
            changes: Arc::new(changes),
        })
    }

    /// Durably commit `block` with the certificate that decided it, its receipts (one per tx,
    /// in order) and its prepared state. See the module docs for what is checked.
    pub fn commit(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        receipts: &[Receipt],
        prepared: PreparedState,
    ) -> Result<(), LedgerError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let tip = self.require_tip()?;
        let block_hash = check_block(&tip, block, certificate, receipts, &prepared)?;
        let height = block.header.height;

        // A quarter more than the last block's batch: blocks under load are alike in size.
        let last = self.last_batch_bytes.load(Ordering::Relaxed);
        let mut batch = WriteBatch::with_capacity_bytes(last.saturating_add(last / 4));
        batch.put_cf(
            self.cf(columns::BLOCKS)?,
            columns::height_key(height),
            stored(block),
        );
        batch.put_cf(
            self.cf(columns::BLOCK_INDEX)?,
            block_hash.0,
            columns::height_key(height),
        );
        batch.put_cf(
            self.cf(columns::CERTIFICATES)?,
            columns::height_key(height),
            stored(certificate),
        );
        let tx_index = self.cf(columns::TX_INDEX)?;
        let receipts_cf = self.cf(columns::RECEIPTS)?;
        let mut locations = Vec::with_capacity(receipts.len());
        for (index, receipt) in receipts.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| LedgerError::InvalidBlock {
                height,
                reason: "more than 2^32 txs".into(),
            })?;
            let position = columns::tx_position_key(height, index);
            locations.push((receipt.tx_hash.0, position));
            batch.put_cf(receipts_cf, position, stored(receipt));
        }
        put_sorted(&mut batch, tx_index, locations);
        put_tree_update(
            self,
            &mut batch,
            &prepared.update,
            &prepared.changes,
            height,
        )?;
        put_flat_state(self, &mut batch, &prepared.changes)?;
        batch.put_cf(
            self.cf(columns::META)?,
            meta_keys::LATEST_HEIGHT,
            columns::height_key(height),
        );
        self.last_batch_bytes
            .store(batch.size_in_bytes(), Ordering::Relaxed);
        self.write_synced(batch)?;
        // The new nodes' bytes move into the cache: it holds what was written, not a copy.
        self.node_cache.insert_all(prepared.update.nodes);

        self.set_tip(Tip {
            height,
            state_root: prepared.root,
            block_hash,
            ..tip
        });
        Ok(())
    }
}

/// Everything `commit` checks before writing; returns the block hash.
fn check_block(
    tip: &Tip,
    block: &Block,
    certificate: &CommitCertificate,
    receipts: &[Receipt],
    prepared: &PreparedState,
) -> Result<Hash, LedgerError> {
    let header = &block.header;
    let height = header.height;
    if height != tip.height + 1 {
        return Err(LedgerError::HeightGap {
            expected: tip.height + 1,
            found: height,
        });
    }
    block.validate_basic(&tip.chain_id)?;
    if header.prev_block_hash != tip.block_hash {
        return Err(LedgerError::BlockMismatch {
            height,
            field: "prev_block_hash",
            expected: header.prev_block_hash,
            found: tip.block_hash,
        });
    }
    if prepared.height != height || prepared.parent_root != tip.state_root {
        return Err(LedgerError::StalePreparedState {
            prepared_height: prepared.height,
            prepared_parent: prepared.parent_root,
            latest_height: tip.height,
            latest_root: tip.state_root,
        });
    }
    if prepared.root != header.state_root {
        return Err(LedgerError::BlockMismatch {
            height,
            field: "state_root",
            expected: header.state_root,
            found: prepared.root,
        });
    }
    let block_hash = block.hash();
    if certificate.height != height || certificate.block_hash != block_hash {
        return Err(LedgerError::InvalidCertificate {
            height: certificate.height,
            reason: format!(
                "certificate is for height {} block {}, but the block to commit is height {height} block {block_hash}",
                certificate.height, certificate.block_hash
            ),
        });
    }
    if receipts.len() != block.txs.len() {
        return Err(LedgerError::InvalidBlock {
            height,
            reason: format!("{} receipts for {} txs", receipts.len(), block.txs.len()),
        });
    }
    for (index, (tx, receipt)) in block.txs.iter().zip(receipts).enumerate() {
        let tx_hash = tx.hash();
        if receipt.tx_hash != tx_hash {
            return Err(LedgerError::InvalidBlock {
                height,
                reason: format!(
                    "receipt #{index} is for tx {}, but tx #{index} is {tx_hash}",
                    receipt.tx_hash
                ),
            });
        }
    }
    let receipts_root = Block::compute_receipts_root(receipts);
    if receipts_root != header.receipts_root {
        return Err(LedgerError::BlockMismatch {
            height,
            field: "receipts_root",
            expected: header.receipts_root,
            found: receipts_root,
        });
    }
    Ok(block_hash)
}

/// Add a tree update (nodes and value history) of version `version` to `batch`.
pub(super) fn put_tree_update(
    store: &Store,
    batch: &mut WriteBatch,
    update: &TreeUpdate,
    changes: &StateChanges,
    version: u64,
) -> Result<(), LedgerError> {
    let nodes: Vec<(Vec<u8>, &[u8])> = update
        .nodes
        .iter()
        .map(|(key, node)| (node_key_bytes(key), node.as_slice()))
        .collect();
    put_sorted(batch, store.cf(columns::JMT_NODES)?, nodes);
    let values: Vec<([u8; 40], Vec<u8>)> = update
        .values(changes)
        .map(|(key_hash, value)| {
            (
                columns::value_key(&key_hash.0, version),
                columns::encode_history_value(value),
            )
        })
        .collect();
    put_sorted(batch, store.cf(columns::JMT_VALUES)?, values);
    Ok(())
}

/// Add `entries` to `batch` in key order; the sort is stable, so of two entries with one key
/// the later still wins, as it would have in the given order. RocksDB inserts a batch's entries
/// into its memtable skip list one after another, starting each search from where the previous
/// insert ended; keys in order make that search short, where hashes in arbitrary order (tree
/// node paths, value-history key hashes, tx hashes) made each one descend from the top. The
/// stored result does not depend on the order.
fn put_sorted<K: AsRef<[u8]> + Ord, V: AsRef<[u8]>>(
    batch: &mut WriteBatch,
    family: &ColumnFamily,
    mut entries: Vec<(K, V)>,
) {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in entries {
        batch.put_cf(family, key, value);
    }
}

/// Add the flat latest-state writes and deletes to `batch`.
pub(super) fn put_flat_state(
    store: &Store,
    batch: &mut WriteBatch,
    changes: &StateChanges,
) -> Result<(), LedgerError> {
    let state = store.cf(columns::STATE)?;
    for (key, value) in changes {
        match value {
            Some(value) => batch.put_cf(state, key, value),
            None => batch.delete_cf(state, key),
        }
    }
    Ok(())
}
