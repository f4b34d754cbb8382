//! Column families of the store and the byte layout of their keys.
//!
//! Every integer in a key is big-endian, so RocksDB's byte order is numeric order: iterating
//! `receipts` from `height ‖ 0` visits one block's receipts in tx order, and a reverse seek in
//! `jmt_values` from `key hash ‖ version` finds the newest value at or before that version.
//!
//! | family        | key                          | value                                    |
//! |---------------|------------------------------|------------------------------------------|
//! | `meta`        | fixed names (below)          | chain id, genesis hash, latest height    |
//! | `blocks`      | height                       | canonical [`Block`](crate::Block)        |
//! | `block_index` | block hash                   | height                                   |
//! | `tx_index`    | tx hash                      | height ‖ index (u32)                     |
//! | `receipts`    | height ‖ index (u32)         | canonical [`Receipt`](crate::Receipt)    |
//! | `certificates`| height                       | canonical certificate committing it      |
//! | `state`       | state key                    | latest value (absent = deleted)          |
//! | `jmt_nodes`   | version ‖ nibble path        | postcard jmt `Node`                      |
//! | `jmt_values`  | key hash ‖ version           | 0 (deleted) or 1 ‖ value                 |

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options};

use crate::LedgerError;

/// Store metadata.
pub const META: &str = "meta";
/// height → block.
pub const BLOCKS: &str = "blocks";
/// block hash → height.
pub const BLOCK_INDEX: &str = "block_index";
/// tx hash → (height, index).
pub const TX_INDEX: &str = "tx_index";
/// (height, index) → receipt.
pub const RECEIPTS: &str = "receipts";
/// height → commit certificate of that block.
pub const CERTIFICATES: &str = "certificates";
/// Flat latest state.
pub const STATE: &str = "state";
/// Jellyfish Merkle tree nodes.
pub const JMT_NODES: &str = "jmt_nodes";
/// Value history: (key hash, version) → value or tombstone.
pub const JMT_VALUES: &str = "jmt_values";

/// All families, in creation order.
pub const ALL: [&str; 9] = [
    META,
    BLOCKS,
    BLOCK_INDEX,
    TX_INDEX,
    RECEIPTS,
    CERTIFICATES,
    STATE,
    JMT_NODES,
    JMT_VALUES,
];

/// Names of the entries in [`META`].
pub mod meta_keys {
    /// Layout version of the whole store (see [`super::FORMAT_VERSION`]).
    pub const FORMAT: &[u8] = b"format";
    /// UTF-8 chain id.
    pub const CHAIN_ID: &[u8] = b"chain_id";
    /// 32-byte genesis hash.
    pub const GENESIS_HASH: &[u8] = b"genesis_hash";
    /// Big-endian u64: the last fully committed height (0 = genesis only).
    pub const LATEST_HEIGHT: &[u8] = b"latest_height";
}

/// Layout version written at genesis; a store with another version is refused at open. It
/// covers the column layout and the contract state layout the store holds: version 2 is the
/// state layout with chunked lists and resident accounts (2026-12-02).
pub const FORMAT_VERSION: u64 = 2;

/// Block cache shared by all families.
const BLOCK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Memtable size per family. Small memtables are flushed, and their memory and write-ahead
/// log freed for reuse, within seconds under load; RocksDB's 64 MB default kept a node writing
/// into fresh memory and fresh log pages for minutes (the kernel zeroes or allocates each new
/// 4 KB page, and on a VM the host may have to back it first). Devnet figures are in
/// docs/BENCHMARKS.md.
const WRITE_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Write-ahead log kept before the families holding its oldest file are flushed, so that
/// file can be recycled: without a cap, families that take few writes (metadata,
/// certificates) keep every log file alive until they fill their own memtables.
const MAX_TOTAL_WAL_BYTES: u64 = 32 * 1024 * 1024;

/// Write-ahead log files kept for reuse once their data is flushed: rewriting a recycled
/// file's pages needs no fresh page-cache pages, unlike appending to a new file.
const RECYCLED_LOG_FILES: usize = 4;

/// Database-wide options: create what is missing, bounded open files and info logs,
/// background work at low CPU priority ([`super::background`]), a capped and recycled
/// write-ahead log, and table files written with direct I/O when `direct_io` (see
/// [`super::direct_io`]).
pub fn db_options(direct_io: bool) -> Result<Options, rocksdb::Error> {
    let mut opts = Options::default();
    opts.set_env(&super::background::low_priority_env()?);
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_open_files(512);
    opts.set_keep_log_file_num(4);
    opts.increase_parallelism(2);
    // RocksDB's recyclable record format tells a recycled file's old records from new ones,
    // so recovery (point-in-time, the default) stops at the last record written.
    opts.set_recycle_log_file_num(RECYCLED_LOG_FILES);
    opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
    opts.set_use_direct_io_for_flush_and_compaction(direct_io);
    Ok(opts)
}

/// Options every family gets once the database is open (RocksDB takes these through
/// `SetOptions`, not at open time).
///
/// `bottommost_file_compaction_delay`: RocksDB rewrites a file of the bottommost level as soon
/// as no snapshot needs its sequence numbers, only to zero them. The API takes a snapshot for
/// every latest-state read, so each flushed file (all of them while a family has only level
/// 0, i.e. its first few hundred MB) was written twice: a devnet node rewrote its whole 59 MB
/// `jmt_nodes` flush at once. Files younger than an hour are left alone; most are compacted
/// into the next level before then, which zeroes what it can anyway.
pub const AFTER_OPEN_CF_OPTIONS: &[(&str, &str)] = &[("bottommost_file_compaction_delay", "3600")];

/// One descriptor per family, all sharing one LRU block cache, each with an 8 MB memtable
/// ([`WRITE_BUFFER_BYTES`]); point-lookup families get a bloom filter.
pub fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    ALL.iter()
        .map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            let mut opts = Options::default();
            opts.set_block_based_table_factory(&table);
            opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
            ColumnFamilyDescriptor::new(*name, opts)
        })
        .collect()
}

/// A height as a key.
pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// `height ‖ index`: receipts and tx locations.
pub fn tx_position_key(height: u64, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Decode `height ‖ index`.
pub fn decode_tx_position(bytes: &[u8]) -> Result<(u64, u32), LedgerError> {
    let array: [u8; 12] = bytes.try_into().map_err(|_| {
        LedgerError::Corrupt(format!(
            "tx position has {} bytes, expected 12",
            bytes.len()
        ))
    })?;
    let (height, index) = array.split_at(8);
    Ok((be_u64(height)?, be_u32(index)?))
}

/// Decode a stored big-endian u64.
pub fn decode_height(bytes: &[u8], what: &str) -> Result<u64, LedgerError> {
    be_u64(bytes)
        .map_err(|_| LedgerError::Corrupt(format!("{what} has {} bytes, expected 8", bytes.len())))
}

/// `key hash ‖ version`.
pub fn value_key(key_hash: &[u8; 32], version: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(key_hash);
    key[32..].copy_from_slice(&version.to_be_bytes());
    key
}

/// Encode a value-history entry: `0` for a deletion, `1 ‖ value` for a write.
pub fn encode_history_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}

/// Decode a value-history entry.
pub fn decode_history_value(bytes: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
    match bytes.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, value)) => Ok(Some(value.to_vec())),
        _ => Err(LedgerError::Corrupt(
            "value-history entry is neither a tombstone nor a value".into(),
        )),
    }
}

fn be_u64(bytes: &[u8]) -> Result<u64, LedgerError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt("bad u64".into()))?;
    Ok(u64::from_be_bytes(array))
}

fn be_u32(bytes: &[u8]) -> Result<u32, LedgerError> {
    let array: [u8; 4] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt("bad u32".into()))?;
    Ok(u32::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically() {
        assert!(height_key(255) < height_key(256));
        assert!(tx_position_key(1, u32::MAX) < tx_position_key(2, 0));
        assert!(value_key(&[7; 32], 9) < value_key(&[7; 32], 10));
        assert!(value_key(&[7; 32], u64::MAX) < value_key(&[8; 32], 0));
    }

    #[test]
    fn positions_and_history_roundtrip() {
        assert_eq!(
            decode_tx_position(&tx_position_key(42, 7)).ok(),
            Some((42, 7))
        );
        assert!(decode_tx_position(&[1, 2]).is_err());
        assert_eq!(
            decode_history_value(&encode_history_value(None)).ok(),
            Some(None)
        );
        assert_eq!(
            decode_history_value(&encode_history_value(Some(b"v"))).ok(),
            Some(Some(b"v".to_vec()))
        );
        assert_eq!(
            decode_history_value(&encode_history_value(Some(b""))).ok(),
            Some(Some(Vec::new()))
        );
        assert!(decode_history_value(&[]).is_err());
        assert!(decode_history_value(&[0, 1]).is_err());
        assert!(decode_history_value(&[2]).is_err());
    }
}
