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

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context, Result};
use gongzhi_consensus::{SignedVote, ValidatorSet};
use gongzhi_contracts::{BlockContext, Genesis};
use gongzhi_ledger::store::{PreparedState, Store};
use gongzhi_ledger::{
    tx, validator_set_hash, Block, Canonical, CommitCertificate, CommitSignature, Hash, Header,
    LedgerError, PublicKey, Receipt, Timestamp, Tx,
};

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
}

impl Chain {
    /// Open the store in `data_dir`, writing the genesis state on first start.
    pub fn open(data_dir: &Path, genesis: &Genesis) -> Result<Chain> {
        genesis.validate().context("genesis is invalid")?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let store = Store::open(data_dir.join("blocks"))
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

    fn execute(
        &self,
        height: u64,
        time: Timestamp,
        txs: &[Tx],
    ) -> Result<(Vec<Receipt>, PreparedState, ValidatorSet)> {
        let state = self.store.latest_state()?;
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height,
            time,
        };
        let outcome = gongzhi_contracts::execute_block(&state, &ctx, txs)?;
        let overlay = {
            let mut overlay = gongzhi_ledger::Overlay::new(&state);
            overlay.merge(outcome.changes.clone());
            gongzhi_contracts::validator_set_for_next_block(&overlay)?
        };
        let prepared = self.store.prepare(&outcome.changes)?;
        Ok((outcome.receipts, prepared, overlay))
    }

    /// Check a block proposed by a peer for `latest + 1` and execute it. `now` bounds its time
    /// (`None` when replaying history, where only monotonicity is checked).
    pub fn execute_proposal(
        &self,
        block: Block,
        now: Option<(Timestamp, u64)>,
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
        tx::verify_txs(&self.chain_id, &block.txs)?;
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

    /// Commit an executed block with the certificate that decided it.
    pub fn commit(&self, executed: Executed, certificate: &CommitCertificate) -> Result<()> {
        self.store
            .commit(
                &executed.block,
                certificate,
                &executed.receipts,
                executed.prepared,
            )
            .context("commit failed")?;
        let header = &executed.block.header;
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
        let executed = self.execute_proposal(block, None)?;
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
