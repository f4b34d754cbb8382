//! Decoded Jellyfish tree nodes kept in memory between blocks.
//!
//! Every block's state update walks the tree from the root to each changed key. Without a
//! cache each step is a RocksDB point read and a decode; with it, the upper levels (touched by
//! every block) and recently written nodes (the next block's parents) come from memory.
//!
//! Invariants:
//! - Only nodes that are durably committed enter the cache: nodes read from RocksDB, and the
//!   nodes of a block's update after its write batch returned. A prepared-but-undecided block's
//!   nodes never do (another proposal for the same height has different nodes under the same
//!   keys).
//! - Tree nodes are immutable once written (a node key names a version), so a cached node can
//!   never be stale. The cache changes speed, never results: lookups only, no iteration.
//! - Memory is bounded: two generations of at most `capacity` nodes each; when the current one
//!   is full it becomes the previous one and the old previous one is dropped (an approximate
//!   LRU: a hit in the previous generation is moved to the current one).

use std::sync::{Mutex, PoisonError};

use jmt::storage::{Node, NodeKey};

use crate::fast_hash::FastMap;

/// Default nodes per generation: about 100–200 MB at most with full internal nodes, far less
/// in practice (most cached nodes are 64-byte leaves).
pub const DEFAULT_CAPACITY: usize = 200_000;

/// A bounded, thread-safe cache of decoded tree nodes.
#[derive(Debug)]
pub struct NodeCache {
    generations: Mutex<Generations>,
}

#[derive(Debug)]
struct Generations {
    current: FastMap<NodeKey, Node>,
    previous: FastMap<NodeKey, Node>,
    capacity: usize,
}

impl Generations {
    fn insert(&mut self, key: NodeKey, node: Node) {
        if self.current.len() >= self.capacity {
            // The dropped generation's table becomes the new current one. Both were sized up
            // front (a growing table rehashes every node it holds), and reusing one means a
            // rotation neither allocates nor faults in and zeroes a fresh table.
            self.previous.clear();
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        self.current.insert(key, node);
    }
}

fn generation(capacity: usize) -> FastMap<NodeKey, Node> {
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

    /// The cached node, if any.
    pub fn get(&self, key: &NodeKey) -> Option<Node> {
        let mut generations = self.lock();
        if let Some(node) = generations.current.get(key) {
            return Some(node.clone());
        }
        let node = generations.previous.remove(key)?;
        generations.insert(key.clone(), node.clone());
        Some(node)
    }

    /// Remember a committed node.
    pub fn insert(&self, key: NodeKey, node: Node) {
        let mut generations = self.lock();
        if generations.capacity > 0 {
            generations.insert(key, node);
        }
    }

    /// Remember every node of a committed update.
    pub fn insert_all<'a>(&self, nodes: impl IntoIterator<Item = (&'a NodeKey, &'a Node)>) {
        let mut generations = self.lock();
        if generations.capacity == 0 {
            return;
        }
        for (key, node) in nodes {
            generations.insert(key.clone(), node.clone());
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
    use jmt::storage::LeafNode;
    use jmt::{KeyHash, ValueHash};

    use super::*;

    fn leaf(i: u8) -> (NodeKey, Node) {
        let key_hash = KeyHash([i; 32]);
        // postcard of NodeKey { version: i, nibble_path: empty }: jmt has no public constructor
        // for a nibble path.
        let key: NodeKey = postcard::from_bytes(&[i, 0, 0]).expect("a node key");
        (key, Node::Leaf(LeafNode::new(key_hash, ValueHash([i; 32]))))
    }

    #[test]
    fn holds_at_most_two_generations_and_keeps_what_is_used() {
        let cache = NodeCache::new(2);
        let nodes: Vec<_> = (0..5).map(leaf).collect();
        cache.insert(nodes[0].0.clone(), nodes[0].1.clone());
        cache.insert(nodes[1].0.clone(), nodes[1].1.clone());
        cache.insert(nodes[2].0.clone(), nodes[2].1.clone());
        assert_eq!(cache.len(), 3);
        // A hit in the previous generation moves the node forward.
        assert_eq!(cache.get(&nodes[0].0), Some(nodes[0].1.clone()));
        cache.insert(nodes[3].0.clone(), nodes[3].1.clone());
        cache.insert(nodes[4].0.clone(), nodes[4].1.clone());
        assert!(cache.len() <= 4);
        assert_eq!(cache.get(&nodes[4].0), Some(nodes[4].1.clone()));
        assert_eq!(
            cache.get(&nodes[1].0),
            None,
            "the oldest generation was dropped"
        );
    }

    #[test]
    fn capacity_zero_disables_the_cache() {
        let cache = NodeCache::new(0);
        let (key, node) = leaf(1);
        cache.insert(key.clone(), node);
        assert!(cache.is_empty());
        assert_eq!(cache.get(&key), None);
    }
}
