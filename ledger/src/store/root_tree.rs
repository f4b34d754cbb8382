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
//! changed children first, and rehashed right then, while it is still in cache — only the
//! ranges of its inner binary tree that hold a changed slot, from the children's hashes it
//! keeps. The tree is therefore always hashed: [`RootTree::root`] only reads. Internal nodes are
//! looked up by position, never through a hash map, so nothing here depends on an iteration
//! order.

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
    root: Option<Node>,
    keys: usize,
    hasher: TreeHasher,
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

    fn key(self) -> &'static [u8; 32] {
        static KEYS: std::sync::LazyLock<[[u8; 32]; 2]> = std::sync::LazyLock::new(|| {
            [
                blake3::derive_key(tags::STATE_LEAF, b""),
                blake3::derive_key(tags::STATE_INTERNAL, b""),
            ]
        });
        &KEYS[self as usize]
    }

    /// The node's hash: blake3 keyed for its kind over its 64 bytes, one compression.
    fn hash(self, halves: &[u8]) -> [u8; 32] {
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

#[derive(Debug)]
enum Node {
    Leaf(Box<Leaf>),
    Internal(Box<Internal>),
}

#[derive(Debug)]
struct Leaf {
    key_hash: [u8; 32],
    /// The leaf's own hash (it covers the value hash, which need not be kept).
    hash: [u8; 32],
}

/// Laid out in the order a visit touches it (`repr(C)`): the bitmaps, then the child slots,
/// then the hashes. A node deep in a large tree is usually cold when a block reaches it, so
/// each cache line a visit reads is likely a miss.
#[derive(Debug)]
#[repr(C)]
struct Internal {
    /// Bitmap of the slots whose subtree changed since the last rehash.
    dirty: u16,
    /// Bitmap of the slots holding a child, kept as children come and go, so neither a rehash
    /// nor the check for a lone leaf reads all sixteen slots.
    present: u16,
    /// Bitmap of the slots holding a leaf (a subset of `present`).
    leaves: u16,
    children: [Option<Node>; 16],
    /// Each child's hash as of the last rehash; slots in `dirty` are stale. Kept here so a
    /// rehash reads only the children that changed, not all sixteen.
    child_hashes: [[u8; 32]; 16],
    /// The hashes of the node's inner binary tree, by range of slots: `ranges[range_index(start,
    /// width)]` for widths 2, 4, 8 and 16; the last one is the node's hash. A rehash recomputes
    /// only the ranges that hold a dirty slot.
    ranges: [[u8; 32]; 15],
}

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
        let hasher = &mut self.hasher;
        let mut updates: Vec<Update> = changes
            .iter()
            .map(|(key, value)| {
                let key_hash = hasher.hash(key);
                let leaf = value.as_ref().map(|value| {
                    let value_hash = hasher.hash(value);
                    hasher.hash_pair(NodeKind::Leaf, &key_hash, &value_hash)
                });
                (key_hash, leaf)
            })
            .collect();
        // Distinct keys (a map's) have distinct blake3 hashes. Ordered by their first eight
        // bytes as a number, then by the rest: the same order as comparing the arrays, without
        // a byte-string comparison for nearly every pair.
        updates.sort_unstable_by(|a, b| {
            leading_u64(&a.0)
                .cmp(&leading_u64(&b.0))
                .then_with(|| a.0.cmp(&b.0))
        });
        self.update(&updates);
        self.root()
    }

    /// Apply `updates`, sorted by key hash with no key twice.
    fn update(&mut self, updates: &[Update]) {
        let added = update(&mut self.root, 0, updates, &mut self.hasher);
        self.keys = self.keys.saturating_add_signed(added);
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        Hash(self.root.as_ref().map_or(PLACEHOLDER, Node::hash))
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

impl Node {
    /// The node's hash (always current: every update rehashes what it changed).
    fn hash(&self) -> [u8; 32] {
        match self {
            Node::Leaf(leaf) => leaf.hash,
            Node::Internal(internal) => internal.ranges[range_index(0, 16)],
        }
    }
}

impl Internal {
    fn empty() -> Box<Internal> {
        Box::new(Internal {
            dirty: 0,
            present: 0,
            leaves: 0,
            children: Default::default(),
            child_hashes: [PLACEHOLDER; 16],
            ranges: [PLACEHOLDER; 15],
        })
    }

    /// Record what `slot` now holds in the `present` and `leaves` bitmaps, and mark it dirty.
    fn note_changed(&mut self, slot: usize) {
        let bit = 1u16 << slot;
        let (present, leaf) = match &self.children[slot] {
            None => (false, false),
            Some(Node::Leaf(_)) => (true, true),
            Some(Node::Internal(_)) => (true, false),
        };
        self.present = if present {
            self.present | bit
        } else {
            self.present & !bit
        };
        self.leaves = if leaf {
            self.leaves | bit
        } else {
            self.leaves & !bit
        };
        self.dirty |= bit;
    }

    /// Bring the hashes up to date with the children (already rehashed themselves): the dirty
    /// children's hashes, then, bottom-up, every range holding a dirty slot.
    fn rehash(&mut self, hasher: &mut TreeHasher) {
        let mut dirty = self.dirty & self.present;
        while dirty != 0 {
            let slot = dirty.trailing_zeros() as usize;
            dirty &= dirty - 1;
            if let Some(child) = &self.children[slot] {
                self.child_hashes[slot] = child.hash();
            }
        }
        let (present, leaves) = (self.present, self.leaves);
        for width in [2u32, 4, 8, 16] {
            for start in (0..16).step_by(width as usize) {
                if self.dirty & range_mask(start, width) != 0 {
                    self.ranges[range_index(start, width)] =
                        self.range_hash(hasher, present, leaves, start, width);
                }
            }
        }
        self.dirty = 0;
    }

    /// The hash of the slots `start..start + width` (jmt's rule, see the module documentation),
    /// from the children's hashes and the already current hashes of its two halves;
    /// `present` and `leaves` are bitmaps over all 16 slots.
    fn range_hash(
        &self,
        hasher: &mut TreeHasher,
        present: u16,
        leaves: u16,
        start: u32,
        width: u32,
    ) -> [u8; 32] {
        let mask = range_mask(start, width);
        let in_range = present & mask;
        if in_range == 0 {
            PLACEHOLDER
        } else if in_range.count_ones() == 1 && leaves & mask != 0 {
            self.child_hashes[in_range.trailing_zeros() as usize]
        } else {
            let half = width / 2;
            let part = |start: u32| {
                if half > 1 {
                    self.ranges[range_index(start, half)]
                } else if present & (1 << start) != 0 {
                    self.child_hashes[start as usize]
                } else {
                    PLACEHOLDER
                }
            };
            let (left, right) = (part(start), part(start + half));
            hasher.hash_pair(NodeKind::Internal, &left, &right)
        }
    }
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

/// Where the hash of the range `start..start + width` (width 2, 4, 8 or 16) is kept in
/// [`Internal::ranges`].
fn range_index(start: u32, width: u32) -> usize {
    let (base, index) = match width {
        2 => (0, start / 2),
        4 => (8, start / 4),
        8 => (12, start / 8),
        _ => (14, 0),
    };
    (base + index) as usize
}

/// Apply `updates` — sorted by key hash, no key twice, all sharing the key-hash nibbles above
/// `depth` — to the subtree at `slot`, and rehash every node they change, bottom-up, while it is
/// still in cache. Returns the number of keys added (negative: removed).
///
/// The shape stays Jellyfish's: keys sharing a nibble prefix get an internal node for it (a
/// chain of single-child internal nodes down to where they part), and an internal node left
/// with one leaf (or nothing) below it is replaced by that leaf (or removed).
fn update(
    slot: &mut Option<Node>,
    depth: usize,
    updates: &[Update],
    hasher: &mut TreeHasher,
) -> isize {
    let mut added = 0;
    match slot {
        None => {
            let mut inserts = updates
                .iter()
                .filter_map(|(key, leaf)| Some((*key, (*leaf)?)));
            match (inserts.next(), inserts.next()) {
                (None, _) => return 0,
                (Some((key_hash, hash)), None) => {
                    *slot = Some(Node::Leaf(Box::new(Leaf { key_hash, hash })));
                    return 1;
                }
                _ => *slot = Some(Node::Internal(Internal::empty())),
            }
        }
        Some(Node::Leaf(leaf)) => {
            if let [(key_hash, change)] = updates {
                if *key_hash == leaf.key_hash {
                    return match change {
                        Some(hash) => {
                            leaf.hash = *hash;
                            0
                        }
                        None => {
                            *slot = None;
                            -1
                        }
                    };
                }
            }
            if updates
                .iter()
                .all(|(key, leaf_hash)| leaf_hash.is_none() && *key != leaf.key_hash)
            {
                // Only deletions of keys that are not here.
                return 0;
            }
            // Other keys join this one: an internal node takes its place, the leaf below it.
            if let Some(Node::Leaf(lone)) = slot.take() {
                let mut internal = Internal::empty();
                let at = nibble(&lone.key_hash, depth);
                internal.children[at] = Some(Node::Leaf(lone));
                internal.note_changed(at);
                *slot = Some(Node::Internal(internal));
            }
        }
        Some(Node::Internal(_)) => {}
    }
    let Some(Node::Internal(internal)) = slot else {
        return added;
    };
    let mut rest = updates;
    while let Some((first, _)) = rest.first() {
        let child = nibble(first, depth);
        let len = rest
            .iter()
            .position(|(key, _)| nibble(key, depth) != child)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(len);
        added += update(&mut internal.children[child], depth + 1, group, hasher);
        internal.note_changed(child);
        rest = tail;
    }
    if internal.present.count_ones() == 0
        || (internal.present.count_ones() == 1 && internal.leaves == internal.present)
    {
        // One leaf (or nothing) left: it takes this node's place.
        let lone = internal.children.iter_mut().find_map(Option::take);
        *slot = lone;
    } else {
        internal.rehash(hasher);
    }
    added
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
