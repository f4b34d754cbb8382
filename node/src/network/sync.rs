//! The serving side of block sync: the host's [`BlockSource`] and the limits applied to it.
//!
//! Design choice: the host hands the network an `Arc<dyn BlockSource>` in the config instead of
//! answering `InboundRequest` events itself. Serving then needs nothing from the host's event
//! loop (a busy consensus driver cannot stall a syncing peer, and a forgotten answer cannot leak
//! a response channel). The source is called on tokio's blocking pool, so it may read RocksDB.
//!
//! Invariants:
//! - a `Blocks` request is clamped to `max_blocks_per_response` whatever the peer asks;
//! - a response is cut to the blocks that fit in the response frame limit, in order, so the
//!   requester receives a prefix of the range and asks again from where it stopped; a single
//!   block larger than the limit yields an empty answer and an error log (configuration error:
//!   the frame limit must exceed the maximum block size).

use super::codec::{SyncRequest, SyncResponse};

/// What the node can serve to peers that sync from it. Called from blocking threads.
pub trait BlockSource: Send + Sync + 'static {
    /// Latest committed height (0 before the first block).
    fn status(&self) -> u64;

    /// Up to `max` consecutive encoded (block, commit certificate) pairs from height `from`;
    /// fewer (or none) when the chain is shorter.
    fn blocks(&self, from: u64, max: u32) -> Vec<Vec<u8>>;
}

/// A source with no blocks: status 0, empty ranges. Default of [`super::NetworkConfig`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBlocks;

impl BlockSource for NoBlocks {
    fn status(&self) -> u64 {
        0
    }

    fn blocks(&self, _from: u64, _max: u32) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// Worst-case encoding overhead of one block inside a postcard `Vec<Vec<u8>>` (varint length).
const PER_BLOCK_OVERHEAD: usize = 10;
/// Worst-case overhead of the response envelope (variant tag and outer length).
const ENVELOPE_OVERHEAD: usize = 16;

/// Limits applied when serving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    pub(crate) max_blocks_per_response: u32,
    pub(crate) max_response_bytes: usize,
}

/// Answers `request` from `source` within `limits`.
pub(crate) fn serve(
    source: &dyn BlockSource,
    request: &SyncRequest,
    limits: ServeLimits,
) -> SyncResponse {
    match *request {
        SyncRequest::Status => SyncResponse::Status {
            height: source.status(),
        },
        SyncRequest::Blocks { from, max } => {
            let wanted = max.min(limits.max_blocks_per_response);
            if wanted == 0 {
                return SyncResponse::Blocks(Vec::new());
            }
            let mut blocks = source.blocks(from, wanted);
            blocks.truncate(wanted as usize);
            let budget = limits.max_response_bytes.saturating_sub(ENVELOPE_OVERHEAD);
            let mut used = 0usize;
            let fitting = blocks
                .iter()
                .take_while(|block| {
                    used = used.saturating_add(block.len() + PER_BLOCK_OVERHEAD);
                    used <= budget
                })
                .count();
            if fitting < blocks.len() {
                if fitting == 0 {
                    tracing::error!(
                        from,
                        bytes = blocks.first().map_or(0, Vec::len),
                        limit = limits.max_response_bytes,
                        "block larger than the sync response limit; raise max_sync_response_bytes"
                    );
                } else {
                    tracing::debug!(from, sent = fitting, "sync response cut to the frame limit");
                }
                blocks.truncate(fitting);
            }
            SyncResponse::Blocks(blocks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heights 1..=10, each block `size` bytes of its height.
    struct Chain {
        size: usize,
    }

    impl BlockSource for Chain {
        fn status(&self) -> u64 {
            10
        }
        fn blocks(&self, from: u64, max: u32) -> Vec<Vec<u8>> {
            (from..=10)
                .take(max as usize)
                .map(|height| vec![height as u8; self.size])
                .collect()
        }
    }

    const LIMITS: ServeLimits = ServeLimits {
        max_blocks_per_response: 4,
        max_response_bytes: 1024,
    };

    #[test]
    fn status_and_clamped_ranges() {
        let chain = Chain { size: 8 };
        assert_eq!(
            serve(&chain, &SyncRequest::Status, LIMITS),
            SyncResponse::Status { height: 10 }
        );
        let SyncResponse::Blocks(blocks) =
            serve(&chain, &SyncRequest::Blocks { from: 3, max: 100 }, LIMITS)
        else {
            panic!("blocks expected");
        };
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[0][0], 3);
        assert_eq!(
            serve(&chain, &SyncRequest::Blocks { from: 3, max: 0 }, LIMITS),
            SyncResponse::Blocks(Vec::new())
        );
    }

    #[test]
    fn responses_are_cut_to_the_frame_limit() {
        let chain = Chain { size: 400 };
        let SyncResponse::Blocks(blocks) =
            serve(&chain, &SyncRequest::Blocks { from: 1, max: 4 }, LIMITS)
        else {
            panic!("blocks expected");
        };
        assert_eq!(
            blocks.len(),
            2,
            "two 400-byte blocks fit in 1 KiB, three do not"
        );
        let encoded = postcard::to_allocvec(&SyncResponse::Blocks(blocks)).expect("encodes");
        assert!(encoded.len() <= LIMITS.max_response_bytes);

        let huge = Chain { size: 2048 };
        assert_eq!(
            serve(&huge, &SyncRequest::Blocks { from: 1, max: 4 }, LIMITS),
            SyncResponse::Blocks(Vec::new())
        );
    }
}
