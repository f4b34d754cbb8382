//! The replay's last stage: state roots and the scratch store, on a thread of their own.
//!
//! The executor ([`super::replay`]) re-executes block h+1 while this stage computes block h's
//! Jellyfish root (`Store::prepare`), compares it with the header, and writes the block to the
//! scratch store (`Store::commit`). The executor reads the state through [`PendingState`]: the
//! store's latest committed state with the changes of the blocks still queued here on top.
//!
//! Invariants:
//! - Blocks reach the store in chain order, each prepared on its parent's committed state.
//! - At most [`QUEUE`] blocks wait here, so the executor runs at most that far ahead and
//!   memory stays bounded.
//! - A discrepancy found here is at a lower height than anything the executor is working on,
//!   so [`RootStage::finish`] reports it in preference to the executor's own error: the replay
//!   still stops at the first discrepancy in chain order.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use gongzhi_ledger::store::LatestState;
use gongzhi_ledger::{
    Block, CommitCertificate, LedgerError, Receipt, StateChanges, StateReader, Store,
};

use super::error::ReplayError;

/// Blocks that may wait for their root.
pub const QUEUE: usize = 2;

/// One re-executed block on its way to the store.
#[derive(Debug)]
pub struct RootJob {
    /// The block (its header carries the root to compare).
    pub block: Block,
    /// Its commit certificate (stored with it).
    pub certificate: CommitCertificate,
    /// The receipts re-execution produced (equal to the exported ones, already compared).
    pub receipts: Vec<Receipt>,
    /// The state changes re-execution produced.
    pub changes: Arc<StateChanges>,
}

/// Seconds this stage spent per phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct RootTimes {
    /// `Store::prepare`.
    pub state_root: f64,
    /// `Store::commit`.
    pub commit: f64,
}

/// The running stage.
#[derive(Debug)]
pub struct RootStage {
    jobs: Option<SyncSender<RootJob>>,
    errors: Receiver<ReplayError>,
    worker: Option<JoinHandle<RootTimes>>,
    /// Changes of blocks sent but maybe not yet committed, oldest first.
    pending: VecDeque<(u64, Arc<StateChanges>)>,
    scratch: String,
}

impl RootStage {
    /// Start the stage's thread on `store` (the scratch store at `scratch`).
    pub fn start(store: Arc<Store>, scratch: String) -> Result<RootStage, ReplayError> {
        let (jobs, inbox) = mpsc::sync_channel::<RootJob>(QUEUE);
        let (report, errors) = mpsc::channel();
        let path = scratch.clone();
        let worker = std::thread::Builder::new()
            .name("replay-roots".into())
            .spawn(move || work(&store, &path, &inbox, &report))
            .map_err(|e| ReplayError::Worker(format!("cannot start the state-root thread: {e}")))?;
        Ok(RootStage {
            jobs: Some(jobs),
            errors,
            worker: Some(worker),
            pending: VecDeque::new(),
            scratch,
        })
    }

    /// Queue a block; waits while [`QUEUE`] blocks are already queued. Returns the stage's
    /// error if it has already failed.
    pub fn send(&mut self, job: RootJob) -> Result<(), ReplayError> {
        self.pending
            .push_back((job.block.header.height, job.changes.clone()));
        let sent = match self.jobs.as_ref() {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            // The thread stopped: it reported why.
            return Err(self
                .failure()
                .unwrap_or_else(|| ReplayError::Worker("the state-root thread stopped".into())));
        }
        self.failure().map_or(Ok(()), Err)
    }

    /// The stage's error, if it failed.
    pub fn failure(&self) -> Option<ReplayError> {
        self.errors.try_recv().ok()
    }

    /// The state after every block sent so far: the store's latest committed state with the
    /// changes of queued blocks on top.
    pub fn state<'a>(&'a mut self, store: &'a Store) -> Result<PendingState<'a>, ReplayError> {
        let base = store.latest_state().map_err(|e| self.scratch_error(e))?;
        let committed = base.height();
        while self.pending.front().is_some_and(|(h, _)| *h <= committed) {
            self.pending.pop_front();
        }
        Ok(PendingState {
            base,
            pending: &self.pending,
        })
    }

    fn scratch_error(&self, source: LedgerError) -> ReplayError {
        ReplayError::Scratch {
            path: self.scratch.clone(),
            source: Box::new(source),
        }
    }

    /// Let the queued blocks finish and stop the thread. The stage's error if it had one
    /// (it is at a lower height than any block the executor still held), else its times.
    pub fn finish(&mut self) -> Result<RootTimes, ReplayError> {
        drop(self.jobs.take());
        let times = self
            .worker
            .take()
            .map(|worker| {
                worker
                    .join()
                    .map_err(|_| ReplayError::Worker("the state-root thread panicked".into()))
            })
            .transpose()?
            .unwrap_or_default();
        match self.errors.try_recv() {
            Ok(error) => Err(error),
            Err(_) => Ok(times),
        }
    }
}

impl Drop for RootStage {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The thread: prepare, compare, commit, in order, until the queue closes or a block fails.
fn work(
    store: &Store,
    scratch: &str,
    inbox: &Receiver<RootJob>,
    report: &mpsc::Sender<ReplayError>,
) -> RootTimes {
    let mut times = RootTimes::default();
    let scratch_error = |source: LedgerError| ReplayError::Scratch {
        path: scratch.to_string(),
        source: Box::new(source),
    };
    for job in inbox {
        let header = &job.block.header;
        let phase = Instant::now();
        let prepared = match store.prepare(&job.changes) {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = report.send(scratch_error(e));
                break;
            }
        };
        times.state_root += phase.elapsed().as_secs_f64();
        if prepared.root() != header.state_root {
            let _ = report.send(ReplayError::StateRootMismatch {
                height: header.height,
                header: header.state_root,
                replayed: prepared.root(),
            });
            break;
        }
        let phase = Instant::now();
        if let Err(e) = store.commit(&job.block, &job.certificate, &job.receipts, prepared) {
            let _ = report.send(scratch_error(e));
            break;
        }
        times.commit += phase.elapsed().as_secs_f64();
    }
    times
}

/// The replayed state after the last block sent to the stage (see [`RootStage::state`]).
#[derive(Debug)]
pub struct PendingState<'a> {
    base: LatestState<'a>,
    pending: &'a VecDeque<(u64, Arc<StateChanges>)>,
}

impl StateReader for PendingState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        for (_, changes) in self.pending.iter().rev() {
            if let Some(value) = changes.get(key) {
                return Ok(value.clone());
            }
        }
        self.base.get(key)
    }
}
