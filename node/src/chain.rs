//! The node's view of the chain: the block store plus the contracts that execute blocks.
//!
//! Three ways a block enters the chain, all through here:
//! - [`Chain::build_block`] (we propose): take txs, execute, fill the header's roots;
//! - [`Chain::execute_proposal`] (a peer proposed): check the header against our tip and the
//!   executed result, before we prevote for it;
//! - [`Chain::apply_synced`] (block sync): verify its commit certificate against the validator
//!   set we track, re-execute, commit.
//!
//! Invariants: nothing is committed without a certificate that verifies against the validator
//! set in force at its height; a block whose re-executed state root, receipts root or
//! validator-set hashes differ from its header is never committed.
//!
//! The latest block's hash and time (needed to build and check the next block, and for the
//! node's status) are kept in a small cache keyed by height, filled on commit, so a height
//! does not decode the whole previous block again each time it needs them.
//!
//! The state changes of the most recent committed blocks (at most [`RECENT_CHANGES_HEIGHTS`]
//! heights and about [`RECENT_CHANGES_BYTES`] of keys and values) are kept in memory for the
//! API's check-index follower, which would otherwise re-execute each block to learn them.
//! Invariant: the changes held for height h are exactly those committed at h — the very
//! `StateChanges` execution produced, moved into the [`PreparedState`] that was committed
//! ([`Store::prepare_owned`]) and shared from there ([`PreparedState::shared_changes`]). They are recorded just before the store's
//! write, so a follower that sees height h committed finds them, and dropped again if that
//! write fails. Nothing is held across a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context, Result};
use gongzhi_consensus::{SignedVote, ValidatorSet};
use gongzhi_contracts::{BlockContext, Genesis};
use gongzhi_ledger::store::{PreparedState, Store};
use gongzhi_ledger::{
    tx, validator_set_hash, AfterChanges, Block, Canonical, CommitCertificate, CommitSignature,
    Hash, Header, LedgerError, PublicKey, ReadCache, Receipt, StateChanges, StoreOptions,
    Timestamp, Tx,
};

/// Most committed heights whose state changes [`Chain`] keeps in memory.
pub const RECENT_CHANGES_HEIGHTS: usize = 64;
/// About how many bytes (keys plus values) of committed state changes [`Chain`] keeps in
/// memory; the newest height is kept whatever its size.
pub const RECENT_CHANGES_BYTES: usize = 64 * 1024 * 1024;

/// A block executed against our tip, ready to commit once decided.
#[derive(Debug)]
pub struct Executed {
    /// The block.
    pub block: Block,
    /// One receipt per tx.
    pub receipts: Vec<Receipt>,
    /// Its state change.
    pub prepared: PreparedState,
}

/// Height, hash and time of the latest block (genesis: height 0, genesis hash and time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// Block time.
    pub time: Timestamp,
}

/// Block store + contracts for one chain.
#[derive(Debug, Clone)]
pub struct Chain {
    store: Arc<Store>,
    chain_id: String,
    genesis_hash: Hash,
    genesis_time: Timestamp,
    /// The latest [`Tip`] seen; valid only while its height is the store's latest.
    tip: Arc<Mutex<Option<Tip>>>,
    /// State changes of the most recent commits made through this chain (or a clone).
    recent_changes: Arc<Mutex<RecentChanges>>,
}

/// The state changes of recently committed heights, bounded in heights and bytes.
#[derive(Debug, Default)]
struct RecentChanges {
    /// Changes and their size in bytes, by height.
    by_height: BTreeMap<u64, (Arc<StateChanges>, usize)>,
    /// The sum of the sizes held.
    bytes: usize,
}

impl RecentChanges {
    /// Hold the changes committed at `height`, then drop the oldest heights beyond the bounds
    /// (never the newest).
    fn insert(&mut self, height: u64, changes: Arc<StateChanges>) {
        let size = changes_size(&changes);
        if let Some((_, replaced)) = self.by_height.insert(height, (changes, size)) {
            self.bytes -= replaced;
        }
        self.bytes += size;
        while self.by_height.len() > RECENT_CHANGES_HEIGHTS
            || (self.by_height.len() > 1 && self.bytes > RECENT_CHANGES_BYTES)
        {
            let Some((_, (_, dropped))) = self.by_height.pop_first() else {
                break;
            };
            self.bytes -= dropped;
        }
    }

    /// Stop holding `height` (its commit failed).
    fn remove(&mut self, height: u64) {
        if let Some((_, size)) = self.by_height.remove(&height) {
            self.bytes -= size;
        }
    }

    fn get(&self, height: u64) -> Option<Arc<StateChanges>> {
        self.by_height
            .get(&height)
            .map(|(changes, _)| changes.clone())
    }
}

/// Bytes of keys and values in `changes` (what holding them costs, roughly).
fn changes_size(changes: &StateChanges) -> usize {
    changes
        .iter()
        .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
        .sum()
}

impl Chain {
    /// Open the store in `data_dir` with the default store options, writing the genesis state
    /// on first start.
    pub fn open(data_dir: &Path, genesis: &Genesis) -> Result<Chain> {
        Chain::open_with(data_dir, genesis, StoreOptions::default())
    }

    /// [`Chain::open`] with the given store options (a node's `[storage]` section).
    pub fn open_with(data_dir: &Path, genesis: &Genesis, options: StoreOptions) -> Result<Chain> {
        genesis.validate().context("genesis is invalid")?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let store = Store::open_with(data_dir.join("blocks"), options)
            .with_context(|| format!("cannot open the block store in {}", data_dir.display()))?;
        let hash = genesis.hash();
        let changes = gongzhi_contracts::genesis_changes(genesis)
            .context("cannot build the genesis state")?;
        store
            .init_genesis(&genesis.chain_id, hash, &changes)
            .context("this data directory belongs to another chain")?;
        Ok(Chain {
            store: Arc::new(store),
            chain_id: genesis.chain_id.clone(),
            genesis_hash: hash,
            genesis_time: genesis.time(),
            tip: Arc::new(Mutex::new(None)),
            recent_changes: Arc::new(Mutex::new(RecentChanges::default())),
        })
    }

    /// The store (for reads by the API).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Latest committed height (0 = genesis).
    pub fn height(&self) -> u64 {
        self.store.latest_height()
    }

    /// Time of the latest block (genesis time at height 0).
    pub fn latest_time(&self) -> Result<Timestamp> {
        Ok(self.tip()?.time)
    }

    /// Height, hash and time of the latest block; decodes the block only when the cache is
    /// behind the store (after a restart, or a commit made through another handle).
    pub fn tip(&self) -> Result<Tip> {
        let height = self.height();
        let cached = *self.tip.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tip) = cached.filter(|tip| tip.height == height) {
            return Ok(tip);
        }
        let tip = match height {
            0 => Tip {
                height,
                hash: self.genesis_hash,
                time: self.genesis_time,
            },
            h => {
                let header = self.store.block(h)?.header;
                Tip {
                    height,
                    hash: header.hash(),
                    time: header.time,
                }
            }
        };
        self.remember_tip(tip);
        Ok(tip)
    }

    fn remember_tip(&self, tip: Tip) {
        *self.tip.lock().unwrap_or_else(PoisonError::into_inner) = Some(tip);
    }

    /// The state changes committed at `height`, if it is one of the recent heights committed
    /// through this chain since it was opened (see the module docs for the bounds). `None`
    /// means "not held", never "no changes": re-execute the block to learn them.
    pub fn committed_changes(&self, height: u64) -> Option<Arc<StateChanges>> {
        self.recent_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(height)
    }

    /// The validator set that commits block `latest + 1`.
    pub fn next_validator_set(&self) -> Result<ValidatorSet> {
        let state = self.store.latest_state()?;
        Ok(gongzhi_contracts::validator_set_for_next_block(&state)?)
    }

    /// The validator set that committed block `height` (≥ 1).
    pub fn validator_set_at(&self, height: u64) -> Result<ValidatorSet> {
        let state = self.store.state_at(height.saturating_sub(1))?;
        Ok(gongzhi_contracts::validator_set_for_next_block(&state)?)
    }

    /// Execute `txs` on the latest state and assemble block `latest + 1`.
    pub fn build_block(
        &self,
        txs: Vec<Tx>,
        time: Timestamp,
        proposer: PublicKey,
        last_commit: Option<CommitCertificate>,
    ) -> Result<Executed> {
        let tip = self.tip()?;
        let height = tip.height + 1;
        let time = time.max(tip.time.plus_millis(1));
        let (receipts, prepared, next_set) = self.execute(height, time, &txs)?;
        let header = Header {
            chain_id: self.chain_id.clone(),
            height,
            time,
            prev_block_hash: tip.hash,
            last_commit_hash: Block::compute_last_commit_hash(last_commit.as_ref()),
            tx_root: Block::compute_tx_root(&txs),
            receipts_root: Block::compute_receipts_root(&receipts),
            state_root: prepared.root(),
            validator_set_hash: validator_set_hash(&self.next_validator_set()?),
            next_validator_set_hash: validator_set_hash(&next_set),
            proposer,
        };
        Ok(Executed {
            block: Block {
                header,
                txs,
                last_commit,
            },
            receipts,
            prepared,
        })
    }

    /// Execute `txs` on the latest state as block `height`: its receipts, prepared state and
    /// the validator set for the block after it.
    fn execute(
        &self,
        height: u64,
        time: Timestamp,
        txs: &[Tx],
    ) -> Result<(Vec<Receipt>, PreparedState, ValidatorSet)> {
        // One snapshot, so the cache's answers stay true for the whole execution.
        let state = ReadCache::new(self.store.latest_state()?);
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height,
            time,
        };
        let outcome = gongzhi_contracts::execute_block(&state, &ctx, txs)?;
        let next_set = gongzhi_contracts::validator_set_for_next_block(&AfterChanges {
            base: &state,
            changes: &outcome.changes,
        })?;
        let prepared = self.store.prepare_owned(outcome.changes)?;
        Ok((outcome.receipts, prepared, next_set))
    }

    /// Check a block proposed by a peer for `latest + 1` and execute it. `now` bounds its time
    /// (`None` when replaying history, where only monotonicity is checked). Signatures of txs
    /// for which `verified(index, tx)` is true are not checked again (see [`tx::verify_txs_except`]: only
    /// pass txs this node already verified, such as those in its mempool).
    pub fn execute_proposal(
        &self,
        block: Block,
        now: Option<(Timestamp, u64)>,
        verified: &dyn Fn(usize, &Tx) -> bool,
    ) -> Result<Executed> {
        block.validate_basic(&self.chain_id)?;
        let height = self.height() + 1;
        let header = &block.header;
        if header.height != height {
            bail!(
                "block is for height {}, the next height here is {height}",
                header.height
            );
        }
        let tip = self.tip()?;
        let prev = tip.hash;
        if header.prev_block_hash != prev {
            return Err(mismatch(
                height,
                "prev_block_hash",
                header.prev_block_hash,
                prev,
            ));
        }
        let latest_time = tip.time;
        if header.time <= latest_time {
            bail!(
                "block time {} is not after the previous block's {latest_time}",
                header.time
            );
        }
        if let Some((now, drift)) = now {
            if header.time > now.plus_millis(drift) {
                bail!(
                    "block time {} is more than {drift} ms ahead of this node's clock ({now})",
                    header.time
                );
            }
        }
        let set = self.next_validator_set()?;
        if set
            .get(&gongzhi_consensus::ValidatorId(header.proposer.0))
            .is_none()
        {
            bail!(
                "proposer {} is not a validator at height {height}",
                header.proposer
            );
        }
        if let Some(last) = &block.last_commit {
            last.verify(&self.chain_id, &self.validator_set_at(height - 1)?)?;
        }
        tx::verify_txs_except(&self.chain_id, &block.txs, verified)?;
        let (receipts, prepared, next_set) = self.execute(height, header.time, &block.txs)?;
        let checks = [
            ("state_root", header.state_root, prepared.root()),
            (
                "receipts_root",
                header.receipts_root,
                Block::compute_receipts_root(&receipts),
            ),
            (
                "validator_set_hash",
                header.validator_set_hash,
                validator_set_hash(&set),
            ),
            (
                "next_validator_set_hash",
                header.next_validator_set_hash,
                validator_set_hash(&next_set),
            ),
        ];
        for (field, expected, found) in checks {
            if expected != found {
                return Err(mismatch(height, field, expected, found));
            }
        }
        Ok(Executed {
            block,
            receipts,
            prepared,
        })
    }

    /// Commit an executed block with the certificate that decided it, and hold its state
    /// changes for [`Chain::committed_changes`].
    pub fn commit(&self, executed: Executed, certificate: &CommitCertificate) -> Result<()> {
        let header = &executed.block.header;
        // Held before the store's height moves, so the follower never sees a committed height
        // whose changes are not held yet; taken back if the commit fails.
        self.recent_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(header.height, executed.prepared.shared_changes());
        let committed = self
            .store
            .commit(
                &executed.block,
                certificate,
                &executed.receipts,
                executed.prepared,
            )
            .context("commit failed");
        if committed.is_err() {
            self.recent_changes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(header.height);
        }
        committed?;
        self.remember_tip(Tip {
            height: header.height,
            hash: header.hash(),
            time: header.time,
        });
        Ok(())
    }

    /// Apply a block fetched from a peer: its certificate must verify against the validator
    /// set we track for its height; then it is re-executed and committed.
    pub fn apply_synced(&self, block: Block, certificate: &CommitCertificate) -> Result<()> {
        let height = self.height() + 1;
        if certificate.height != height || certificate.block_hash != block.hash() {
            bail!(
                "certificate is for height {} block {}, expected the block at height {height}",
                certificate.height,
                certificate.block_hash
            );
        }
        certificate.verify(&self.chain_id, &self.next_validator_set()?)?;
        let executed = self.execute_proposal(block, None, &|_, _| false)?;
        self.commit(executed, certificate)
    }

    /// Encoded (block, certificate) pairs from `from`, at most `max` of them and about
    /// `max_bytes`, for peers that sync from us.
    pub fn blocks_for_sync(&self, from: u64, max: u32, max_bytes: usize) -> Vec<Vec<u8>> {
        let latest = self.height();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut height = from.max(1);
        while height <= latest && out.len() < max as usize {
            let (Ok(block), Ok(cert)) = (self.store.block(height), self.store.certificate(height))
            else {
                break;
            };
            let encoded = SyncedBlock {
                block,
                certificate: cert,
            }
            .encode();
            bytes += encoded.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(encoded);
            height += 1;
        }
        out
    }
}

/// A block with the certificate that committed it, as block sync ships them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncedBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

impl Canonical for SyncedBlock {
    const KIND: &'static str = "synced block";
    const MAX_BYTES: usize = gongzhi_ledger::block::MAX_BLOCK_BYTES + 1024 * 1024;
}

/// Turn the core's decision (precommits) into a ledger certificate.
pub fn certificate_from_votes(
    height: u64,
    round: u32,
    block_hash: Hash,
    votes: &[SignedVote],
) -> CommitCertificate {
    let mut signatures: Vec<CommitSignature> = votes
        .iter()
        .map(|v| CommitSignature {
            validator: PublicKey(v.vote.validator.0),
            signature: gongzhi_ledger::Signature(v.signature.0),
        })
        .collect();
    signatures.sort_by_key(|s| s.validator);
    signatures.dedup_by(|a, b| a.validator == b.validator);
    CommitCertificate {
        height,
        round,
        block_hash,
        signatures,
    }
}

fn mismatch(height: u64, field: &'static str, expected: Hash, found: Hash) -> anyhow::Error {
    LedgerError::BlockMismatch {
        height,
        field,
        expected,
        found,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixture::{demo_genesis, FixtureChain};

    #[test]
    fn the_chain_holds_the_changes_of_its_recent_commits_only() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut fixture = FixtureChain::create(&dir.path().join("data"), demo_genesis())?;
        let chain = fixture.chain().clone();
        assert!(
            chain.committed_changes(0).is_none(),
            "genesis is not a commit"
        );
        let commits = RECENT_CHANGES_HEIGHTS as u64 + 2;
        for _ in 0..commits {
            fixture.commit_block(Vec::new())?;
        }
        assert_eq!(chain.height(), commits);
        let held: Vec<u64> = (0..=commits + 1)
            .filter(|h| chain.committed_changes(*h).is_some())
            .collect();
        assert_eq!(held, (3..=commits).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn recent_changes_keep_within_the_byte_bound_but_always_the_newest() {
        let half: StateChanges =
            BTreeMap::from([(vec![1], Some(vec![0; RECENT_CHANGES_BYTES / 2]))]);
        let half = Arc::new(half);
        let mut recent = RecentChanges::default();
        recent.insert(1, half.clone());
        assert!(recent.get(1).is_some());
        recent.insert(2, half.clone());
        assert!(recent.get(1).is_none(), "1 + 2 are over the byte bound");
        assert!(recent.get(2).is_some());
        assert_eq!(recent.bytes, changes_size(&half));

        let whole: StateChanges = BTreeMap::from([(vec![2], Some(vec![0; RECENT_CHANGES_BYTES]))]);
        recent.insert(3, Arc::new(whole));
        assert!(recent.get(2).is_none());
        assert!(
            recent.get(3).is_some(),
            "the newest is kept whatever its size"
        );
    }
}
