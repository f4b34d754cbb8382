//! The parallel half of a replay: checks of one block that need no chain state, run on every
//! core while the executor works through earlier blocks.
//!
//! For each block record a worker decodes it, checks every tx's chain id, verifies every tx
//! signature and every certificate signature (the block's own certificate and the previous
//! block's, carried in it) in one `verify_batch`, then the tx root, last-commit hash and the
//! exported receipts against the header. Membership and the 2/3 threshold need the validator
//! set, which depends on executed governance: the executor checks those.
//!
//! Pipeline invariants: the reader thread hands out records in file order, each as a [`Job`];
//! the executor takes jobs in the same order and waits on each job's result, so errors are
//! reported in chain order whichever worker finds them first; channels are bounded, so at most
//! `queue` decoded blocks are in memory.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use gongzhi_ledger::crypto::{self, SignedMessage};
use gongzhi_ledger::{Block, CommitCertificate, Hash, LedgerError};

use super::error::ReplayError;
use super::format::{decode_block, AuditBlock, BlockRecord, ExportReader, Trailer};

/// A block that passed the state-free checks.
#[derive(Debug)]
pub struct CheckedBlock {
    /// The decoded record.
    pub record: AuditBlock,
    /// Its hash.
    pub hash: Hash,
    /// The hash of each of its txs, in order.
    pub tx_hashes: Vec<Hash>,
}

/// One record travelling through the pipeline.
#[derive(Debug)]
pub struct Job {
    bytes: Mutex<Option<(u64, Vec<u8>)>>,
    result: Mutex<Option<Result<CheckedBlock, ReplayError>>>,
    ready: Condvar,
}

impl Job {
    /// Wait until a worker has checked this record and take the result.
    pub fn wait(&self) -> Result<CheckedBlock, ReplayError> {
        let mut slot = self.result.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = slot.take() {
                return result;
            }
            slot = self
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn run(&self, chain_id: &str) {
        let taken = self
            .bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let result = match taken {
            Some((index, bytes)) => check_record(index, &bytes, chain_id),
            None => Err(ReplayError::Worker("a record was checked twice".into())),
        };
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
        self.ready.notify_all();
    }
}

/// What the executor receives, in file order.
#[derive(Debug)]
pub enum Item {
    /// A block record being checked.
    Block(Arc<Job>),
    /// The trailer.
    End(Trailer),
    /// The file could not be read further.
    Failed(ReplayError),
}

/// The running reader and workers.
#[derive(Debug)]
pub struct Pipeline {
    /// Items in file order.
    pub items: Receiver<Item>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Pipeline {
    /// Start a reader thread over `reader` and `workers` checking threads.
    pub fn start<R: Read + Send + 'static>(
        mut reader: ExportReader<R>,
        chain_id: String,
        workers: usize,
        queue: usize,
    ) -> Pipeline {
        let (item_tx, items) = sync_channel::<Item>(queue);
        let (work_tx, work_rx) = sync_channel::<Arc<Job>>(queue);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let mut threads = Vec::new();
        for _ in 0..workers.max(1) {
            let work_rx = Arc::clone(&work_rx);
            let chain_id = chain_id.clone();
            threads.push(thread::spawn(move || worker(&work_rx, &chain_id)));
        }
        threads.push(thread::spawn(move || {
            read_records(&mut reader, &item_tx, &work_tx)
        }));
        Pipeline { items, threads }
    }

    /// Stop: drop the receiving end (the reader stops at its next send) and join.
    pub fn stop(self) {
        drop(self.items);
        for handle in self.threads {
            // A panicked worker has already delivered (or failed to deliver) its result.
            let _ = handle.join();
        }
    }
}

fn read_records<R: Read>(
    reader: &mut ExportReader<R>,
    items: &SyncSender<Item>,
    work: &SyncSender<Arc<Job>>,
) {
    loop {
        match reader.next_record() {
            Ok(BlockRecord::Block { index, bytes }) => {
                let job = Arc::new(Job {
                    bytes: Mutex::new(Some((index, bytes))),
                    result: Mutex::new(None),
                    ready: Condvar::new(),
                });
                if work.send(Arc::clone(&job)).is_err() || items.send(Item::Block(job)).is_err() {
                    return;
                }
            }
            Ok(BlockRecord::End(trailer)) => {
                let _ = items.send(Item::End(trailer));
                return;
            }
            Err(e) => {
                let _ = items.send(Item::Failed(e.into()));
                return;
            }
        }
    }
}

fn worker(work: &Mutex<Receiver<Arc<Job>>>, chain_id: &str) {
    loop {
        let job = {
            let receiver = work.lock().unwrap_or_else(PoisonError::into_inner);
            receiver.recv()
        };
        match job {
            Ok(job) => job.run(chain_id),
            Err(_) => return,
        }
    }
}

/// Which signature of a block a batch item is.
#[derive(Debug, Clone, Copy)]
enum Signer {
    Tx(usize),
    Certificate(usize),
    LastCommit(usize),
}

/// Every state-free check of one record, in the order errors are reported.
pub fn check_record(index: u64, bytes: &[u8], chain_id: &str) -> Result<CheckedBlock, ReplayError> {
    let record = decode_block(index, bytes)?;
    let block = &record.block;
    let height = block.header.height;
    if block.header.chain_id != chain_id {
        return Err(ReplayError::WrongChain {
            height,
            expected: chain_id.to_string(),
            found: block.header.chain_id.clone(),
        });
    }
    for (tx_index, tx) in block.txs.iter().enumerate() {
        if tx.body.chain_id != chain_id {
            return Err(ReplayError::TxWrongChain {
                height,
                tx_index,
                expected: chain_id.to_string(),
                found: tx.body.chain_id.clone(),
            });
        }
    }
    verify_signatures(&record, chain_id)?;
    let (tx_hashes, tx_root) = Block::compute_tx_hashes_and_root(&block.txs);
    block
        .validate_basic_with_tx_root(chain_id, tx_root)
        .map_err(|e| structural(height, e))?;
    let receipts_root = Block::compute_receipts_root(&record.receipts);
    if receipts_root != block.header.receipts_root {
        return Err(ReplayError::RecordedReceiptsAltered {
            height,
            header: block.header.receipts_root,
            found: receipts_root,
        });
    }
    let hash = block.hash();
    Ok(CheckedBlock {
        record,
        hash,
        tx_hashes,
    })
}

fn verify_signatures(record: &AuditBlock, chain_id: &str) -> Result<(), ReplayError> {
    let block = &record.block;
    let cert_count = record.certificate.signatures.len();
    let last_count = block.last_commit.as_ref().map_or(0, |c| c.signatures.len());
    let mut items: Vec<SignedMessage> =
        Vec::with_capacity(block.txs.len() + cert_count + last_count);
    let mut who: Vec<Signer> = Vec::with_capacity(items.capacity());
    for (i, tx) in block.txs.iter().enumerate() {
        items.push(tx.signed_message());
        who.push(Signer::Tx(i));
    }
    items.extend(record.certificate.signed_messages(chain_id));
    who.extend((0..cert_count).map(Signer::Certificate));
    if let Some(last) = &block.last_commit {
        items.extend(last.signed_messages(chain_id));
        who.extend((0..last_count).map(Signer::LastCommit));
    }
    let Err(e) = crypto::verify_batch(&items) else {
        return Ok(());
    };
    let height = block.header.height;
    let bad = match e {
        LedgerError::BadSignatureInBatch { index, .. } => index,
        other => {
            return Err(ReplayError::InvalidBlock {
                height,
                reason: other.to_string(),
            })
        }
    };
    let cert_signer =
        |cert: &CommitCertificate, i: usize| cert.signatures.get(i).map(|s| s.validator);
    Err(match who.get(bad) {
        Some(Signer::Tx(i)) => {
            let tx = &block.txs[*i];
            ReplayError::TxBadSignature {
                height,
                tx_index: *i,
                tx_hash: tx.hash(),
                signer: tx.body.signer,
            }
        }
        Some(Signer::Certificate(i)) => match cert_signer(&record.certificate, *i) {
            Some(signer) => ReplayError::CertificateBadSignature {
                height: record.certificate.height,
                what: "the commit certificate",
                signer,
            },
            None => ReplayError::Worker("signature index out of range".into()),
        },
        Some(Signer::LastCommit(i)) => {
            match block.last_commit.as_ref().and_then(|c| cert_signer(c, *i)) {
                Some(signer) => ReplayError::CertificateBadSignature {
                    height: height.saturating_sub(1),
                    what: "the certificate carried in the next block",
                    signer,
                },
                None => ReplayError::Worker("signature index out of range".into()),
            }
        }
        None => ReplayError::Worker("signature index out of range".into()),
    })
}

fn structural(height: u64, e: LedgerError) -> ReplayError {
    match e {
        LedgerError::BlockMismatch {
            field,
            expected,
            found,
            ..
        } => ReplayError::HeaderMismatch {
            height,
            field,
            header: expected,
            replayed: found,
            source_of_truth: "the block's content",
        },
        other => ReplayError::InvalidBlock {
            height,
            reason: other.to_string(),
        },
    }
}
