//! `gongzhi audit replay`: verify an export from genesis, block by block.
//!
//! The state-free checks (decoding, every tx and certificate signature in batches, tx and
//! receipts roots) run on every core in [`super::verify`]; this module is the sequential half,
//! in chain order:
//! 1. the block is the next height and links to the previous block's hash (block 1 to the
//!    genesis hash); its certificate certifies exactly this block; its time increases;
//! 2. the header's validator-set hash and proposer match the set in force, tracked through
//!    committed governance (`validator_set_for_next_block` on the replayed state); both
//!    certificates (this block's and the previous block's, carried in it) have signers in
//!    that height's set holding more than 2/3 of its power;
//! 3. the block is re-executed with the contracts on the replayed state, held in memory
//!    ([`FlatState`]), and every receipt and the next validator-set hash are compared; then
//!    [`super::root_stage`], on its own thread, applies the block's changes to an in-memory
//!    [`RootTree`] and compares the state root while the next block executes.
//!
//! Invariants: the first discrepancy in chain order stops the replay and is returned as a
//! [`ReplayError`] naming the height (and tx index); nothing is trusted from the file that a
//! signature or a recomputation has not confirmed. Memory: the chain's latest state (its values
//! and the shape and hashes of its tree — never its history) plus the bounded pipeline queues;
//! nothing is written to disk.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use gongzhi_consensus::{ValidatorId, ValidatorSet};
use gongzhi_contracts::{
    execute_block_with_hashes, genesis_changes, validator_set_for_next_block, BlockContext, Genesis,
};
use gongzhi_ledger::fast_hash::FastMap;
use gongzhi_ledger::store::RootTree;
use gongzhi_ledger::{
    validator_set_hash, AfterChanges, Block, CommitCertificate, Hash, LedgerError, Outcome,
    Receipt, StateChanges, StateReader, Timestamp,
};
use serde::Serialize;

use super::error::ReplayError;
use super::format::ExportReader;
use super::progress::Progress;
use super::root_stage::{PackedChanges, RootJob, RootStage};
use super::verify::{CheckedBlock, Item, Pipeline};

/// How to run a replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Checking threads; 0 = one per core.
    pub threads: usize,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// Refuse an export whose genesis does not hash to this.
    pub trusted_genesis: Option<Hash>,
}

/// What a successful replay verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplaySummary {
    /// Chain id.
    pub chain_id: String,
    /// Hash of the genesis document.
    pub genesis_hash: String,
    /// Blocks verified.
    pub blocks: u64,
    /// Txs verified and re-executed.
    pub txs: u64,
    /// Of those, txs whose receipt is a failure.
    pub failed_txs: u64,
    /// Signatures verified (txs and certificates).
    pub signatures: u64,
    /// Hash of the last block.
    pub last_block_hash: String,
    /// State root after the last block.
    pub final_state_root: String,
    /// Times the validator set changed.
    pub validator_set_changes: u64,
    /// Checking threads used.
    pub threads: usize,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Txs per second of wall time.
    pub txs_per_second: f64,
    /// Where the sequential executor spent its time, in seconds.
    pub executor: ExecutorTimes,
}

/// Time the sequential executor spent per phase (the rest of the wall time is reading and
/// checking in parallel, which overlaps with these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ExecutorTimes {
    /// Waiting for the workers' signature and root checks.
    pub waiting_for_checks: f64,
    /// Waiting for the state-root stage to take the next block (it is the slower stage).
    pub waiting_for_state_root: f64,
    /// Re-executing txs with the contracts.
    pub execution: f64,
    /// Computing the Jellyfish Merkle roots, on the state-root thread.
    pub state_root: f64,
}

/// Something that looks at every replayed block (the report builder).
pub trait ReplayObserver {
    /// Called after block `block` was verified and committed; `state` is the state after it.
    fn observe(
        &mut self,
        block: &Block,
        receipts: &[Receipt],
        state: &dyn StateReader,
    ) -> Result<(), ReplayError>;

    /// Called once after the last block verified; `state` is the final state.
    fn finish(&mut self, _state: &dyn StateReader) -> Result<(), ReplayError> {
        Ok(())
    }
}

/// An observer that does nothing.
#[derive(Debug, Default)]
pub struct NoObserver;

impl ReplayObserver for NoObserver {
    fn observe(
        &mut self,
        _: &Block,
        _: &[Receipt],
        _: &dyn StateReader,
    ) -> Result<(), ReplayError> {
        Ok(())
    }
}

/// Replay the export file at `path`.
pub fn replay_file(
    path: &Path,
    options: &ReplayOptions,
    observer: &mut dyn ReplayObserver,
) -> Result<ReplaySummary, ReplayError> {
    replay(ExportReader::open(path)?, options, observer)
}

/// Replay an export from any reader.
pub fn replay<R: Read + Send + 'static>(
    reader: ExportReader<R>,
    options: &ReplayOptions,
    observer: &mut dyn ReplayObserver,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let genesis = reader.genesis().clone();
    genesis
        .validate()
        .map_err(|e| ReplayError::InvalidGenesis {
            reason: e.to_string(),
        })?;
    let genesis_hash = genesis.hash();
    if let Some(expected) = options.trusted_genesis {
        if expected != genesis_hash {
            return Err(ReplayError::UntrustedGenesis {
                expected,
                found: genesis_hash,
            });
        }
    }
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let (mut executor, tree) = Executor::new(&genesis)?;
    let mut stage = RootStage::start(tree)?;
    let pipeline = Pipeline::start(reader, genesis.chain_id.clone(), threads, 4 * threads + 4);
    let mut progress = Progress::new(options.progress);
    progress.start("replay", 0);
    let result = run(
        &pipeline,
        &mut executor,
        &mut stage,
        observer,
        &mut progress,
    );
    pipeline.stop();
    // The stage's error, if any, is at a lower height than the executor's.
    executor.times.state_root = stage.finish()?;
    result?;
    observer.finish(&executor.state)?;
    progress.finish(executor.height, executor.txs);
    let seconds = started.elapsed().as_secs_f64();
    Ok(ReplaySummary {
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis_hash.to_hex(),
        blocks: executor.height,
        txs: executor.txs,
        failed_txs: executor.failed_txs,
        signatures: executor.signatures,
        last_block_hash: executor.prev_hash.to_hex(),
        final_state_root: executor.state_root.to_hex(),
        validator_set_changes: executor.set_changes,
        threads,
        seconds,
        txs_per_second: executor.txs as f64 / seconds.max(1e-9),
        executor: executor.times,
    })
}

fn run(
    pipeline: &Pipeline,
    executor: &mut Executor,
    stage: &mut RootStage,
    observer: &mut dyn ReplayObserver,
    progress: &mut Progress,
) -> Result<(), ReplayError> {
    loop {
        let item = pipeline
            .items
            .recv()
            .map_err(|_| ReplayError::Worker("the reader stopped before the trailer".into()))?;
        match item {
            Item::Block(job) => {
                let waiting = Instant::now();
                let result = job.wait();
                executor.times.waiting_for_checks += waiting.elapsed().as_secs_f64();
                let checked = match result {
                    Ok(checked) => checked,
                    // A gap is a clearer explanation than a later block's content error.
                    Err(e) => return Err(executor.explain(e)),
                };
                executor.apply(checked, stage, observer)?;
                progress.tick(executor.height, executor.txs);
            }
            Item::End(trailer) => {
                if trailer.blocks != executor.height
                    || trailer.last_block_hash != executor.prev_hash
                {
                    return Err(ReplayError::TrailerMismatch {
                        trailer_blocks: trailer.blocks,
                        trailer_hash: trailer.last_block_hash,
                        blocks: executor.height,
                        last_hash: executor.prev_hash,
                    });
                }
                return Ok(());
            }
            Item::Failed(e) => return Err(e),
        }
    }
}

/// The replayed state: the latest value of every key, in memory. Looked up, never iterated,
/// so its hash map cannot leak an order into results.
#[derive(Debug, Default)]
pub struct FlatState(FastMap<Vec<u8>, Vec<u8>>);

impl FlatState {
    /// Apply a block's changes, taking their buffers: an overwritten key keeps its stored
    /// key and takes the new value's buffer, and nothing is copied.
    pub fn apply(&mut self, changes: StateChanges) {
        for (key, value) in changes {
            match value {
                Some(value) => match self.0.get_mut(key.as_slice()) {
                    Some(held) => *held = value,
                    None => {
                        self.0.insert(key, value);
                    }
                },
                None => {
                    self.0.remove(&key);
                }
            }
        }
    }
}

impl StateReader for FlatState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.0.get(key).cloned())
    }

    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        f(self.0.get(key).map(Vec::as_slice));
        Ok(())
    }
}

/// The sequential verifier: replayed chain state and the validator sets in force.
struct Executor {
    state: FlatState,
    chain_id: String,
    genesis_hash: Hash,
    height: u64,
    prev_hash: Hash,
    prev_time: Timestamp,
    state_root: Hash,
    /// Set that commits `height + 1`.
    current_set: ValidatorSet,
    /// Set that committed `height` (checks the certificate carried by the next block).
    previous_set: ValidatorSet,
    txs: u64,
    failed_txs: u64,
    signatures: u64,
    set_changes: u64,
    times: ExecutorTimes,
}

impl Executor {
    /// The executor at genesis, and the tree of the genesis state.
    fn new(genesis: &Genesis) -> Result<(Executor, RootTree), ReplayError> {
        let changes = genesis_changes(genesis).map_err(|e| ReplayError::InvalidGenesis {
            reason: e.to_string(),
        })?;
        let mut tree = RootTree::new();
        let root = tree.apply(&changes);
        let mut state = FlatState::default();
        state.apply(changes);
        let set = genesis
            .validator_set()
            .map_err(|e| ReplayError::InvalidGenesis {
                reason: e.to_string(),
            })?;
        let executor = Executor {
            state,
            chain_id: genesis.chain_id.clone(),
            genesis_hash: genesis.hash(),
            height: 0,
            prev_hash: genesis.hash(),
            prev_time: genesis.time(),
            state_root: root,
            previous_set: set.clone(),
            current_set: set,
            txs: 0,
            failed_txs: 0,
            signatures: 0,
            set_changes: 0,
            times: ExecutorTimes::default(),
        };
        Ok((executor, tree))
    }

    /// A worker's error for the next record; a record for another height is reported as a gap.
    fn explain(&self, error: ReplayError) -> ReplayError {
        match error.height() {
            Some(found)
                if found != self.height + 1 && !matches!(error, ReplayError::HeightGap { .. }) =>
            {
                ReplayError::HeightGap {
                    expected: self.height + 1,
                    found,
                }
            }
            _ => error,
        }
    }

    fn apply(
        &mut self,
        checked: CheckedBlock,
        stage: &mut RootStage,
        observer: &mut dyn ReplayObserver,
    ) -> Result<(), ReplayError> {
        if let Some(error) = stage.failure() {
            return Err(error);
        }
        let CheckedBlock {
            record,
            hash,
            tx_hashes,
        } = checked;
        let block = &record.block;
        let header = &block.header;
        let height = header.height;
        self.check_links(block, &record.certificate, hash)?;
        let set_hash = validator_set_hash(&self.current_set);
        if header.validator_set_hash != set_hash {
            return Err(ReplayError::HeaderMismatch {
                height,
                field: "validator_set_hash",
                header: header.validator_set_hash,
                replayed: set_hash,
                source_of_truth: "the validator set tracked from governance",
            });
        }
        if self
            .current_set
            .get(&ValidatorId(header.proposer.0))
            .is_none()
        {
            return Err(ReplayError::ProposerNotValidator {
                height,
                proposer: header.proposer,
            });
        }
        check_quorum(
            &record.certificate,
            &self.current_set,
            "the commit certificate",
        )?;
        if let Some(last) = &block.last_commit {
            check_quorum(
                last,
                &self.previous_set,
                "the certificate carried in the next block",
            )?;
        }

        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height,
            time: header.time,
        };
        let phase = Instant::now();
        let outcome = execute_block_with_hashes(&self.state, &ctx, &block.txs, &tx_hashes)
            .map_err(|e| ReplayError::Execution {
                height,
                reason: e.to_string(),
            })?;
        self.times.execution += phase.elapsed().as_secs_f64();
        compare_receipts(block, &record.receipts, &outcome.receipts)?;
        let after = AfterChanges {
            base: &self.state,
            changes: &outcome.changes,
        };
        let next_set =
            validator_set_for_next_block(&after).map_err(|e| ReplayError::Execution {
                height,
                reason: e.to_string(),
            })?;
        let next_hash = validator_set_hash(&next_set);
        if header.next_validator_set_hash != next_hash {
            return Err(ReplayError::HeaderMismatch {
                height,
                field: "next_validator_set_hash",
                header: header.next_validator_set_hash,
                replayed: next_hash,
                source_of_truth: "re-execution",
            });
        }
        observer.observe(block, &outcome.receipts, &after)?;

        self.txs += block.txs.len() as u64;
        self.failed_txs += outcome.receipts.iter().filter(|r| !r.is_success()).count() as u64;
        self.signatures += (block.txs.len()
            + record.certificate.signatures.len()
            + block.last_commit.as_ref().map_or(0, |c| c.signatures.len()))
            as u64;
        if next_hash != set_hash {
            self.set_changes += 1;
        }
        self.height = height;
        self.prev_hash = hash;
        self.prev_time = header.time;
        // Promised by the header; the stage checks it (`finish` fails the replay otherwise).
        self.state_root = header.state_root;
        self.previous_set = std::mem::replace(&mut self.current_set, next_set);

        let packed = PackedChanges::pack(&outcome.changes);
        self.state.apply(outcome.changes);
        let waiting = Instant::now();
        stage.send(RootJob {
            height,
            header_root: header.state_root,
            changes: packed,
        })?;
        self.times.waiting_for_state_root += waiting.elapsed().as_secs_f64();
        Ok(())
    }

    /// Height, link to the previous block, certificate target, time.
    fn check_links(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        hash: Hash,
    ) -> Result<(), ReplayError> {
        let header = &block.header;
        let height = header.height;
        if height != self.height + 1 {
            return Err(ReplayError::HeightGap {
                expected: self.height + 1,
                found: height,
            });
        }
        if header.prev_block_hash != self.prev_hash {
            return Err(if height == 1 {
                ReplayError::GenesisMismatch {
                    block_prev: header.prev_block_hash,
                    genesis: self.genesis_hash,
                }
            } else {
                ReplayError::BrokenLink {
                    height,
                    expected: self.prev_hash,
                    found: header.prev_block_hash,
                }
            });
        }
        if certificate.height != height || certificate.block_hash != hash {
            return Err(ReplayError::CertificateWrongBlock {
                height,
                block_hash: hash,
                certified_height: certificate.height,
                certified_hash: certificate.block_hash,
            });
        }
        if header.time <= self.prev_time {
            return Err(ReplayError::TimeNotIncreasing {
                height,
                time: header.time,
                previous: self.prev_time,
            });
        }
        Ok(())
    }
}

/// Signers sorted and distinct, all in `set`, holding more than 2/3 of its power. (Their
/// signatures were verified by a worker.)
pub fn check_quorum(
    certificate: &CommitCertificate,
    set: &ValidatorSet,
    what: &'static str,
) -> Result<u64, ReplayError> {
    let height = certificate.height;
    let mut signed_power: u64 = 0;
    let mut previous = None;
    for signature in &certificate.signatures {
        let signer = signature.validator;
        if previous.is_some_and(|p| p >= signer) {
            return Err(ReplayError::CertificateDuplicateSigner {
                height,
                what,
                signer,
            });
        }
        previous = Some(signer);
        let Some(validator) = set.get(&ValidatorId(signer.0)) else {
            let validators: Vec<String> = set
                .validators()
                .iter()
                .map(|v| hex::encode(&v.id.0[..6]))
                .collect();
            return Err(ReplayError::CertificateSignerNotValidator {
                height,
                what,
                signer,
                validators: validators.join(", "),
            });
        };
        signed_power = signed_power.saturating_add(validator.power);
    }
    let total_power = set.total_power();
    if u128::from(signed_power) * 3 <= u128::from(total_power) * 2 {
        return Err(ReplayError::CertificateShort {
            height,
            what,
            signed_power,
            total_power,
        });
    }
    Ok(signed_power)
}

fn compare_receipts(
    block: &Block,
    recorded: &[Receipt],
    replayed: &[Receipt],
) -> Result<(), ReplayError> {
    let height = block.header.height;
    for (tx_index, (recorded, replayed)) in recorded.iter().zip(replayed).enumerate() {
        if recorded != replayed {
            return Err(ReplayError::ReceiptMismatch {
                height,
                tx_index,
                tx_hash: replayed.tx_hash,
                recorded: describe(recorded),
                replayed: describe(replayed),
            });
        }
    }
    if recorded.len() != replayed.len() {
        return Err(ReplayError::InvalidBlock {
            height,
            reason: format!(
                "{} receipts exported for {} txs",
                recorded.len(),
                replayed.len()
            ),
        });
    }
    // The replayed receipts equal the exported ones, which a worker checked against the
    // header's receipts root (`RecordedReceiptsAltered` otherwise): the root holds for the
    // replayed receipts without hashing them again.
    Ok(())
}

/// A receipt for a person: success with its data, or the failure code and message.
pub fn describe(receipt: &Receipt) -> String {
    let tx = &receipt.tx_hash.to_hex()[..12];
    match &receipt.outcome {
        Outcome::Success { data } => match gongzhi_contracts::CallOutput::from_data(data) {
            Ok(output) => format!("success {output:?} (tx {tx}…)"),
            Err(_) => format!("success with data {} (tx {tx}…)", hex::encode(data)),
        },
        Outcome::Failure {
            code,
            name,
            message,
        } => format!("failure {name} ({code}): {message} (tx {tx}…)"),
    }
}
