//! `--node ADDR`: export from a running node over gRPC (Node `Status`, Ledger `StreamBlocks`
//! and `GetReceipt`), into the same file format as `--home`.
//!
//! The API serves no genesis document, so the auditor passes the genesis file they were given
//! (`--genesis FILE`); it must be the one block 1 points to, which is checked here and again by
//! the replay. The node is not trusted: everything it sends is re-verified by `audit replay`.
//! Invariants: the tip is read once from `Status` (later blocks are left out); one block and its
//! receipts are in memory at a time; receipts are fetched one tx at a time (slow on big chains,
//! where exporting a stopped node's `--home` is faster).

use std::fmt::Display;
use std::path::Path;
use std::time::Instant;

use gongzhi_contracts::Genesis;
use gongzhi_ledger::{Block, Canonical, CommitCertificate, Receipt};
use gongzhi_proto::v1::ledger_client::LedgerClient;
use gongzhi_proto::v1::node_client::NodeClient;
use gongzhi_proto::v1::{GetReceiptRequest, StatusRequest, StreamBlocksRequest};

use super::export::{ExportError, ExportSummary};
use super::format::{AuditBlock, ExportWriter};
use super::progress::Progress;

/// Export the chain served by the node at `addr` (`host:port` or a URL), whose genesis is the
/// file at `genesis_path`, into `out`.
pub fn export_node(
    addr: &str,
    genesis_path: &Path,
    out: &Path,
    progress: &mut Progress,
) -> Result<ExportSummary, ExportError> {
    let genesis = crate::run::load_genesis(genesis_path).map_err(|e| ExportError::Genesis {
        path: genesis_path.to_path_buf(),
        reason: format!("{e:#}"),
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| node_error(addr, "cannot start an async runtime", &e))?;
    runtime.block_on(stream_export(addr, &genesis, genesis_path, out, progress))
}

fn node_error(addr: &str, what: &str, e: &dyn Display) -> ExportError {
    ExportError::Node {
        addr: addr.to_string(),
        reason: format!("{what}: {e}"),
    }
}

async fn stream_export(
    addr: &str,
    genesis: &Genesis,
    genesis_path: &Path,
    out: &Path,
    progress: &mut Progress,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let mut node = NodeClient::connect(url.clone()).await.map_err(|e| {
        node_error(
            addr,
            "cannot connect (is the node running and is this its rpc.listen address?)",
            &e,
        )
    })?;
    let status = node
        .status(StatusRequest {})
        .await
        .map_err(|e| node_error(addr, "Status failed", &e))?
        .into_inner();
    if status.chain_id != genesis.chain_id {
        return Err(node_error(
            addr,
            "wrong genesis file",
            &format!(
                "the node serves chain {:?}, {} is for {:?}",
                status.chain_id,
                genesis_path.display(),
                genesis.chain_id
            ),
        ));
    }
    if status.earliest_height > 1 {
        return Err(node_error(
            addr,
            "history pruned",
            &format!(
                "the node keeps blocks from {} only; export from an archive node",
                status.earliest_height
            ),
        ));
    }
    let latest = status.latest_height;
    let mut ledger = LedgerClient::connect(url)
        .await
        .map_err(|e| node_error(addr, "cannot connect", &e))?;
    let mut stream = ledger
        .stream_blocks(StreamBlocksRequest { from_height: 1 })
        .await
        .map_err(|e| node_error(addr, "StreamBlocks failed", &e))?
        .into_inner();
    progress.start("export", latest);
    let mut writer = ExportWriter::create(out, genesis)?;
    let mut txs = 0u64;
    let mut last_block_hash = genesis.hash();
    for height in 1..=latest {
        let committed = stream
            .message()
            .await
            .map_err(|e| node_error(addr, "StreamBlocks failed", &e))?
            .and_then(|m| m.block)
            .ok_or_else(|| {
                node_error(
                    addr,
                    "StreamBlocks",
                    &format!("the stream ended before block {height}"),
                )
            })?;
        let bad =
            |what: &str, e: &dyn Display| node_error(addr, &format!("block {height}: {what}"), e);
        let block = Block::decode(&committed.block).map_err(|e| bad("undecodable block", &e))?;
        let certificate = CommitCertificate::decode(&committed.commit_certificate)
            .map_err(|e| bad("undecodable certificate", &e))?;
        if block.header.height != height {
            return Err(bad(
                "out of order",
                &format!("the node sent block {}", block.header.height),
            ));
        }
        if height == 1 && block.header.prev_block_hash != genesis.hash() {
            return Err(ExportError::GenesisMismatch {
                file: genesis_path.to_path_buf(),
                file_hash: genesis.hash(),
                store_hash: block.header.prev_block_hash,
            });
        }
        let mut receipts = Vec::with_capacity(block.txs.len());
        for tx in &block.txs {
            let answer = ledger
                .get_receipt(GetReceiptRequest {
                    tx_hash: tx.hash().0.to_vec(),
                })
                .await
                .map_err(|e| bad("GetReceipt failed", &e))?
                .into_inner();
            let canonical = answer.receipt.map(|r| r.canonical).unwrap_or_default();
            receipts.push(Receipt::decode(&canonical).map_err(|e| bad("undecodable receipt", &e))?);
        }
        txs += block.txs.len() as u64;
        last_block_hash = block.hash();
        writer.write_block(&AuditBlock {
            block,
            certificate,
            receipts,
        })?;
        progress.tick(height, txs);
    }
    drop(stream);
    writer.finish()?;
    progress.finish(latest, txs);
    Ok(ExportSummary {
        blocks: latest,
        txs,
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        last_block_hash,
        seconds: started.elapsed().as_secs_f64(),
    })
}
