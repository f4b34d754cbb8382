//! Tx gossip in batches: the wire format of a batch and the publisher-side accumulator.
//!
//! Txs are gossiped many to a message: a node appends every tx it admits to the pending batch
//! and the swarm task publishes the batch when it reaches `max_txs` txs or `max_bytes` bytes,
//! or `interval` after its first tx, whichever comes first. One gossip message then carries
//! tens to hundreds of txs, so per-message costs (ids, framing, per-peer queues) are paid once
//! per batch and receivers can verify the batch's signatures together.
//!
//! Wire format (version 1), all integers big-endian:
//! `version: u8 = 1 ‖ count: u32 ‖ count × (len: u32 ‖ len bytes of one canonical tx)`.
//!
//! Invariants:
//! - decoding rejects an unknown version, an empty batch, more than [`MAX_BATCH_TXS`] txs, an
//!   empty or oversize tx (over [`MAX_BATCH_TX_BYTES`]), a length running past the end, and
//!   trailing bytes — with a typed [`TxBatchError`], never a panic;
//! - nothing is allocated for a declared count or length before the bytes backing it are
//!   there (capacity is bounded by what was received);
//! - [`TxBatcher::push`] never lets a batch outgrow `max_bytes` when encoded: a tx that would
//!   is flushed into the next batch.

use std::time::{Duration, Instant};

/// Version byte of the batch encoding.
pub const TX_BATCH_VERSION: u8 = 1;
/// Most txs a received batch may hold.
pub const MAX_BATCH_TXS: usize = 8192;
/// Largest tx a received batch may hold (the ledger's protocol limit).
pub const MAX_BATCH_TX_BYTES: usize = gongzhi_ledger::tx::MAX_TX_BYTES;
/// Encoded overhead of a batch: version and count.
const HEADER_BYTES: usize = 1 + 4;
/// Encoded overhead of one tx: its length.
const ENTRY_BYTES: usize = 4;

/// Why received batch bytes are not a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxBatchError {
    /// Shorter than the version and count.
    #[error("tx batch of {0} bytes is shorter than its 5-byte header")]
    Truncated(usize),
    /// Version byte not understood.
    #[error(
        "tx batch version {found} is not supported (this node speaks version {TX_BATCH_VERSION})"
    )]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// A batch must carry at least one tx.
    #[error("tx batch is empty")]
    Empty,
    /// More txs than a batch may hold.
    #[error("tx batch declares {count} txs, over the limit of {MAX_BATCH_TXS}")]
    TooManyTxs {
        /// Declared count.
        count: usize,
    },
    /// An entry is empty or over the tx size limit.
    #[error("tx {index} of the batch is {len} bytes; a tx is 1 to {MAX_BATCH_TX_BYTES} bytes")]
    BadTxLength {
        /// Position in the batch.
        index: usize,
        /// Declared length.
        len: usize,
    },
    /// The bytes end before the declared entries do.
    #[error("tx batch ends inside tx {index} (declared {count} txs)")]
    EndsEarly {
        /// Entry being read.
        index: usize,
        /// Declared count.
        count: usize,
    },
    /// Bytes left after the last declared tx.
    #[error("{0} trailing bytes after the last tx of the batch")]
    TrailingBytes(usize),
}

/// Encodes `txs` (canonical tx encodings) as one batch message.
pub fn encode_tx_batch(txs: &[Vec<u8>]) -> Vec<u8> {
    let size = HEADER_BYTES + txs.iter().map(|tx| ENTRY_BYTES + tx.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(TX_BATCH_VERSION);
    out.extend_from_slice(&(txs.len() as u32).to_be_bytes());
    for tx in txs {
        out.extend_from_slice(&(tx.len() as u32).to_be_bytes());
        out.extend_from_slice(tx);
    }
    out
}

/// Decodes a batch message into its txs' encodings (not yet decoded nor verified).
pub fn decode_tx_batch(bytes: &[u8]) -> Result<Vec<Vec<u8>>, TxBatchError> {
    if bytes.len() < HEADER_BYTES {
        return Err(TxBatchError::Truncated(bytes.len()));
    }
    if bytes[0] != TX_BATCH_VERSION {
        return Err(TxBatchError::UnknownVersion { found: bytes[0] });
    }
    let count = read_u32(&bytes[1..HEADER_BYTES]);
    if count == 0 {
        return Err(TxBatchError::Empty);
    }
    if count > MAX_BATCH_TXS {
        return Err(TxBatchError::TooManyTxs { count });
    }
    let mut rest = &bytes[HEADER_BYTES..];
    // Every entry takes at least ENTRY_BYTES + 1 bytes: capacity follows the bytes received.
    let mut txs = Vec::with_capacity(count.min(rest.len() / (ENTRY_BYTES + 1)));
    for index in 0..count {
        if rest.len() < ENTRY_BYTES {
            return Err(TxBatchError::EndsEarly { index, count });
        }
        let len = read_u32(&rest[..ENTRY_BYTES]);
        if len == 0 || len > MAX_BATCH_TX_BYTES {
            return Err(TxBatchError::BadTxLength { index, len });
        }
        rest = &rest[ENTRY_BYTES..];
        if rest.len() < len {
            return Err(TxBatchError::EndsEarly { index, count });
        }
        txs.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(TxBatchError::TrailingBytes(rest.len()));
    }
    Ok(txs)
}

fn read_u32(bytes: &[u8]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_be_bytes(word) as usize
}

/// When the pending batch is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxBatchLimits {
    /// Publish once this many txs wait.
    pub max_txs: usize,
    /// Publish before the encoded batch would exceed this many bytes.
    pub max_bytes: usize,
    /// Publish this long after the first tx of the batch arrived.
    pub interval: Duration,
}

/// The batch being filled by the swarm task.
#[derive(Debug)]
pub(crate) struct TxBatcher {
    limits: TxBatchLimits,
    pending: Vec<Vec<u8>>,
    encoded_bytes: usize,
    deadline: Option<Instant>,
}

impl TxBatcher {
    pub(crate) fn new(limits: TxBatchLimits) -> Self {
        Self {
            limits,
            pending: Vec::new(),
            encoded_bytes: HEADER_BYTES,
            deadline: None,
        }
    }

    /// When the pending batch is due, if anything waits.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Adds `tx`; returns the batches (encoded) that are now complete, in order.
    pub(crate) fn push(&mut self, tx: Vec<u8>, now: Instant) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        let entry = ENTRY_BYTES + tx.len();
        if !self.pending.is_empty() && self.encoded_bytes + entry > self.limits.max_bytes {
            ready.extend(self.take());
        }
        if self.pending.is_empty() {
            self.deadline = Some(now + self.limits.interval);
        }
        self.pending.push(tx);
        self.encoded_bytes += entry;
        if self.pending.len() >= self.limits.max_txs || self.encoded_bytes >= self.limits.max_bytes
        {
            ready.extend(self.take());
        }
        ready
    }

    /// Takes the pending batch (encoded), if any.
    pub(crate) fn take(&mut self) -> Option<Vec<u8>> {
        self.deadline = None;
        if self.pending.is_empty() {
            return None;
        }
        let batch = encode_tx_batch(&self.pending);
        self.pending.clear();
        self.encoded_bytes = HEADER_BYTES;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_txs: usize, max_bytes: usize) -> TxBatchLimits {
        TxBatchLimits {
            max_txs,
            max_bytes,
            interval: Duration::from_millis(10),
        }
    }

    #[test]
    fn batches_roundtrip() {
        let txs = vec![vec![1], vec![2; 300], vec![3; MAX_BATCH_TX_BYTES]];
        assert_eq!(decode_tx_batch(&encode_tx_batch(&txs)), Ok(txs));
    }

    #[test]
    fn garbage_is_rejected_with_its_reason() {
        let good = encode_tx_batch(&[vec![7; 10], vec![8; 20]]);
        assert_eq!(decode_tx_batch(&[]), Err(TxBatchError::Truncated(0)));
        let mut other_version = good.clone();
        other_version[0] = 2;
        assert_eq!(
            decode_tx_batch(&other_version),
            Err(TxBatchError::UnknownVersion { found: 2 })
        );
        assert_eq!(
            decode_tx_batch(&encode_tx_batch(&[])),
            Err(TxBatchError::Empty)
        );
        assert_eq!(
            decode_tx_batch(&good[..good.len() - 1]),
            Err(TxBatchError::EndsEarly { index: 1, count: 2 })
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            decode_tx_batch(&trailing),
            Err(TxBatchError::TrailingBytes(1))
        );
        let empty_tx = encode_tx_batch(&[vec![1], vec![]]);
        assert_eq!(
            decode_tx_batch(&empty_tx),
            Err(TxBatchError::BadTxLength { index: 1, len: 0 })
        );
    }

    #[test]
    fn oversized_counts_and_lengths_are_rejected_before_allocation() {
        // Declares u32::MAX txs in 5 bytes.
        let mut huge_count = vec![TX_BATCH_VERSION];
        huge_count.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_tx_batch(&huge_count),
            Err(TxBatchError::TooManyTxs { .. })
        ));
        // One tx claiming 4 GiB.
        let mut huge_tx = vec![TX_BATCH_VERSION];
        huge_tx.extend_from_slice(&1u32.to_be_bytes());
        huge_tx.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_tx_batch(&huge_tx),
            Err(TxBatchError::BadTxLength { index: 0, .. })
        ));
        let over = encode_tx_batch(&[vec![0; MAX_BATCH_TX_BYTES + 1]]);
        assert!(matches!(
            decode_tx_batch(&over),
            Err(TxBatchError::BadTxLength { index: 0, .. })
        ));
        // Many declared, few present.
        let mut short = vec![TX_BATCH_VERSION];
        short.extend_from_slice(&(MAX_BATCH_TXS as u32).to_be_bytes());
        assert!(matches!(
            decode_tx_batch(&short),
            Err(TxBatchError::EndsEarly { index: 0, .. })
        ));
    }

    #[test]
    fn batcher_flushes_by_count_bytes_and_deadline() {
        let now = Instant::now();
        let mut batcher = TxBatcher::new(limits(3, 1024));
        assert!(batcher.push(vec![1], now).is_empty());
        assert_eq!(batcher.deadline(), Some(now + Duration::from_millis(10)));
        assert!(batcher.push(vec![2], now).is_empty());
        let ready = batcher.push(vec![3], now);
        assert_eq!(ready.len(), 1, "third tx completes the batch");
        assert_eq!(
            decode_tx_batch(&ready[0]),
            Ok(vec![vec![1], vec![2], vec![3]])
        );
        assert_eq!(batcher.deadline(), None);

        // By bytes: header 5 + (4 + 40) + (4 + 40) > 90, so the second tx starts a new batch.
        let mut batcher = TxBatcher::new(limits(100, 90));
        assert!(batcher.push(vec![1; 40], now).is_empty());
        let ready = batcher.push(vec![2; 40], now);
        assert_eq!(ready.len(), 1);
        assert!(ready[0].len() <= 90);
        assert_eq!(decode_tx_batch(&ready[0]), Ok(vec![vec![1; 40]]));
        let rest = batcher.take().expect("second tx pending");
        assert_eq!(decode_tx_batch(&rest), Ok(vec![vec![2; 40]]));
        assert_eq!(batcher.take(), None);
    }
}
