//! Internal-node hashes of the state tree, queued and then computed many at a time.
//!
//! A [`RootTree`](super::RootTree) update first changes the tree's shape and queues each hash
//! a changed node needs as a job whose two inputs are either known hashes or the outputs of
//! earlier jobs; [`HashJobs::run_from`] then computes them. A job's level is one more than its
//! inputs' highest, so the jobs of one level never depend on each other: they are hashed up to
//! sixteen at a time with blake3's multi-input SIMD compression (`hash_many`), which on a
//! CPU with AVX-512 costs about a seventh of one compression after another. Paths of
//! different keys give a level its width.
//!
//! Invariants: every job's output is blake3 keyed with the internal-node key over its two
//! 32-byte inputs, exactly [`NodeKind::Internal`]'s hash (a test compares the two); a job
//! only refers to jobs queued before it; results are only taken after the jobs are run.
//!
//! `blake3::platform` is public but outside blake3's documented API ("for benchmarks only"),
//! so a blake3 release may change it; the tests that compare every root with jmt's, and the
//! one below comparing outputs with `blake3::keyed_hash`, would then fail rather than the
//! roots changing silently.

use blake3::platform::{words_from_le_bytes_32, Platform};
use blake3::IncrementCounter;

use super::root_tree::NodeKind;
use crate::hash::{CHUNK_END, CHUNK_START, KEYED_HASH, LANES, ROOT};

/// A hash an internal node's rehash takes: known now, or the output of a queued job.
#[derive(Clone, Copy, Debug)]
pub(super) enum HashRef {
    Known([u8; 32]),
    Job(u32),
}

/// A [`HashRef`] as the queue keeps it: a job id, or (high bit set) an index into the known
/// hashes.
type Slot = u32;
const KNOWN: Slot = 1 << 31;

/// Where a queue stood, to run and drop only what came after ([`HashJobs::mark`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    jobs: usize,
    known: usize,
    results: usize,
}

/// The queue of an update's internal-node hashes (see the module documentation).
pub(super) struct HashJobs {
    platform: Platform,
    key: [u32; 8],
    leaf_key: [u32; 8],
    /// Each job's two inputs.
    inputs: Vec<[Slot; 2]>,
    levels: Vec<u16>,
    outputs: Vec<[u8; 32]>,
    /// The known hashes the inputs and results refer to.
    known: Vec<[u8; 32]>,
    /// The order in which the tree takes its new hashes back ([`HashJobs::take`]).
    results: Vec<Slot>,
    taken: usize,
    /// [`HashJobs::run_from`]'s buffers: where each level starts in `order`, the jobs by level.
    starts: Vec<usize>,
    order: Vec<Slot>,
}

impl Default for HashJobs {
    fn default() -> Self {
        HashJobs {
            platform: Platform::detect(),
            key: words_from_le_bytes_32(NodeKind::Internal.key()),
            leaf_key: words_from_le_bytes_32(NodeKind::Leaf.key()),
            inputs: Vec::new(),
            levels: Vec::new(),
            outputs: Vec::new(),
            known: Vec::new(),
            results: Vec::new(),
            taken: 0,
            starts: Vec::new(),
            order: Vec::new(),
        }
    }
}

impl std::fmt::Debug for HashJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashJobs")
            .field("jobs", &self.inputs.len())
            .finish()
    }
}

impl HashJobs {
    /// Where the queue stands now.
    pub(super) fn mark(&self) -> Mark {
        Mark {
            jobs: self.inputs.len(),
            known: self.known.len(),
            results: self.results.len(),
        }
    }

    /// Drop everything queued after `mark` (keeping the buffers).
    pub(super) fn truncate(&mut self, mark: Mark) {
        self.inputs.truncate(mark.jobs);
        self.levels.truncate(mark.jobs);
        self.outputs.truncate(mark.jobs);
        self.known.truncate(mark.known);
        self.results.truncate(mark.results);
        self.taken = mark.results;
    }

    fn slot(&mut self, hash: HashRef) -> Slot {
        match hash {
            HashRef::Job(id) => id,
            HashRef::Known(hash) => {
                self.known.push(hash);
                KNOWN | (self.known.len() - 1) as Slot
            }
        }
    }

    fn level(&self, slot: Slot) -> u16 {
        if slot & KNOWN != 0 {
            0
        } else {
            self.levels[slot as usize]
        }
    }

    /// Queue `H(INTERNAL_DOMAIN ‖ left ‖ right)`.
    pub(super) fn push(&mut self, left: HashRef, right: HashRef) -> HashRef {
        let id = self.inputs.len() as Slot;
        debug_assert!(id < KNOWN, "fewer than 2^31 node hashes per block");
        let pair = [self.slot(left), self.slot(right)];
        let level = self.level(pair[0]).max(self.level(pair[1])) + 1;
        self.inputs.push(pair);
        self.levels.push(level);
        HashRef::Job(id)
    }

    /// Note a hash the tree takes back, in the order it will [`HashJobs::take`] them.
    pub(super) fn result(&mut self, hash: HashRef) {
        let slot = self.slot(hash);
        self.results.push(slot);
    }

    /// The hash noted last by [`HashJobs::result`], if it is a job's.
    pub(super) fn last_job(&self) -> Option<u32> {
        self.results
            .last()
            .copied()
            .filter(|slot| slot & KNOWN == 0)
    }

    /// The leaf hashes of `inputs` (each a key hash and a value hash): blake3 keyed for
    /// [`NodeKind::Leaf`], sixteen at a time.
    pub(super) fn hash_leaves(&self, inputs: &[[u8; 64]]) -> Vec<[u8; 32]> {
        let mut hashes = vec![[0u8; 32]; inputs.len()];
        let mut out = [0u8; 32 * LANES];
        for (lanes, hashes) in inputs.chunks(LANES).zip(hashes.chunks_mut(LANES)) {
            let refs: [&[u8; 64]; LANES] =
                std::array::from_fn(|lane| &lanes[lane.min(lanes.len() - 1)]);
            self.hash_many(
                &refs[..lanes.len()],
                &self.leaf_key,
                &mut out[..32 * lanes.len()],
            );
            for (hash, output) in hashes.iter_mut().zip(out.chunks_exact(32)) {
                hash.copy_from_slice(output);
            }
        }
        hashes
    }

    /// blake3 keyed with `key` over each 64-byte input, into `out` (32 bytes each).
    fn hash_many(&self, inputs: &[&[u8; 64]], key: &[u32; 8], out: &mut [u8]) {
        self.platform.hash_many(
            inputs,
            key,
            0,
            IncrementCounter::No,
            KEYED_HASH,
            CHUNK_START,
            CHUNK_END | ROOT,
            out,
        );
    }

    /// Compute the jobs queued since `mark`, a level at a time, and start taking results
    /// from there.
    pub(super) fn run_from(&mut self, mark: Mark) {
        let first = mark.jobs;
        let count = self.inputs.len() - first;
        self.taken = mark.results;
        self.outputs.resize(self.inputs.len(), [0u8; 32]);
        let levels = &self.levels[first..];
        let top = levels.iter().copied().max().unwrap_or(0) as usize;
        // The job ids sorted by level (a counting sort; ids ascend within a level).
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        starts.resize(top + 2, 0);
        for &level in levels {
            starts[level as usize + 1] += 1;
        }
        for level in 1..starts.len() {
            starts[level] += starts[level - 1];
        }
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.resize(count, 0);
        for (offset, &level) in levels.iter().enumerate() {
            // `starts[level]` moves along the level's part of `order`, and ends where the
            // next level starts; shifted back below.
            order[starts[level as usize]] = (first + offset) as Slot;
            starts[level as usize] += 1;
        }
        starts.rotate_right(1);
        starts[0] = 0;
        let mut blocks = [[0u8; 64]; LANES];
        let mut hashes = [0u8; 32 * LANES];
        for level in 1..=top {
            for lanes in order[starts[level]..starts[level + 1]].chunks(LANES) {
                for (block, &id) in blocks.iter_mut().zip(lanes) {
                    let [left, right] = self.inputs[id as usize];
                    block[..32].copy_from_slice(self.resolve(left));
                    block[32..].copy_from_slice(self.resolve(right));
                }
                let refs: [&[u8; 64]; LANES] = std::array::from_fn(|lane| &blocks[lane]);
                self.hash_many(
                    &refs[..lanes.len()],
                    &self.key,
                    &mut hashes[..32 * lanes.len()],
                );
                for (hash, &id) in hashes.chunks_exact(32).zip(lanes) {
                    self.outputs[id as usize].copy_from_slice(hash);
                }
            }
        }
        self.starts = starts;
        self.order = order;
    }

    fn resolve(&self, slot: Slot) -> &[u8; 32] {
        if slot & KNOWN != 0 {
            &self.known[(slot & !KNOWN) as usize]
        } else {
            &self.outputs[slot as usize]
        }
    }

    /// The next hash the tree takes back, after [`HashJobs::run_from`].
    pub(super) fn take(&mut self) -> [u8; 32] {
        let slot = self.results[self.taken];
        self.taken += 1;
        *self.resolve(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaf hashes in batches are blake3's keyed hashes one by one.
    #[test]
    fn leaf_batches_equal_keyed_hashes() {
        let jobs = HashJobs::default();
        for count in [0usize, 1, 16, 33] {
            let inputs: Vec<[u8; 64]> = (0..count)
                .map(|i| {
                    let mut input = [0u8; 64];
                    input[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    input[63] = 0xa5;
                    input
                })
                .collect();
            let expected: Vec<[u8; 32]> = inputs
                .iter()
                .map(|input| NodeKind::Leaf.hash(input))
                .collect();
            assert_eq!(jobs.hash_leaves(&inputs), expected, "{count} leaves");
        }
    }

    /// Jobs on jobs give blake3's own keyed hashes, whatever the level and batch size.
    #[test]
    fn jobs_equal_keyed_hashes() {
        for count in [1usize, 15, 16, 17, 40] {
            let mut jobs = HashJobs::default();
            let start = jobs.mark();
            let leaves: Vec<[u8; 32]> = (0..count)
                .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
                .collect();
            let mut firsts = Vec::new();
            for pair in leaves.chunks(2) {
                let right = pair.get(1).copied().unwrap_or([7; 32]);
                firsts.push(jobs.push(HashRef::Known(pair[0]), HashRef::Known(right)));
            }
            let top = firsts
                .iter()
                .copied()
                .reduce(|left, right| jobs.push(left, right))
                .expect("at least one pair");
            for &first in &firsts {
                jobs.result(first);
            }
            jobs.result(top);
            jobs.run_from(start);

            let mut expected_firsts = Vec::new();
            for pair in leaves.chunks(2) {
                let right = pair.get(1).copied().unwrap_or([7; 32]);
                expected_firsts.push(NodeKind::Internal.hash(&[pair[0], right].concat()));
            }
            let expected_top = expected_firsts
                .iter()
                .copied()
                .reduce(|left, right| NodeKind::Internal.hash(&[left, right].concat()))
                .expect("at least one pair");
            for expected in expected_firsts {
                assert_eq!(jobs.take(), expected);
            }
            assert_eq!(jobs.take(), expected_top, "{count} leaves");
        }
    }
}
