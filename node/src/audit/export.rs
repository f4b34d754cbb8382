//! `gongzhi audit export`: stream a node's chain (genesis, every block with its certificate and
//! receipts) into an export file ([`super::format`]).
//!
//! Invariants: one block is held in memory at a time; the genesis written is the one whose hash
//! the store was initialised with (a mismatch is refused, not exported); `--home` opens the store
//! read-write, so it needs the node stopped — RocksDB's lock error is turned into that advice.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gongzhi_contracts::Genesis;
use gongzhi_ledger::{Hash, LedgerError, Store};

use super::format::{AuditBlock, ExportWriter, FormatError};
use super::progress::Progress;
use crate::config::NodeConfig;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The node's home could not be read.
    #[error("cannot use node home {home}: {reason}")]
    Home {
        /// The home directory.
        home: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Another process (the running node) holds the store.
    #[error("the block store in {path} is in use by another process: stop the node first, or export from the running node with --node ADDR")]
    StoreLocked {
        /// Store directory.
        path: PathBuf,
    },
    /// The store has no chain in it.
    #[error(
        "the block store in {path} holds no chain yet (start the node once with this genesis)"
    )]
    NotInitialised {
        /// Store directory.
        path: PathBuf,
    },
    /// The genesis file is not the one the store was created with.
    #[error("genesis file {file} hashes to {file_hash}, but the store was created from genesis {store_hash}: point the config at the right genesis file")]
    GenesisMismatch {
        /// The genesis file.
        file: PathBuf,
        /// Its hash.
        file_hash: Hash,
        /// Hash recorded in the store.
        store_hash: Hash,
    },
    /// Reading the store failed.
    #[error("reading block {height} from the store: {source}")]
    Store {
        /// Height being read (0: metadata).
        height: u64,
        /// The store's error.
        source: LedgerError,
    },
    /// Writing the export failed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The genesis file given with `--node` could not be used.
    #[error("cannot use genesis file {path}: {reason}")]
    Genesis {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Talking to the node failed, or it sent something unusable.
    #[error("node {addr}: {reason}")]
    Node {
        /// The address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportSummary {
    /// Blocks written.
    pub blocks: u64,
    /// Txs in them.
    pub txs: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Hash of the last block.
    pub last_block_hash: Hash,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Export the chain of the stopped node at `home` into `out`.
pub fn export_home(
    home: &Path,
    out: &Path,
    progress: &mut Progress,
) -> Result<ExportSummary, ExportError> {
    let config = NodeConfig::load(home).map_err(|e| ExportError::Home {
        home: home.to_path_buf(),
        reason: format!("{e:#}"),
    })?;
    let genesis_path = NodeConfig::path(home, &config.node.genesis_file);
    let genesis = crate::run::load_genesis(&genesis_path).map_err(|e| ExportError::Home {
        home: home.to_path_buf(),
        reason: format!("{e:#}"),
    })?;
    let store_path = NodeConfig::path(home, &config.node.data_dir).join("blocks");
    let store = open_store(&store_path)?;
    export_store(&store, &genesis, &genesis_path, out, progress)
}

/// Open a store for export, turning RocksDB's lock error into advice.
pub fn open_store(path: &Path) -> Result<Store, ExportError> {
    if !path.exists() {
        return Err(ExportError::NotInitialised {
            path: path.to_path_buf(),
        });
    }
    Store::open(path).map_err(|e| {
        let text = e.to_string();
        if text.contains("LOCK") || text.contains("lock") {
            ExportError::StoreLocked {
                path: path.to_path_buf(),
            }
        } else {
            ExportError::Store {
                height: 0,
                source: e,
            }
        }
    })
}

/// Export every committed block of `store` (whose genesis is `genesis`, read from
/// `genesis_path`) into `out`.
pub fn export_store(
    store: &Store,
    genesis: &Genesis,
    genesis_path: &Path,
    out: &Path,
    progress: &mut Progress,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    if !store.is_initialised() {
        return Err(ExportError::NotInitialised {
            path: store.path().to_path_buf(),
        });
    }
    let store_hash = store
        .genesis_hash()
        .map_err(|source| ExportError::Store { height: 0, source })?;
    if store_hash != genesis.hash() {
        return Err(ExportError::GenesisMismatch {
            file: genesis_path.to_path_buf(),
            file_hash: genesis.hash(),
            store_hash,
        });
    }
    // The tip is read once: blocks committed meanwhile (not possible with --home) are left out.
    let latest = store.latest_height();
    progress.start("export", latest);
    let mut writer = ExportWriter::create(out, genesis)?;
    let mut txs = 0u64;
    let mut last_block_hash = store_hash;
    for height in 1..=latest {
        let read = |source| ExportError::Store { height, source };
        let block = store.block(height).map_err(read)?;
        let certificate = store.certificate(height).map_err(read)?;
        let receipts = store.receipts(height).map_err(read)?;
        txs += block.txs.len() as u64;
        last_block_hash = block.hash();
        writer.write_block(&AuditBlock {
            block,
            certificate,
            receipts,
        })?;
        progress.tick(height, txs);
    }
    writer.finish()?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    progress.finish(latest, txs);
    Ok(ExportSummary {
        blocks: latest,
        txs,
        bytes,
        last_block_hash,
        seconds: started.elapsed().as_secs_f64(),
    })
}
