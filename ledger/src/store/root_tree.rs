//! The state root without jmt: [`RootTree`] keeps only the latest version of the state tree's
//! shape and hashes, in memory, and computes the same root as the Jellyfish tree of
//! [`super::state_tree`] for the same key/value set. It is what an auditor's replay needs — every
//! block's root, quickly — and nothing more: no history, no proofs, no storage.
//!
//! The Jellyfish shape, without versions:
//! - a 16-ary trie over the nibbles of key hashes ([`key_hash`](super::state_tree::key_hash));
//! - a leaf sits at the shortest nibble prefix of its key hash that no other key shares; every
//!   prefix shared by two or more keys is an internal node (so an internal node never has a
//!   single child that is a leaf, but may have a single internal child);
//! - a leaf hashes as `H("JMT::LeafNode" ‖ key hash ‖ H(value))`;
//! - an internal node hashes as the binary Merkle tree over its 16 child slots, where a range
//!   with no child is the placeholder hash, a range holding one child that is a leaf (and
//!   nothing else) is that leaf's hash, a single slot is its child's hash, and any other range is
//!   `H("JMT::IntrnalNode" ‖ left half ‖ right half)`;
//! - the empty tree's root is the placeholder hash; a one-key tree's root is its leaf's hash.
//!
//! `H` is the tree's [`StateHasher`](super::StateHasher). Invariants: the root depends only on
//! the key/value set, never on the order of updates (tests compare it with jmt's at every
//! version, through inserts, overwrites and deletions). A block's changes are applied as one
//! batch sorted by key hash, depth first: each node on a changed path is visited once, its
//! changed children first, and its rehash is queued — from the children's hashes it keeps and,
//! in a node with many children, only the ranges of its inner binary tree that hold a changed
//! slot. The queued hashes are computed sixteen at a time ([`super::hash_jobs`]) and written
//! back as soon as a subtree's batch of at most a few hundred keys is done, while its nodes are
//! still in cache (the levels above, once the whole batch is done). The tree is therefore
//! always hashed when an update returns: [`RootTree::root`] only reads. Internal nodes are
//! looked up by position, never through a hash map, so nothing here depends on an iteration
//! order.
//!
//! Memory: a node keeps only the children it has, leaves and internal nodes inline in their
//! parent's list, so a walk down a cold path costs about one cache miss per level. Most nodes of
//! a large tree sit near the bottom with two or three children; only nodes with many children
//! keep their inner range hashes (448 bytes). Before a batch of at most a few hundred keys goes
//! down a subtree, [`warm`] reads the nodes on their paths (and the range hashes a rehash will
//! touch) several keys side by side, so the cache misses of different paths overlap rather
//! than follow one another.

use super::hash_jobs::{HashJobs, HashRef};
use crate::hash::{tags, Hash};
use crate::state::StateChanges;

/// jmt's hash of an empty subtree.
pub(super) const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
/// jmt's domain separators (the second one really is spelt without the 'e').
pub(super) const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
pub(super) const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";

/// The latest state tree, in memory, for roots only (see the module documentation).
#[derive(Debug, Default)]
pub struct RootTree {
    root: Option<Child>,
    keys: usize,
    hasher: TreeHasher,
    jobs: HashJobs,
}

/// Which of jmt's two node kinds a node hash is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeKind {
    /// `H(LEAF_DOMAIN ‖ key hash ‖ value hash)`.
    Leaf,
    /// `H(INTERNAL_DOMAIN ‖ left half ‖ right half)`.
    Internal,
}

impl NodeKind {
    const ALL: [NodeKind; 2] = [NodeKind::Leaf, NodeKind::Internal];

    fn domain(self) -> &'static [u8] {
        match self {
            NodeKind::Leaf => LEAF_DOMAIN,
            NodeKind::Internal => INTERNAL_DOMAIN,
        }
    }

    /// The node kind and the two halves if `input` is a node hash's input: a domain separator
    /// followed by exactly 64 bytes.
    fn of_input(input: &[u8]) -> Option<(NodeKind, &[u8])> {
        NodeKind::ALL.into_iter().find_map(|kind| {
            let domain = kind.domain();
            (input.len() == domain.len() + 64 && input.starts_with(domain))
                .then(|| (kind, &input[domain.len()..]))
        })
    }

    pub(super) fn key(self) -> &'static [u8; 32] {
        static KEYS: std::sync::LazyLock<[[u8; 32]; 2]> = std::sync::LazyLock::new(|| {
            [
                blake3::derive_key(tags::STATE_LEAF, b""),
                blake3::derive_key(tags::STATE_INTERNAL, b""),
            ]
        });
        &KEYS[self as usize]
    }

    /// The node's hash: blake3 keyed for its kind over its 64 bytes, one compression.
    pub(super) fn hash(self, halves: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(self.key(), halves).as_bytes()
    }
}

/// The longest input that can be a node's: the internal domain separator and two hashes.
pub(super) const NODE_INPUT_MAX: usize = 16 + 64;

/// The state tree's hash function `H`, for keys, values, leaves and internal nodes. A node's
/// input — jmt's domain separator followed by two 32-byte hashes — is hashed by blake3 keyed
/// for its kind (keys derived from `gongzhi/state-leaf/v1` and `gongzhi/state-internal/v1`)
/// over the 64 bytes after the separator: one compression, where blake3 over all 77 or 80
/// bytes takes two. Any other input is hashed by blake3 under the `gongzhi/state/v1`
/// derivation context. The three keys differ, so the three cases cannot collide with each other
/// short of a blake3 collision; jmt's separators still tell the two node kinds apart.
pub(super) fn state_hash(input: &[u8]) -> [u8; 32] {
    match NodeKind::of_input(input) {
        Some((kind, halves)) => kind.hash(halves),
        None => Hash::tagged(tags::STATE, input).0,
    }
}

/// [`state_hash`] for many inputs in a row: one blake3 state under `gongzhi/state/v1`, reset
/// between hashes, instead of a fresh ~2 KB state built for every key and value, and the node
/// hashes straight from their halves.
pub(super) struct TreeHasher(blake3::Hasher);

impl Default for TreeHasher {
    fn default() -> Self {
        TreeHasher(blake3::Hasher::new_derive_key(tags::STATE))
    }
}

impl std::fmt::Debug for TreeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TreeHasher")
    }
}

impl TreeHasher {
    /// `H(bytes)`: a key or a value (or, if it has a node's shape, as that node).
    pub(super) fn hash(&mut self, bytes: &[u8]) -> [u8; 32] {
        if let Some((kind, halves)) = NodeKind::of_input(bytes) {
            return kind.hash(halves);
        }
        self.0.reset();
        self.0.update(bytes);
        *self.0.finalize().as_bytes()
    }

    /// `H(domain ‖ left ‖ right)` for a node of `kind`.
    pub(super) fn hash_pair(&self, kind: NodeKind, left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
        let mut halves = [0u8; 64];
        halves[..32].copy_from_slice(left);
        halves[32..].copy_from_slice(right);
        kind.hash(&halves)
    }
}

/// A subtree in a slot (of an internal node, or the root), with its hash.
///
/// A leaf is kept inline: its key hash and its hash are all the tree needs of it, so a visit
/// that reaches a leaf reads the slot it is already in rather than another allocation.
#[derive(Debug)]
struct Child {
    /// The subtree's hash as of the last update that reached it.
    hash: [u8; 32],
    node: ChildNode,
}

#[derive(Debug)]
enum ChildNode {
    Leaf {
        key_hash: [u8; 32],
    },
    /// Inline, so a visit's first read of a node — its bitmaps and where its children are —
    /// is in the slot it already reached, and each level down costs one cache miss, not two.
    Internal(Internal),
}

/// An internal node: only the children it has, in slot order, so the many nodes near the
/// bottom of a large tree that hold two or three children take a few cache lines, not the
/// kilobyte a full sixteen-slot node does.
#[derive(Debug)]
struct Internal {
    /// Bitmap of the slots whose subtree changed since the last rehash.
    dirty: u16,
    /// Bitmap of the slots whose inner ranges a queued rehash recomputes (all of them when
    /// the ranges are new): between [`Internal::plan_rehash`] and [`write_back`] only.
    stale: u16,
    /// Bitmap of the slots holding a child; `children[i]` is the child of the `i`-th set bit.
    present: u16,
    /// Bitmap of the slots holding a leaf (a subset of `present`).
    leaves: u16,
    children: Vec<Child>,
    /// The hashes of the node's inner binary tree for ranges of width 2, 4 and 8
    /// (`ranges[range_index(start, width)]`), kept only while the node has at least
    /// [`DENSE`] children: a rehash then recomputes only the ranges that hold a dirty slot.
    /// A sparser node is rehashed from its children's hashes, which costs as many compressions
    /// as its few children need anyway.
    ranges: Option<Box<[[u8; 32]; 14]>>,
}

/// Children from which a node keeps its inner ranges.
const DENSE: u32 = 6;
/// Children below which a node that kept its ranges drops them (lower than [`DENSE`], so a
/// node at the edge does not allocate and free them block after block).
const SPARSE: u32 = 4;

/// One change to the tree: a key hash and its new leaf hash (`None` deletes the key).
type Update = ([u8; 32], Option<[u8; 32]>);

impl RootTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply a block's changes (`None` deletes; deleting an absent key changes nothing) and
    /// return the new root.
    pub fn apply(&mut self, changes: &StateChanges) -> Hash {
        self.apply_pairs(
            changes
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_deref())),
        )
    }

    /// [`RootTree::apply`] for changes held in some other form: each key at most once, with
    /// its new value (`None` deletes), in any order.
    ///
    /// # Panics
    ///
    /// If a key comes twice: which of its values would win is not defined.
    pub fn apply_pairs<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Hash {
        let hasher = &mut self.hasher;
        // Key and value hashes one after another; the leaf hashes, one 64-byte input each,
        // sixteen at a time.
        let mut leaf_inputs: Vec<[u8; 64]> = Vec::new();
        let mut hashed: Vec<Update> = changes
            .into_iter()
            .map(|(key, value)| {
                let key_hash = hasher.hash(key);
                let leaf = value.map(|value| {
                    let mut input = [0u8; 64];
                    input[..32].copy_from_slice(&key_hash);
                    input[32..].copy_from_slice(&hasher.hash(value));
                    leaf_inputs.push(input);
                    PLACEHOLDER
                });
                (key_hash, leaf)
            })
            .collect();
        let mut leaves = self.jobs.hash_leaves(&leaf_inputs).into_iter();
        // Deletions have no leaf: only the others take one, in order.
        for slot in hashed.iter_mut().filter_map(|(_, leaf)| leaf.as_mut()) {
            if let Some(hash) = leaves.next() {
                *slot = hash;
            }
        }
        // Distinct keys (a map's) have distinct blake3 hashes. Ordered by their first eight
        // bytes as a number, then by the rest: the same order as comparing the arrays, without
        // a byte-string comparison for nearly every pair. The sort moves 16-byte (prefix,
        // position) pairs rather than the 65-byte updates, which are then gathered once.
        let mut order: Vec<(u64, usize)> = hashed
            .iter()
            .enumerate()
            .map(|(at, (key, _))| (leading_u64(key), at))
            .collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| hashed[a.1].0.cmp(&hashed[b.1].0))
        });
        let updates: Vec<Update> = order.iter().map(|&(_, at)| hashed[at]).collect();
        assert!(
            updates.windows(2).all(|pair| pair[0].0 != pair[1].0),
            "a key comes twice in one batch of state changes"
        );
        self.update(&updates);
        self.root()
    }

    /// Apply `updates`, sorted by key hash with no key twice.
    fn update(&mut self, updates: &[Update]) {
        let jobs = &mut self.jobs;
        let start = jobs.mark();
        let added = match &mut self.root {
            Some(root) => {
                if updates.len() <= WARM_BATCH {
                    warm(root, 0, updates);
                }
                let (added, kept) = update(root, 0, updates, jobs);
                if !kept {
                    self.root = None;
                }
                added
            }
            None => {
                let (added, built) = build(0, updates, jobs);
                self.root = built;
                added
            }
        };
        jobs.run_from(start);
        if let Some(root) = &mut self.root {
            write_back(root, jobs);
        }
        jobs.truncate(start);
        self.keys = self.keys.saturating_add_signed(added);
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        Hash(self.root.as_ref().map_or(PLACEHOLDER, |root| root.hash))
    }

    /// Keys in the tree.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Whether the tree has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }
}

impl Internal {
    fn empty() -> Internal {
        Internal {
            dirty: 0,
            stale: 0,
            present: 0,
            leaves: 0,
            children: Vec::with_capacity(2),
            ranges: None,
        }
    }

    /// Where the child in `slot` is (or would go) in `children`.
    fn index(&self, slot: usize) -> usize {
        (self.present & ((1u16 << slot) - 1)).count_ones() as usize
    }

    /// The hash of the child in `slot`, which must be present.
    fn child_hash(&self, slot: u32) -> &[u8; 32] {
        &self.children[self.index(slot as usize)].hash
    }

    /// Put `child` in the empty `slot`.
    fn insert(&mut self, slot: usize, child: Child) {
        let at = self.index(slot);
        self.children.insert(at, child);
        self.present |= 1u16 << slot;
        self.note_changed(slot, at, true);
    }

    /// Record that the child in `slot` changed: gone (`kept` false) or rehashed in place,
    /// perhaps now a leaf where it was an internal node or the other way round.
    fn note_changed(&mut self, slot: usize, at: usize, kept: bool) {
        let bit = 1u16 << slot;
        self.dirty |= bit;
        if !kept {
            self.children.remove(at);
            self.present &= !bit;
            self.leaves &= !bit;
        } else if matches!(self.children[at].node, ChildNode::Leaf { .. }) {
            self.leaves |= bit;
        } else {
            self.leaves &= !bit;
        }
    }

    /// Queue the node's rehash on `jobs`, its changed children's hashes being the jobs in
    /// `planned` (by slot; [`NOT_PLANNED`] for a child whose hash is current): with its inner
    /// ranges, only those holding a dirty slot are recomputed; without, the whole inner tree
    /// is hashed from the children. Notes, in order, the recomputed ranges and then the node's
    /// hash for [`write_back`], and returns the node's hash.
    fn plan_rehash(&mut self, planned: &[u32; 16], jobs: &mut HashJobs) -> HashRef {
        let count = self.present.count_ones();
        self.stale = self.dirty;
        if self.ranges.is_none() && count >= DENSE {
            self.ranges = Some(Box::new([PLACEHOLDER; 14]));
            self.stale = u16::MAX;
        } else if self.ranges.is_some() && count < SPARSE {
            self.ranges = None;
        }
        let hash = match self.ranges.take() {
            Some(mut kept) => {
                // A recomputed range is a job (its id here) exactly when it is hashed from
                // its halves; one that needs no hash (width 2 and up: the placeholder or a
                // lone leaf's hash) is final now.
                let mut queued = [NOT_PLANNED; 14];
                for width in [2u32, 4, 8] {
                    for start in (0..16).step_by(width as usize) {
                        if self.stale & range_mask(start, width) != 0 {
                            let at = range_index(start, width);
                            match self.range_ref(start, width, planned, jobs, &kept, &queued) {
                                HashRef::Job(job) => {
                                    queued[at] = job;
                                    jobs.result(HashRef::Job(job));
                                }
                                HashRef::Known(hash) => kept[at] = hash,
                            }
                        }
                    }
                }
                let hash = self.range_ref(0, 16, planned, jobs, &kept, &queued);
                self.ranges = Some(kept);
                hash
            }
            None => self.scratch_ref(0, 16, planned, jobs),
        };
        jobs.result(hash);
        hash
    }

    /// The hash of the slots `start..start + width` computed from the children alone.
    fn scratch_ref(
        &self,
        start: u32,
        width: u32,
        planned: &[u32; 16],
        jobs: &mut HashJobs,
    ) -> HashRef {
        if let Some(hash) = self.range_shortcut(start, width, planned) {
            return hash;
        }
        let half = width / 2;
        let left = self.scratch_ref(start, half, planned, jobs);
        let right = self.scratch_ref(start + half, half, planned, jobs);
        jobs.push(left, right)
    }

    /// The hash of the slots `start..start + width`, the halves wider than one slot taken
    /// from the kept `ranges` or, where recomputed, from their `queued` jobs.
    fn range_ref(
        &self,
        start: u32,
        width: u32,
        planned: &[u32; 16],
        jobs: &mut HashJobs,
        ranges: &[[u8; 32]; 14],
        queued: &[u32; 14],
    ) -> HashRef {
        if let Some(hash) = self.range_shortcut(start, width, planned) {
            return hash;
        }
        let half = width / 2;
        let part = |start: u32| {
            if half > 1 {
                let at = range_index(start, half);
                match queued[at] {
                    NOT_PLANNED => HashRef::Known(ranges[at]),
                    job => HashRef::Job(job),
                }
            } else {
                self.range_shortcut(start, 1, planned)
                    .unwrap_or(HashRef::Known(PLACEHOLDER))
            }
        };
        let (left, right) = (part(start), part(start + half));
        jobs.push(left, right)
    }

    /// Whether the slots `start..start + width` hash from their halves: they hold two or more
    /// children, or (wider than one slot) a lone internal node.
    fn hashed_from_halves(&self, start: u32, width: u32) -> bool {
        let mask = range_mask(start, width);
        let in_range = self.present & mask;
        in_range.count_ones() > 1 || (in_range != 0 && self.leaves & mask == 0 && width > 1)
    }

    /// jmt's rule for the slots `start..start + width` when it needs no hash of halves: none
    /// present is the placeholder, and a single child that is a leaf (or a single slot) is
    /// that child's hash. `None` when the range is hashed from its halves.
    fn range_shortcut(&self, start: u32, width: u32, planned: &[u32; 16]) -> Option<HashRef> {
        let mask = range_mask(start, width);
        let in_range = self.present & mask;
        if in_range == 0 {
            Some(HashRef::Known(PLACEHOLDER))
        } else if !self.hashed_from_halves(start, width) {
            let slot = in_range.trailing_zeros();
            Some(match planned[slot as usize] {
                NOT_PLANNED => HashRef::Known(*self.child_hash(slot)),
                job => HashRef::Job(job),
            })
        } else {
            None
        }
    }
}

/// In `planned`: the child's hash is current, no job computes it.
const NOT_PLANNED: u32 = u32::MAX;

/// Take the hashes [`Internal::plan_rehash`] queued for `child`'s subtree back from `jobs`
/// (after [`HashJobs::run_from`]), children first and in slot order as they were queued, and
/// clear the nodes' dirty marks.
fn write_back(child: &mut Child, jobs: &mut HashJobs) {
    let ChildNode::Internal(node) = &mut child.node else {
        return;
    };
    if node.dirty == 0 {
        // Not rehashed (nothing below changed, or written back already).
        return;
    }
    let mut changed = node.dirty & node.present & !node.leaves;
    while changed != 0 {
        let slot = changed.trailing_zeros() as usize;
        changed &= changed - 1;
        let at = node.index(slot);
        write_back(&mut node.children[at], jobs);
    }
    if let Some(mut ranges) = node.ranges.take() {
        // The recomputed ranges that were jobs, in the order they were queued (the others
        // were final when queued).
        for width in [2u32, 4, 8] {
            for start in (0..16).step_by(width as usize) {
                if node.stale & range_mask(start, width) != 0
                    && node.hashed_from_halves(start, width)
                {
                    ranges[range_index(start, width)] = jobs.take();
                }
            }
        }
        node.ranges = Some(ranges);
    }
    child.hash = jobs.take();
    node.dirty = 0;
    node.stale = 0;
}

/// The first eight bytes of `key_hash`, big-endian: comparing these compares the hashes'
/// leading bytes in order.
fn leading_u64(key_hash: &[u8; 32]) -> u64 {
    let mut leading = [0u8; 8];
    leading.copy_from_slice(&key_hash[..8]);
    u64::from_be_bytes(leading)
}

/// The nibble of `key_hash` at `depth` (0 = the high half of the first byte).
pub(super) fn nibble(key_hash: &[u8; 32], depth: usize) -> usize {
    let byte = key_hash[depth / 2];
    usize::from(if depth.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    })
}

/// The bitmap of the slots `start..start + width`.
fn range_mask(start: u32, width: u32) -> u16 {
    (((1u32 << width) - 1) << start) as u16
}

/// Where the hash of the range `start..start + width` (width 2, 4 or 8) is kept in
/// [`Internal::ranges`].
fn range_index(start: u32, width: u32) -> usize {
    let (base, index) = match width {
        2 => (0, start / 2),
        4 => (8, start / 4),
        _ => (12, start / 8),
    };
    (base + index) as usize
}

/// Keys whose paths [`warm`] follows side by side.
const WARM_LANES: usize = 8;
/// The largest batch [`warm`] reads ahead for: the nodes on its paths (two cache lines a level)
/// stay in the core's own cache until [`update`] reaches them.
const WARM_BATCH: usize = 256;

/// Read the nodes on the paths of `updates`' keys below `start` (at `depth`) into the cache,
/// [`WARM_LANES`] keys side by side and a level at a time. A walk down one path waits for each
/// level's node before it knows where the next is, so in a tree much larger than the cache it
/// stalls once per level; the lanes' reads of one level are independent of each other, so their
/// misses overlap. [`update`] then finds the nodes in cache. Reads only: the tree, and so the
/// root, is the same with or without it.
fn warm(start: &Child, depth: usize, updates: &[Update]) {
    let mut read = 0u8;
    for lanes in updates.chunks(WARM_LANES) {
        let mut at: [Option<&Child>; WARM_LANES] = [None; WARM_LANES];
        for cursor in at.iter_mut().take(lanes.len()) {
            *cursor = Some(start);
        }
        let mut level = depth;
        loop {
            let mut deeper = false;
            for (cursor, (key, _)) in at.iter_mut().zip(lanes) {
                let Some(child) = *cursor else { continue };
                // The hash and the node may sit on different cache lines; read both.
                read ^= child.hash[0];
                *cursor = match &child.node {
                    ChildNode::Internal(node) => {
                        let slot = nibble(key, level);
                        if let Some(ranges) = &node.ranges {
                            // The inner ranges the rehash will recompute for this slot: a
                            // separate allocation, cold in a large tree.
                            let slot = slot as u32;
                            for width in [2, 4, 8] {
                                read ^= ranges[range_index(slot - slot % width, width)][0];
                            }
                        }
                        (node.present & (1 << slot) != 0).then(|| &node.children[node.index(slot)])
                    }
                    ChildNode::Leaf { .. } => None,
                };
                deeper |= cursor.is_some();
            }
            if !deeper {
                break;
            }
            level += 1;
        }
    }
    std::hint::black_box(read);
}

/// The subtree for `updates` (sorted by key hash, no key twice, all sharing the key-hash
/// nibbles above `depth`) in a slot that was empty: nothing if they insert no key, a leaf if one,
/// else an internal node. Returns the keys added and the subtree.
fn build(depth: usize, updates: &[Update], jobs: &mut HashJobs) -> (isize, Option<Child>) {
    let mut inserts = updates
        .iter()
        .filter_map(|(key, leaf)| Some((*key, (*leaf)?)));
    match (inserts.next(), inserts.next()) {
        (None, _) => (0, None),
        (Some((key_hash, hash)), None) => (
            1,
            Some(Child {
                hash,
                node: ChildNode::Leaf { key_hash },
            }),
        ),
        _ => {
            let mut child = Child {
                hash: PLACEHOLDER,
                node: ChildNode::Internal(Internal::empty()),
            };
            let (added, kept) = update(&mut child, depth, updates, jobs);
            (added, kept.then_some(child))
        }
    }
}

/// Apply `updates` — sorted by key hash, no key twice, all sharing the key-hash nibbles above
/// `depth` — to the subtree `child` at `depth`, and queue on `jobs` the rehash of every node
/// they change, bottom-up (the subtree's hashes are current once [`write_back`] has run).
/// Returns the number of keys added (negative: removed) and whether the slot still holds
/// anything.
///
/// The shape stays Jellyfish's: keys sharing a nibble prefix get an internal node for it (a
/// chain of single-child internal nodes down to where they part), and an internal node left
/// with one leaf (or nothing) below it is replaced by that leaf (or removed).
fn update(
    child: &mut Child,
    depth: usize,
    updates: &[Update],
    jobs: &mut HashJobs,
) -> (isize, bool) {
    if let ChildNode::Leaf { key_hash } = child.node {
        if let [(key, change)] = updates {
            if *key == key_hash {
                return match change {
                    Some(hash) => {
                        child.hash = *hash;
                        (0, true)
                    }
                    None => (-1, false),
                };
            }
        }
        if updates
            .iter()
            .all(|(key, leaf_hash)| leaf_hash.is_none() && *key != key_hash)
        {
            // Only deletions of keys that are not here.
            return (0, true);
        }
        // Other keys join this one: an internal node takes its place, the leaf below it.
        let mut internal = Internal::empty();
        internal.insert(
            nibble(&key_hash, depth),
            Child {
                hash: child.hash,
                node: ChildNode::Leaf { key_hash },
            },
        );
        child.node = ChildNode::Internal(internal);
    }
    let ChildNode::Internal(internal) = &mut child.node else {
        unreachable!("a leaf was replaced by an internal node above");
    };
    let mut added = 0;
    let mut planned = [NOT_PLANNED; 16];
    let mut rest = updates;
    while let Some((first, _)) = rest.first() {
        let slot = nibble(first, depth);
        let len = rest
            .iter()
            .position(|(key, _)| nibble(key, depth) != slot)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(len);
        rest = tail;
        let at = internal.index(slot);
        if internal.present & (1 << slot) != 0 {
            // A batch small enough to stay in cache is hashed and written back right away;
            // its subtree's hash is then current.
            let settle = updates.len() > WARM_BATCH && group.len() <= WARM_BATCH;
            if settle {
                warm(&internal.children[at], depth + 1, group);
            }
            let mark = jobs.mark();
            let (delta, kept) = update(&mut internal.children[at], depth + 1, group, jobs);
            added += delta;
            internal.note_changed(slot, at, kept);
            if kept {
                let child = &mut internal.children[at];
                if settle {
                    jobs.run_from(mark);
                    write_back(child, jobs);
                    jobs.truncate(mark);
                } else {
                    planned[slot] = planned_hash(child, jobs);
                }
            }
        } else if let (delta, Some(new)) = build(depth + 1, group, jobs) {
            added += delta;
            planned[slot] = planned_hash(&new, jobs);
            internal.insert(slot, new);
        }
    }
    match internal.present.count_ones() {
        0 => return (added, false),
        1 if internal.leaves == internal.present => {
            // One leaf left: it takes this node's place.
            if let Some(lone) = internal.children.pop() {
                *child = lone;
            }
        }
        // Nothing below changed: the hash is current.
        _ if internal.dirty == 0 => {}
        _ => {
            if let HashRef::Known(hash) = internal.plan_rehash(&planned, jobs) {
                child.hash = hash;
            }
        }
    }
    (added, true)
}

/// The job computing the hash of `child`, just updated: the node hash its update queued last
/// if it is (still) an internal node with a queued rehash; [`NOT_PLANNED`] when its hash is
/// current.
fn planned_hash(child: &Child, jobs: &HashJobs) -> u32 {
    match &child.node {
        ChildNode::Internal(node) if node.dirty != 0 => jobs.last_job().unwrap_or(NOT_PLANNED),
        _ => NOT_PLANNED,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::store::state_tree::empty_root;
    use crate::store::testkit::changes;
    use crate::store::MemoryStateTree;

    #[test]
    fn small_trees_match_jmt() {
        let mut tree = RootTree::new();
        let mut jmt = MemoryStateTree::new();
        assert_eq!(tree.root(), empty_root());
        let blocks = [
            changes(&[]),
            changes(&[("a", Some("1"))]),
            changes(&[("b", Some("2"))]),
            changes(&[("a", Some("3")), ("c", Some("4"))]),
            changes(&[("b", None), ("missing", None)]),
            changes(&[("a", None)]),
            changes(&[("c", None)]),
            changes(&[("d", Some("5"))]),
        ];
        for (version, block) in blocks.iter().enumerate() {
            assert_eq!(
                tree.apply(block),
                jmt.apply(block).expect("jmt"),
                "version {version}"
            );
        }
        assert_eq!(tree.len(), 1);
    }

    /// Random blocks of inserts, overwrites and deletions — including deleting everything and
    /// keys sharing long prefixes — give jmt's root at every version.
    #[test]
    fn random_blocks_match_jmt_at_every_version() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let mut tree = RootTree::new();
        let mut jmt = MemoryStateTree::new();
        let mut state: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for version in 0..60u64 {
            let mut block = StateChanges::new();
            for _ in 0..rng.gen_range(0..80) {
                let key = if !state.is_empty() && rng.gen_bool(0.3) {
                    let index = rng.gen_range(0..state.len());
                    state.keys().nth(index).cloned().expect("a key")
                } else {
                    // Short keys collide in their first nibbles often enough to build deep paths.
                    rng.gen::<[u8; 3]>().to_vec()
                };
                block.insert(key, Some(rng.gen::<[u8; 8]>().to_vec()));
            }
            if version % 4 == 3 {
                let doomed: Vec<Vec<u8>> = state
                    .keys()
                    .filter(|_| rng.gen_bool(0.4))
                    .cloned()
                    .collect();
                for key in doomed {
                    block.insert(key, None);
                }
            }
            if version == 40 {
                for key in state.keys() {
                    block.insert(key.clone(), None);
                }
            }
            for (key, value) in &block {
                match value {
                    Some(value) => state.insert(key.clone(), value.clone()),
                    None => state.remove(key),
                };
            }
            let expected = jmt.apply(&block).expect("jmt");
            assert_eq!(tree.apply(&block), expected, "version {version}");
            assert_eq!(tree.len(), state.len(), "keys at version {version}");
        }
    }

    /// Large blocks — thousands of keys, so every node of the upper levels takes several
    /// groups of a sorted batch at once — with overwrites and deletions of present and absent
    /// keys, give jmt's root.
    #[test]
    fn large_batches_match_jmt() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let mut tree = RootTree::new();
        let mut jmt = MemoryStateTree::new();
        for version in 0..6u64 {
            let mut block = StateChanges::new();
            for _ in 0..1_500 {
                let key = rng.gen::<[u8; 2]>().to_vec();
                let value = if version > 0 && rng.gen_bool(0.3) {
                    None
                } else {
                    Some(rng.gen::<[u8; 4]>().to_vec())
                };
                block.insert(key, value);
            }
            assert_eq!(
                tree.apply(&block),
                jmt.apply(&block).expect("jmt"),
                "version {version}"
            );
        }
    }

    /// Nodes that fill up keep their inner range hashes and drop them again as they empty
    /// (see [`DENSE`] and [`SPARSE`]); the root is jmt's at every step both ways.
    #[test]
    fn nodes_filling_and_emptying_match_jmt() {
        let mut tree = RootTree::new();
        let mut jmt = MemoryStateTree::new();
        let keys: Vec<Vec<u8>> = (0u32..400).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut step = |block: &StateChanges, what: &str| {
            assert_eq!(tree.apply(block), jmt.apply(block).expect("jmt"), "{what}");
        };
        for (round, batch) in keys.chunks(7).enumerate() {
            let block = batch
                .iter()
                .map(|k| (k.clone(), Some(k.repeat(3))))
                .collect();
            step(&block, &format!("filling, batch {round}"));
        }
        for (round, batch) in keys.chunks(9).enumerate() {
            let block = batch.iter().map(|k| (k.clone(), None)).collect();
            step(&block, &format!("emptying, batch {round}"));
        }
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
    }

    /// A key twice in one batch is refused rather than resolved in an undefined order.
    #[test]
    #[should_panic(expected = "a key comes twice")]
    fn a_key_twice_in_one_batch_panics() {
        let pairs: [(&[u8], Option<&[u8]>); 2] = [(b"k", Some(b"1")), (b"k", Some(b"2"))];
        RootTree::new().apply_pairs(pairs);
    }

    /// A tree built at once and the same key set built through updates and deletions agree.
    #[test]
    fn root_depends_only_on_the_key_set() {
        let mut grown = RootTree::new();
        grown.apply(&changes(&[
            ("x", Some("1")),
            ("y", Some("2")),
            ("z", Some("3")),
        ]));
        grown.apply(&changes(&[("y", None), ("x", Some("9"))]));
        let mut direct = RootTree::new();
        direct.apply(&changes(&[("z", Some("3")), ("x", Some("9"))]));
        assert_eq!(grown.root(), direct.root());
    }
}
