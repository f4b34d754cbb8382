//! Jellyfish tree nodes kept in memory between blocks, as their stored bytes.
//!
//! Every block's state update walks the tree from the root to each changed key. Without a
//! cache each step is a RocksDB point read; with it, the upper levels (touched by every block)
//! and recently written nodes (the next block's parents) come from memory. A node is held as
//! the bytes RocksDB holds (jmt's postcard encoding): the update that wrote it hands them over
//! without a copy, and a reader parses only what it needs (see `tree_insert::parse`).
//!
//! The cache is kept by **position** (a node's nibble path), one node per position: the newest
//! committed version there. An update only ever reads the latest tree, whose node at a position
//! is the newest one written there, so older versions would be dead weight: a block rewrites
//! the nodes on every changed path, and a cache keyed by version filled up with the versions
//! they replaced, allocating fresh memory for each. Here a newer node takes its predecessor's
//! place, and memory grows only with the positions the tree has.
//!
//! Invariants:
//! - Only nodes that are durably committed enter the cache: nodes read from RocksDB, and the
//!   nodes of a block's update after its write batch returned. A prepared-but-undecided block's
//!   nodes never do (another proposal for the same height has different nodes under the same
//!   keys).
//! - Tree nodes are immutable once written (a node key names a version), and a lookup hits only
//!   when the cached node's version is the one asked for, so a cached node can never be stale.
//!   An older node (a historical read) never replaces a newer one at its position. The cache
//!   changes speed, never results: lookups only, no iteration.
//! - Memory is bounded: two generations of at most `capacity` positions each, a position in at
//!   most one of them; when the current one is full it becomes the previous one and the old
//!   previous one is dropped (an approximate LRU: a hit in the previous generation is moved to
//!   the current one).

use std::sync::{Mutex, PoisonError};

use jmt::storage::{NibblePath, NodeKey};
use jmt::Version;

use crate::fast_hash::FastMap;

/// Default positions per generation. Most cached nodes are leaves (a few hundred bytes with
/// the position key and map slot); a position that misses is a RocksDB read on the consensus
/// path, and on a node that just flushed it is a disk read (flushes write with direct I/O, so
/// new table files are not in the page cache). At 200,000 a devnet's tree outgrew the cache
/// after about a minute of saturation: a validator's consensus path then read `jmt_nodes`
/// 6,199–7,159 times in 20 s; at 1,000,000, 13–64 times. Memory grows only with the tree's
/// positions: at the end of a 60 s saturation run a validator held 575 MB resident against
/// 464 MB at 200,000 (docs/BENCHMARKS.md, session 15).
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// A node's place in the tree, packed: its nibble count and its nibbles, two per byte (a
/// path has at most 64 nibbles). A map key that needs no allocation, unlike a [`NibblePath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Position {
    nibbles: u8,
    packed: [u8; 32],
}

impl Position {
    fn of(path: &NibblePath) -> Position {
        let mut packed = [0u8; 32];
        let mut nibbles = 0u8;
        for (i, nibble) in path.nibbles().take(64).enumerate() {
            let nibble = u8::from(nibble);
            packed[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
            nibbles += 1;
        }
        Position { nibbles, packed }
    }
}

/// A bounded, thread-safe cache of decoded tree nodes.
#[derive(Debug)]
pub struct NodeCache {
    generations: Mutex<Generations>,
}

type Generation = FastMap<Position, (Version, Vec<u8>)>;

#[derive(Debug)]
struct Generations {
    current: Generation,
    previous: Generation,
    capacity: usize,
}

impl Generations {
    /// Hold `node`, the node at `position` as of `version`, unless a newer one is held there.
    fn insert(&mut self, position: Position, version: Version, node: Vec<u8>) {
        if let Some(held) = self.current.get_mut(&position) {
            if held.0 <= version {
                *held = (version, node);
            }
            return;
        }
        if let Some((held, _)) = self.previous.get(&position) {
            if *held > version {
                return;
            }
            self.previous.remove(&position);
        }
        if self.current.len() >= self.capacity {
            // The dropped generation's table becomes the new current one. Both were sized up
            // front (a growing table rehashes every node it holds), and reusing one means a
            // rotation neither allocates nor faults in and zeroes a fresh table.
            self.previous.clear();
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        self.current.insert(position, (version, node));
    }
}

fn generation(capacity: usize) -> Generation {
    let mut table = FastMap::default();
    table.reserve(capacity);
    table
}

impl Default for NodeCache {
    fn default() -> Self {
        NodeCache::new(DEFAULT_CAPACITY)
    }
}

impl NodeCache {
    /// A cache of at most `2 × capacity` nodes (`capacity` 0 disables it).
    pub fn new(capacity: usize) -> NodeCache {
        NodeCache {
            generations: Mutex::new(Generations {
                current: generation(capacity),
                // Reserved, not touched: its pages are mapped when the first rotation fills it.
                previous: generation(capacity),
                capacity,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `read` applied to the cached bytes of the node `key`, if it is cached.
    pub fn with<T>(&self, key: &NodeKey, read: impl FnOnce(&[u8]) -> T) -> Option<T> {
        let position = Position::of(key.nibble_path());
        let version = key.version();
        let mut generations = self.lock();
        if let Some((held, node)) = generations.current.get(&position) {
            return (*held == version).then(|| read(node));
        }
        match generations.previous.get(&position) {
            Some((held, _)) if *held == version => {}
            _ => return None,
        }
        let (held, node) = generations.previous.remove(&position)?;
        let result = read(&node);
        generations.insert(position, held, node);
        Some(result)
    }

    /// Remember a committed node's stored bytes.
    pub fn insert(&self, key: &NodeKey, node: Vec<u8>) {
        let mut generations = self.lock();
        if generations.capacity > 0 {
            generations.insert(Position::of(key.nibble_path()), key.version(), node);
        }
    }

    /// Remember every node of a committed update.
    pub fn insert_all(&self, nodes: impl IntoIterator<Item = (NodeKey, Vec<u8>)>) {
        let mut generations = self.lock();
        if generations.capacity == 0 {
            return;
        }
        for (key, node) in nodes {
            generations.insert(Position::of(key.nibble_path()), key.version(), node);
        }
    }

    /// Nodes held now (both generations).
    pub fn len(&self) -> usize {
        let generations = self.lock();
        generations.current.len() + generations.previous.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node key of `version` at the two-nibble path `path` (jmt has no public constructor
    /// for a nibble path; this is postcard of `NodeKey { version, nibble_path }`).
    fn key(version: u8, path: u8) -> NodeKey {
        postcard::from_bytes(&[version, 2, 1, path]).expect("a node key")
    }

    fn leaf(i: u8) -> Vec<u8> {
        vec![i; 3]
    }

    fn get(cache: &NodeCache, key: &NodeKey) -> Option<Vec<u8>> {
        cache.with(key, <[u8]>::to_vec)
    }

    #[test]
    fn holds_at_most_two_generations_and_keeps_what_is_used() {
        let cache = NodeCache::new(2);
        let keys: Vec<NodeKey> = (0..5).map(|i| key(1, i)).collect();
        for (i, key) in keys.iter().take(3).enumerate() {
            cache.insert(key, leaf(i as u8));
        }
        assert_eq!(cache.len(), 3);
        // A hit in the previous generation moves the node forward.
        assert_eq!(get(&cache, &keys[0]), Some(leaf(0)));
        cache.insert(&keys[3], leaf(3));
        cache.insert(&keys[4], leaf(4));
        assert!(cache.len() <= 4);
        assert_eq!(get(&cache, &keys[4]), Some(leaf(4)));
        assert_eq!(
            get(&cache, &keys[1]),
            None,
            "the oldest generation was dropped"
        );
    }

    #[test]
    fn a_position_holds_its_newest_node_only() {
        let cache = NodeCache::new(10);
        let (old, new, newer) = (key(3, 0xab), key(5, 0xab), key(9, 0xab));
        cache.insert(&old, leaf(3));
        cache.insert_all([(new.clone(), leaf(5))]);
        assert_eq!(cache.len(), 1, "the newer node took the older one's place");
        assert_eq!(get(&cache, &new), Some(leaf(5)));
        assert_eq!(
            get(&cache, &old),
            None,
            "another version is a miss, never a wrong node"
        );
        // A historical read of the old node does not push out the newer one.
        cache.insert(&old, leaf(3));
        assert_eq!(get(&cache, &new), Some(leaf(5)));
        assert_eq!(get(&cache, &newer), None);
        // Other positions are independent, including a shorter path with the same first byte.
        let short: NodeKey = postcard::from_bytes(&[5, 1, 1, 0xa0]).expect("a node key");
        cache.insert(&short, leaf(7));
        assert_eq!(get(&cache, &short), Some(leaf(7)));
        assert_eq!(get(&cache, &new), Some(leaf(5)));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_newer_node_replaces_one_in_the_previous_generation() {
        let cache = NodeCache::new(1);
        cache.insert(&key(1, 1), leaf(1));
        cache.insert(&key(1, 2), leaf(2)); // rotates: position 1 is now in the previous one
        cache.insert(&key(4, 1), leaf(4));
        assert_eq!(get(&cache, &key(4, 1)), Some(leaf(4)));
        assert_eq!(get(&cache, &key(1, 1)), None);
        assert!(cache.len() <= 2);
    }

    #[test]
    fn capacity_zero_disables_the_cache() {
        let cache = NodeCache::new(0);
        cache.insert(&key(1, 1), leaf(1));
        assert!(cache.is_empty());
        assert_eq!(get(&cache, &key(1, 1)), None);
    }
}
