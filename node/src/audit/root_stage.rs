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
    pub changes: PackedChanges,
}

/// A block's state changes packed into two buffers for the trip to the stage's thread.
///
/// The executor keeps the keys and values of [`StateChanges`] for its flat state and sends
/// copies in one byte buffer: the stage's thread then frees two buffers per block, not the
/// thousands of small ones another thread allocated (such frees are slow, and they were about a
/// tenth of this thread's time).
#[derive(Debug, Default)]
pub struct PackedChanges {
    /// Each change's key and value, back to back.
    bytes: Vec<u8>,
    /// Per change: where its key ends and where its value ends in `bytes` (`None`: deleted).
    ends: Vec<(usize, Option<usize>)>,
}

impl PackedChanges {
    /// A copy of `changes`.
    pub fn pack(changes: &StateChanges) -> PackedChanges {
        let size = changes
            .iter()
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        let mut packed = PackedChanges {
            bytes: Vec::with_capacity(size),
            ends: Vec::with_capacity(changes.len()),
        };
        for (key, value) in changes {
            packed.bytes.extend_from_slice(key);
            let key_end = packed.bytes.len();
            let value_end = value.as_ref().map(|value| {
                packed.bytes.extend_from_slice(value);
                packed.bytes.len()
            });
            packed.ends.push((key_end, value_end));
        }
        packed
    }

    /// The changes, in the order they were packed: each key with its new value (`None`:
    /// deleted).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, value_end)| {
            let key = &self.bytes[start..key_end];
            start = value_end.unwrap_or(key_end);
            (key, value_end.map(|end| &self.bytes[key_end..end]))
        })
    }
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
        let root = tree.apply_pairs(job.changes.iter());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Packing keeps every key, value and deletion, empty ones included, in the map's order,
    /// and the tree gives the same root from the packed changes as from the map.
    #[test]
    fn packed_changes_are_the_changes() {
        let mut changes = StateChanges::new();
        changes.insert(b"a".to_vec(), Some(b"one".to_vec()));
        changes.insert(b"b".to_vec(), None);
        changes.insert(b"c".to_vec(), Some(Vec::new()));
        changes.insert(Vec::new(), Some(b"empty key".to_vec()));
        changes.insert(b"d".to_vec(), Some(vec![7; 300]));
        let packed = PackedChanges::pack(&changes);
        let unpacked: Vec<(Vec<u8>, Option<Vec<u8>>)> = packed
            .iter()
            .map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec)))
            .collect();
        let expected: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes.clone().into_iter().collect();
        assert_eq!(unpacked, expected);
        assert_eq!(
            RootTree::new().apply_pairs(packed.iter()),
            RootTree::new().apply(&changes)
        );
        assert_eq!(PackedChanges::pack(&StateChanges::new()).iter().count(), 0);
    }
}
