//! The durable chain: blocks, their certificates, receipts and indexes, and the authenticated
//! state, in one RocksDB database (column families in [`columns`]).
//!
//! Life of a block: [`Store::prepare`] computes the state root the block's header must carry
//! (in memory, nothing written), then [`Store::commit`] writes the block, its indexes, receipts,
//! certificate, the tree nodes, the value history, the flat latest state and the new latest
//! height.
//!
//! Invariants:
//! - **One WriteBatch per block, `sync = true`** (only a scratch store opened with
//!   [`StoreOptions::sync`] off skips the fsync). A crash at any moment leaves the store at the
//!   last fully committed block, never half of one; reopening finds a consistent tip.
//! - Heights are committed in order, each exactly once, on top of the state it was prepared on.
//! - Stored data is never trusted blindly: every decode failure is [`LedgerError::Corrupt`],
//!   every engine failure [`LedgerError::Storage`]; nothing read from disk is unwrapped.
//! - Tree version = height; version 0 is the genesis state. All versions are kept (no pruning
//!   yet), so state and proofs are available at every height.
//!
//! Dropping a [`Store`] closes RocksDB. Since every commit is already fsynced, dropping it (or
//! the process dying) at any point loses nothing that was committed.

pub mod background;
mod columns;
mod commit;
mod direct_io;
mod hash_jobs;
mod node_cache;
mod proof;
mod reads;
mod root_tree;
pub mod state_tree;
pub mod testkit;
mod tree_insert;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, PoisonError, RwLock};

use rocksdb::{ColumnFamily, WriteBatch, WriteOptions, DB};

use crate::codec::Canonical;
use crate::hash::Hash;
use crate::state::StateChanges;
use crate::{Block, LedgerError};
use columns::meta_keys;
use state_tree::DbTreeReader;

pub use commit::PreparedState;
pub use node_cache::NodeCache;
pub use proof::{verify_state_proof, StateProof};
pub use reads::{HistoricState, LatestState};
pub use root_tree::RootTree;
pub use state_tree::{MemoryStateTree, StateHasher};

/// The node's block store and authenticated state.
pub struct Store {
    db: DB,
    path: PathBuf,
    /// The last fully committed block, `None` before genesis.
    tip: RwLock<Option<Tip>>,
    /// Serialises commits and genesis (reads never take it).
    write_lock: Mutex<()>,
    /// Stored tree nodes of committed versions (see [`NodeCache`]).
    node_cache: NodeCache,
    /// Whether commits are fsynced (always, except for scratch stores).
    sync: bool,
    /// The size of the last block's write batch: the next one reserves a little more up
    /// front, so it is not grown by doubling (each growth a copy into fresh pages).
    last_batch_bytes: AtomicUsize,
}

/// How a [`Store`] is opened. [`StoreOptions::default`] is what a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Fsync every commit. Only a scratch store whose loss costs nothing but recomputation
    /// (an auditor's replay) may turn this off; it then also skips RocksDB's write-ahead log,
    /// so a crash can lose anything not yet flushed.
    pub sync: bool,
    /// Tree nodes kept in memory per cache generation (0 disables the cache).
    pub node_cache_nodes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: true,
            node_cache_nodes: node_cache::DEFAULT_CAPACITY,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("tip", &self.tip())
            .finish()
    }
}

/// What the store knows about its latest block, kept in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tip {
    chain_id: String,
    genesis_hash: Hash,
    height: u64,
    state_root: Hash,
    /// Hash of the block at `height`, or the genesis hash at height 0.
    block_hash: Hash,
}

impl Store {
    /// Open (or create) the store at `path` and check that its tip is consistent.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, LedgerError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, LedgerError> {
        let path = path.as_ref().to_path_buf();
        let opening = |e: rocksdb::Error| {
            LedgerError::Storage(format!("opening {}: {}", path.display(), e.into_string()))
        };
        let db_options = columns::db_options(direct_io::supported(&path)).map_err(opening)?;
        let db =
            DB::open_cf_descriptors(&db_options, &path, columns::descriptors()).map_err(opening)?;
        background::lower_rocksdb_threads();
        for name in columns::ALL {
            let family = db.cf_handle(name).ok_or_else(|| {
                LedgerError::Storage(format!("{}: no column family {name}", path.display()))
            })?;
            db.set_options_cf(family, columns::AFTER_OPEN_CF_OPTIONS)
                .map_err(|e| {
                    LedgerError::Storage(format!(
                        "setting options of {name} in {}: {}",
                        path.display(),
                        e.into_string()
                    ))
                })?;
        }
        let store = Store {
            db,
            path,
            tip: RwLock::new(None),
            write_lock: Mutex::new(()),
            node_cache: NodeCache::new(options.node_cache_nodes),
            last_batch_bytes: AtomicUsize::new(0),
            sync: options.sync,
        };
        let tip = store.load_tip()?;
        *store.tip.write().unwrap_or_else(PoisonError::into_inner) = tip;
        Ok(store)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write the genesis state as version 0 and remember the chain id and genesis hash.
    /// Returns the genesis state root.
    ///
    /// Calling it again with the same chain id, genesis hash and changes returns the same
    /// root and writes nothing; anything else on an initialised store is refused with
    /// [`LedgerError::GenesisMismatch`].
    pub fn init_genesis(
        &self,
        chain_id: &str,
        genesis_hash: Hash,
        changes: &StateChanges,
    ) -> Result<Hash, LedgerError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The genesis root depends only on `changes` (version 0 starts from the empty tree).
        let (root, update) = state_tree::compute_update(&self.tree_reader()?, changes, 0)?;
        if let Some(tip) = self.tip() {
            let stored_root = self.state_root(0)?;
            if tip.chain_id != chain_id || tip.genesis_hash != genesis_hash || stored_root != root {
                return Err(LedgerError::GenesisMismatch {
                    stored_chain_id: tip.chain_id,
                    stored_hash: tip.genesis_hash,
                    offered_chain_id: chain_id.to_string(),
                    offered_hash: genesis_hash,
                });
            }
            return Ok(root);
        }
        let mut batch = WriteBatch::default();
        commit::put_tree_update(self, &mut batch, &update, changes, 0)?;
        commit::put_flat_state(self, &mut batch, changes)?;
        let meta = self.cf(columns::META)?;
        batch.put_cf(
            meta,
            meta_keys::FORMAT,
            columns::FORMAT_VERSION.to_be_bytes(),
        );
        batch.put_cf(meta, meta_keys::CHAIN_ID, chain_id.as_bytes());
        batch.put_cf(meta, meta_keys::GENESIS_HASH, genesis_hash.0);
        batch.put_cf(meta, meta_keys::LATEST_HEIGHT, columns::height_key(0));
        self.write_synced(batch)?;
        self.node_cache.insert_all(update.nodes);
        self.set_tip(Tip {
            chain_id: chain_id.to_string(),
            genesis_hash,
            height: 0,
            state_root: root,
            block_hash: genesis_hash,
        });
        Ok(root)
    }

    /// The last committed height (0 = genesis only, or no genesis yet).
    pub fn latest_height(&self) -> u64 {
        self.tip().map_or(0, |tip| tip.height)
    }

    /// Whether [`Store::init_genesis`] has run.
    pub fn is_initialised(&self) -> bool {
        self.tip().is_some()
    }

    /// The chain this store belongs to.
    pub fn chain_id(&self) -> Result<String, LedgerError> {
        Ok(self.require_tip()?.chain_id)
    }

    /// The genesis hash (the `prev_block_hash` of block 1).
    pub fn genesis_hash(&self) -> Result<Hash, LedgerError> {
        Ok(self.require_tip()?.genesis_hash)
    }

    /// Hash of the latest block (the genesis hash at height 0): the next block's
    /// `prev_block_hash`.
    pub fn latest_block_hash(&self) -> Result<Hash, LedgerError> {
        Ok(self.require_tip()?.block_hash)
    }

    /// The state root after block `height` (the genesis root at 0).
    pub fn state_root(&self, height: u64) -> Result<Hash, LedgerError> {
        self.check_height(height)?;
        state_tree::root_at(&self.tree_reader()?, height)?
            .ok_or_else(|| LedgerError::Corrupt(format!("no state tree root for height {height}")))
    }

    // ---- internals shared by the submodules ----

    fn tip(&self) -> Option<Tip> {
        self.tip
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn require_tip(&self) -> Result<Tip, LedgerError> {
        self.tip().ok_or(LedgerError::NotInitialised)
    }

    fn set_tip(&self, tip: Tip) {
        *self.tip.write().unwrap_or_else(PoisonError::into_inner) = Some(tip);
    }

    /// `Ok` if `height` is stored (0 ..= latest).
    fn check_height(&self, height: u64) -> Result<(), LedgerError> {
        let tip = self.require_tip()?;
        if height > tip.height {
            return Err(LedgerError::HeightUnavailable {
                height,
                lowest: 0,
                latest: tip.height,
            });
        }
        Ok(())
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, LedgerError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| LedgerError::Storage(format!("column family {name} is missing")))
    }

    fn tree_reader(&self) -> Result<DbTreeReader<'_>, LedgerError> {
        Ok(DbTreeReader {
            db: &self.db,
            nodes: self.cf(columns::JMT_NODES)?,
            values: self.cf(columns::JMT_VALUES)?,
            cache: &self.node_cache,
        })
    }

    fn get(&self, cf: &'static str, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.db.get_cf(self.cf(cf)?, key)?)
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), LedgerError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(self.sync);
        // A scratch store is rebuilt rather than recovered: RocksDB's own log is wasted work.
        opts.disable_wal(!self.sync);
        Ok(self.db.write_opt(batch, &opts)?)
    }

    /// Read the tip from metadata and check it against the block and the tree.
    fn load_tip(&self) -> Result<Option<Tip>, LedgerError> {
        let Some(genesis) = self.get(columns::META, meta_keys::GENESIS_HASH)? else {
            return Ok(None);
        };
        let format = self.get(columns::META, meta_keys::FORMAT)?.ok_or_else(|| {
            LedgerError::Corrupt("metadata has a genesis hash but no format version".into())
        })?;
        let format = columns::decode_height(&format, "format version")?;
        if format != columns::FORMAT_VERSION {
            return Err(LedgerError::Corrupt(format!(
                "store layout version {format}; this node reads version {} (the home was \
                 made by another gongzhi release: run that release, or re-create the home from \
                 genesis with this one)",
                columns::FORMAT_VERSION
            )));
        }
        let genesis_hash = Hash(
            genesis
                .as_slice()
                .try_into()
                .map_err(|_| LedgerError::Corrupt("genesis hash is not 32 bytes".into()))?,
        );
        let chain_id = self
            .get(columns::META, meta_keys::CHAIN_ID)?
            .ok_or_else(|| LedgerError::Corrupt("metadata has no chain id".into()))?;
        let chain_id = String::from_utf8(chain_id)
            .map_err(|_| LedgerError::Corrupt("chain id is not UTF-8".into()))?;
        let height = self
            .get(columns::META, meta_keys::LATEST_HEIGHT)?
            .ok_or_else(|| LedgerError::Corrupt("metadata has no latest height".into()))?;
        let height = columns::decode_height(&height, "latest height")?;
        let state_root = state_tree::root_at(&self.tree_reader()?, height)?.ok_or_else(|| {
            LedgerError::Corrupt(format!("no state tree root for latest height {height}"))
        })?;
        let block_hash = if height == 0 {
            genesis_hash
        } else {
            let bytes = self
                .get(columns::BLOCKS, columns::height_key(height))?
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "latest height is {height} but that block is missing"
                    ))
                })?;
            let block: Block = reads::decode_stored(&bytes, height)?;
            if block.header.state_root != state_root || block.header.chain_id != chain_id {
                return Err(LedgerError::Corrupt(format!(
                    "block {height} disagrees with the stored state root or chain id"
                )));
            }
            block.hash()
        };
        Ok(Some(Tip {
            chain_id,
            genesis_hash,
            height,
            state_root,
            block_hash,
        }))
    }
}

/// Encode for storage (the canonical encoding; stored objects are exactly what was hashed).
fn stored<T: Canonical>(value: &T) -> Vec<u8> {
    value.encode()
}
