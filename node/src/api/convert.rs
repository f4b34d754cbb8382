//! Conversions between domain types and API messages. Signed objects travel as their canonical
//! bytes; readable fields are added next to them for convenience.

use gongzhi_ledger::{Block, Canonical, CommitCertificate, Hash, Header, Outcome, Receipt};
use gongzhi_proto::v1::{BlockHeader, CommittedBlock, TxReceipt};
use tonic::Status;

/// A 32-byte hash from a request field, or `InvalidArgument` naming the field.
pub fn hash_field(bytes: &[u8], field: &str) -> Result<Hash, Status> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("{field} must be 32 bytes, got {}", bytes.len()))
    })?;
    Ok(Hash(array))
}

/// Header fields for display.
pub fn header(header: &Header) -> BlockHeader {
    BlockHeader {
        chain_id: header.chain_id.clone(),
        height: header.height,
        time_ms: header.time.millis(),
        prev_block_hash: header.prev_block_hash.0.to_vec(),
        last_commit_hash: header.last_commit_hash.0.to_vec(),
        tx_root: header.tx_root.0.to_vec(),
        receipts_root: header.receipts_root.0.to_vec(),
        state_root: header.state_root.0.to_vec(),
        validator_set_hash: header.validator_set_hash.0.to_vec(),
        next_validator_set_hash: header.next_validator_set_hash.0.to_vec(),
        proposer: header.proposer.0.to_vec(),
    }
}

/// A committed block with its certificate.
pub fn committed_block(block: &Block, certificate: &CommitCertificate) -> CommittedBlock {
    CommittedBlock {
        block: block.encode(),
        block_hash: block.hash().0.to_vec(),
        header: Some(header(&block.header)),
        tx_count: block.txs.len() as u32,
        commit_certificate: certificate.encode(),
    }
}

/// A receipt with its position.
pub fn receipt(receipt: &Receipt, height: u64, index: u32) -> TxReceipt {
    let mut out = TxReceipt {
        tx_hash: receipt.tx_hash.0.to_vec(),
        height,
        index,
        canonical: receipt.encode(),
        ..TxReceipt::default()
    };
    match &receipt.outcome {
        Outcome::Success { data } => {
            out.success = true;
            out.result = data.clone();
        }
        Outcome::Failure {
            code,
            name,
            message,
        } => {
            out.error_code = *code;
            out.error_name = name.clone();
            out.error_message = message.clone();
        }
    }
    out
}
