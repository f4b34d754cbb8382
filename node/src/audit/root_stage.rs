//! The replay's last stage: state roots, on a thread of their own.
//!
//! The executor ([`super::replay`]) re-executes block h+1 while this stage applies block h's
//! changes to its in-memory [`RootTree`] and compares the root with block h's header. The
//! executor keeps the flat state itself; this stage only hashes.
//!
//! Invariants:
//! - Blocks' changes reach the tree in chain order, each on top of its parent's state.
//! - At most [`QUEUE`] blocks wait here, so the executor runs at most that far ahead and
//!   memory stays bounded.
//! - A discrepancy found here is at a lower height than anything the executor is working on,
//!   so [`RootStage::finish`] reports it in preference to the executor's own error: the replay
//!   still stops at the first discrepancy in chain order.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use gongzhi_ledger::store::RootTree;
use gongzhi_ledger::{Hash, StateChanges};

use super::error::ReplayError;

/// Blocks that may wait for their root.
pub const QUEUE: usize = 4;

/// One re-executed block's changes and the root its header promises.
#[derive(Debug)]
pub struct RootJob {
    /// The block's height.
    pub height: u64,
    /// The state root in the block's header.
    pub header_root: Hash,
    /// The state changes re-execution produced.
    pub changes: StateChanges,
}

/// The running stage.
#[derive(Debug)]
pub struct RootStage {
    jobs: Option<SyncSender<RootJob>>,
    errors: Receiver<ReplayError>,
    worker: Option<JoinHandle<f64>>,
}

impl RootStage {
    /// Start the stage's thread on `tree`, the tree of the state before the first block sent.
    pub fn start(tree: RootTree) -> Result<RootStage, ReplayError> {
        let (jobs, inbox) = mpsc::sync_channel::<RootJob>(QUEUE);
        let (report, errors) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("replay-roots".into())
            .spawn(move || work(tree, &inbox, &report))
            .map_err(|e| ReplayError::Worker(format!("cannot start the state-root thread: {e}")))?;
        Ok(RootStage {
            jobs: Some(jobs),
            errors,
            worker: Some(worker),
        })
    }

    /// Queue a block; waits while [`QUEUE`] blocks are already queued. Returns the stage's
    /// error if it has already failed.
    pub fn send(&mut self, job: RootJob) -> Result<(), ReplayError> {
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

    /// Let the queued blocks finish and stop the thread. The stage's error if it had one
    /// (it is at a lower height than any block the executor still held), else the seconds it
    /// spent computing roots.
    pub fn finish(&mut self) -> Result<f64, ReplayError> {
        drop(self.jobs.take());
        let seconds = self
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
            Err(_) => Ok(seconds),
        }
    }
}

impl Drop for RootStage {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The thread: apply, compare, in order, until the queue closes or a root differs. Returns the
/// seconds spent hashing.
fn work(mut tree: RootTree, inbox: &Receiver<RootJob>, report: &mpsc::Sender<ReplayError>) -> f64 {
    let mut seconds = 0.0;
    for job in inbox {
        let phase = Instant::now();
        let root = tree.apply(&job.changes);
        seconds += phase.elapsed().as_secs_f64();
        if root != job.header_root {
            let _ = report.send(ReplayError::StateRootMismatch {
                height: job.height,
                header: job.header_root,
                replayed: root,
            });
            break;
        }
    }
    seconds
}
