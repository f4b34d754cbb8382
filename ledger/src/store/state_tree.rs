//! The authenticated state: a Jellyfish Merkle tree hashed with blake3 ([`StateHasher`]).
//!
//! The tree's version is the block height: version 0 is the genesis state, version h the state
//! after block h. Keys are hashed to [`KeyHash`]es with [`StateHasher`]; the tree never sees raw
//! keys, so historic reads go through the value history (key hash ‖ version → value).
//!
//! - [`compute_update`] turns a block's changes into a [`TreeUpdate`]: its inserts and
//!   overwrites through [`tree_insert`](super::tree_insert), a block that deletes through jmt.
//! - [`DbTreeReader`] reads nodes and value history from RocksDB, for jmt and for
//!   `tree_insert`, through the store's [`NodeCache`] of stored node bytes.
//! - [`MemoryStateTree`] is the same tree held in memory, for models and tests.
//!
//! Invariant: the root computed for a set of changes depends only on the resulting key/value
//! set, never on insertion order or on which reader computed it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, SimpleHasher, Version};
use rocksdb::{ColumnFamily, DB};

use super::columns;
use super::node_cache::NodeCache;
use super::root_tree::{state_hash, TreeHasher, NODE_INPUT_MAX};
use super::tree_insert::{self, NodeSource, NodeView};
use crate::fast_hash::FastMap;
use crate::hash::{tags, Hash};
use crate::state::StateChanges;
use crate::LedgerError;

/// The tree's hash function ([`root_tree::state_hash`](super::root_tree::state_hash): blake3
/// under `gongzhi/state/v1` for keys and values, one keyed compression per leaf and internal
/// node) behind jmt's streaming `SimpleHasher` interface. Input that could be a node's is
/// gathered and hashed at once when finished; longer input streams into blake3.
#[derive(Clone, Debug)]
pub struct StateHasher {
    short: [u8; NODE_INPUT_MAX],
    len: usize,
    long: Option<blake3::Hasher>,
}

impl SimpleHasher for StateHasher {
    fn new() -> Self {
        StateHasher {
            short: [0; NODE_INPUT_MAX],
            len: 0,
            long: None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(long) = &mut self.long {
            long.update(data);
        } else if let Some(room) = self.short.get_mut(self.len..self.len + data.len()) {
            room.copy_from_slice(data);
            self.len += data.len();
        } else {
            // Deriving the context key costs one blake3 compression; do it once and clone.
            static PROTOTYPE: OnceLock<blake3::Hasher> = OnceLock::new();
            let mut long = PROTOTYPE
                .get_or_init(|| blake3::Hasher::new_derive_key(tags::STATE))
                .clone();
            long.update(&self.short[..self.len]);
            long.update(data);
            self.long = Some(long);
        }
    }

    fn finalize(self) -> [u8; 32] {
        match self.long {
            Some(long) => *long.finalize().as_bytes(),
            None => state_hash(&self.short[..self.len]),
        }
    }
}

/// The tree type used everywhere in Gongzhi.
pub type StateTree<'a, R> = JellyfishMerkleTree<'a, R, StateHasher>;

/// The tree key of a state key.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash(StateHasher::hash(key))
}

/// The root of a tree with no keys.
pub fn empty_root() -> Hash {
    Hash(StateTree::<MemoryStateTree>::EMPTY_ROOT.0)
}

/// Changes as jmt's value set (key hashes; `None` deletes).
pub fn value_set(changes: &StateChanges) -> Vec<(KeyHash, Option<OwnedValue>)> {
    changes
        .iter()
        .map(|(key, value)| (key_hash(key), value.clone()))
        .collect()
}

/// What one version adds to the stored tree: its new nodes, and the key hash of each change
/// for the value history (in the order of the changes, which hold the values).
#[derive(Debug, Clone, Default)]
pub struct TreeUpdate {
    /// New nodes: node key and stored bytes (postcard of jmt's `Node`).
    pub nodes: Vec<(NodeKey, Vec<u8>)>,
    /// The key hash of each change, in the changes' (key) order.
    pub key_hashes: Vec<KeyHash>,
}

impl TreeUpdate {
    /// jmt's update batch in stored form. Its values are the changes' own (jmt records every
    /// key of the value set it was given, deletions as `None`), so only their key hashes stay.
    fn from_jmt(batch: &TreeUpdateBatch, changes: &StateChanges) -> TreeUpdate {
        TreeUpdate {
            nodes: batch
                .node_batch
                .nodes()
                .iter()
                .map(|(key, node)| (key.clone(), encode_node(node)))
                .collect(),
            key_hashes: changes.keys().map(|key| key_hash(key)).collect(),
        }
    }

    /// The value history entries of this update: key hash and value (`None` = deleted).
    pub fn values<'a>(
        &'a self,
        changes: &'a StateChanges,
    ) -> impl Iterator<Item = (&'a KeyHash, Option<&'a [u8]>)> + 'a {
        self.key_hashes
            .iter()
            .zip(changes.values())
            .map(|(hash, value)| (hash, value.as_deref()))
    }
}

/// Compute the root and the tree update of `changes` applied on top of version `version - 1`
/// (or on the empty tree at version 0), without writing anything.
///
/// A change set without deletions (nearly every block) goes through
/// [`tree_insert`](super::tree_insert), which reads and writes nodes in their stored form; one
/// with deletions (or none at all) goes key by key through jmt. Both give the same tree (a
/// Jellyfish tree's shape depends only on its key set), which
/// `batch_and_key_by_key_updates_agree` checks.
pub fn compute_update<R: TreeReader + NodeSource>(
    reader: &R,
    changes: &StateChanges,
    version: Version,
) -> Result<(Hash, TreeUpdate), LedgerError> {
    let inserts_only = !changes.is_empty() && changes.values().all(Option::is_some);
    if !inserts_only {
        return compute_update_key_by_key(reader, changes, version);
    }
    let mut hasher = TreeHasher::default();
    let mut key_hashes = Vec::with_capacity(changes.len());
    let mut inserts = Vec::with_capacity(changes.len());
    for (key, value) in changes {
        let key_hash = hasher.hash(key);
        key_hashes.push(KeyHash(key_hash));
        if let Some(value) = value {
            inserts.push((key_hash, hasher.hash(value)));
        }
    }
    // Distinct keys (a map's) have distinct hashes.
    inserts.sort_unstable_by_key(|insert| insert.0);
    let (root, nodes) = tree_insert::insert(reader, &inserts, version)?;
    Ok((root, TreeUpdate { nodes, key_hashes }))
}

/// [`compute_update`] always key by key through jmt: the reference the insert path is tested
/// against, and the path of blocks that delete.
pub fn compute_update_key_by_key<R: TreeReader>(
    reader: &R,
    changes: &StateChanges,
    version: Version,
) -> Result<(Hash, TreeUpdate), LedgerError> {
    let (root, batch) = StateTree::new(reader)
        .put_value_set(value_set(changes), version)
        .map_err(from_jmt)?;
    Ok((Hash(root.0), TreeUpdate::from_jmt(&batch, changes)))
}

/// The root at `version`, `None` if that version has no root node.
pub fn root_at<R: TreeReader>(reader: &R, version: Version) -> Result<Option<Hash>, LedgerError> {
    StateTree::new(reader)
        .get_root_hash_option(version)
        .map(|root| root.map(|RootHash(bytes)| Hash(bytes)))
        .map_err(from_jmt)
}

/// RocksDB key of a tree node: `version ‖ postcard(nibble path)`.
pub fn node_key_bytes(node_key: &NodeKey) -> Vec<u8> {
    let mut out = node_key.version().to_be_bytes().to_vec();
    out.extend(crate::codec::to_bytes(node_key.nibble_path()));
    out
}

/// Stored bytes of a tree node.
pub fn encode_node(node: &Node) -> Vec<u8> {
    crate::codec::to_bytes(node)
}

fn decode_node(bytes: &[u8]) -> Result<Node, LedgerError> {
    crate::codec::from_bytes(bytes, "state tree node")
        .map_err(|e| LedgerError::Corrupt(format!("undecodable state tree node: {e}")))
}

/// Turn a jmt error back into the ledger error our reader put in it, or call it corruption:
/// jmt only fails on reader errors or on a tree that is not what it wrote.
pub fn from_jmt(err: anyhow::Error) -> LedgerError {
    match err.downcast::<LedgerError>() {
        Ok(ledger) => ledger,
        Err(other) => LedgerError::Corrupt(format!("state tree: {other:#}")),
    }
}

/// jmt's view of the tree stored in RocksDB, through the store's [`NodeCache`].
#[derive(Clone, Copy)]
pub struct DbTreeReader<'a> {
    pub(super) db: &'a DB,
    pub(super) nodes: &'a ColumnFamily,
    pub(super) values: &'a ColumnFamily,
    pub(super) cache: &'a NodeCache,
}

impl std::fmt::Debug for DbTreeReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbTreeReader")
    }
}

impl DbTreeReader<'_> {
    /// The newest value of `key_hash` at or before `max_version` (tombstones read as `None`).
    pub fn value_at(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        let mut iter = self.db.raw_iterator_cf(self.values);
        iter.seek_for_prev(columns::value_key(&key_hash.0, max_version));
        if !iter.valid() {
            iter.status()?;
            return Ok(None);
        }
        match (iter.key(), iter.value()) {
            (Some(key), Some(value)) if key.len() == 40 && key[..32] == key_hash.0 => {
                columns::decode_history_value(value)
            }
            (Some(_), Some(_)) => Ok(None),
            _ => {
                iter.status()?;
                Ok(None)
            }
        }
    }
}

impl DbTreeReader<'_> {
    /// `read` applied to the stored bytes of the node `key` (cached, or read from RocksDB and
    /// then cached); `None` if there is no such node.
    fn with_node<T>(
        &self,
        node_key: &NodeKey,
        read: impl Fn(&[u8]) -> Result<T, LedgerError>,
    ) -> Result<Option<T>, LedgerError> {
        if let Some(result) = self.cache.with(node_key, &read) {
            return result.map(Some);
        }
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.nodes, node_key_bytes(node_key))?
        else {
            return Ok(None);
        };
        let result = read(&bytes)?;
        // Stored nodes are committed and immutable: safe to remember.
        self.cache.insert(node_key, bytes.to_vec());
        Ok(Some(result))
    }
}

impl NodeSource for DbTreeReader<'_> {
    fn node_view(&self, key: &NodeKey) -> Result<Option<NodeView>, LedgerError> {
        self.with_node(key, tree_insert::parse)
    }
}

impl TreeReader for DbTreeReader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.with_node(node_key, decode_node)?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value_at(max_version, key_hash)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's restore-from-chunks path asks for this; Gongzhi never restores that way.
        Err(LedgerError::Storage("the store does not support jmt state restore".into()).into())
    }
}

/// The whole tree in memory: replays, models and tests. Keeps every version, like the store.
#[derive(Debug, Default, Clone)]
pub struct MemoryStateTree {
    /// Stored node bytes. Looked up only, never iterated: a hash map cannot leak an order
    /// into results.
    nodes: FastMap<NodeKey, Vec<u8>>,
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    next_version: Version,
}

impl MemoryStateTree {
    /// An empty tree; the first [`MemoryStateTree::apply`] creates version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply `changes` as the next version and return its root.
    pub fn apply(&mut self, changes: &StateChanges) -> Result<Hash, LedgerError> {
        let version = self.next_version;
        let (root, update) = compute_update(&*self, changes, version)?;
        self.absorb(update, changes);
        Ok(root)
    }

    fn absorb(&mut self, update: TreeUpdate, changes: &StateChanges) {
        let version = self.next_version;
        for (hash, value) in update.values(changes) {
            self.values
                .insert((*hash, version), value.map(<[u8]>::to_vec));
        }
        self.nodes.extend(update.nodes);
        self.next_version += 1;
    }

    /// The latest version applied, `None` before the first.
    pub fn latest_version(&self) -> Option<Version> {
        self.next_version.checked_sub(1)
    }

    /// The root at `version`.
    pub fn root(&self, version: Version) -> Result<Option<Hash>, LedgerError> {
        root_at(self, version)
    }
}

impl NodeSource for MemoryStateTree {
    fn node_view(&self, key: &NodeKey) -> Result<Option<NodeView>, LedgerError> {
        self.nodes
            .get(key)
            .map(|bytes| tree_insert::parse(bytes))
            .transpose()
    }
}

impl TreeReader for MemoryStateTree {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self
            .nodes
            .get(node_key)
            .map(|bytes| decode_node(bytes))
            .transpose()?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self
            .values
            .range((key_hash, 0)..=(key_hash, max_version))
            .next_back()
            .and_then(|(_, value)| value.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Err(
            LedgerError::Storage("the in-memory tree does not support jmt state restore".into())
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testkit::changes;

    #[test]
    fn empty_genesis_has_the_empty_root() {
        let mut tree = MemoryStateTree::new();
        assert_eq!(tree.apply(&StateChanges::new()).ok(), Some(empty_root()));
    }

    #[test]
    fn root_depends_on_content_not_history() {
        let mut a = MemoryStateTree::new();
        let mut b = MemoryStateTree::new();
        a.apply(&changes(&[("x", Some("1")), ("y", Some("2"))]))
            .ok();
        let ra = a.apply(&changes(&[("y", None)])).ok();
        b.apply(&changes(&[("x", Some("1"))])).ok();
        let rb = b.apply(&StateChanges::new()).ok();
        assert_eq!(ra, rb);
        assert_ne!(a.root(0).ok(), a.root(1).ok());
        assert_eq!(a.root(1).ok().flatten(), ra);
    }

    /// The batch insert (blocks without deletions) and jmt's key-by-key insert build the same
    /// tree: same roots and same new nodes at every version, over random blocks that add,
    /// overwrite and (in some blocks) delete keys.
    #[test]
    fn batch_and_key_by_key_updates_agree() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut batched = MemoryStateTree::new();
        let mut reference = MemoryStateTree::new();
        let mut live: Vec<Vec<u8>> = Vec::new();
        for version in 0..40u64 {
            let mut block = StateChanges::new();
            let writes = rng.gen_range(1..60);
            write_random(&mut rng, &mut live, &mut block, writes, (6, 12));
            if version % 5 == 4 {
                for _ in 0..3 {
                    let index = rng.gen_range(0..live.len());
                    block.insert(live.swap_remove(index), None);
                }
            }
            let (root_a, update_a) = compute_update(&batched, &block, version).expect("batched");
            let (root_b, update_b) =
                compute_update_key_by_key(&reference, &block, version).expect("key by key");
            assert_eq!(root_a, root_b, "roots differ at version {version}");
            assert_eq!(
                sorted(&update_a),
                sorted(&update_b),
                "new nodes differ at version {version}"
            );
            assert_eq!(update_a.key_hashes, update_b.key_hashes);
            batched.absorb(update_a, &block);
            reference.absorb(update_b, &block);
        }
    }

    /// Add `writes` random writes to `block`: 30 % overwrite a live key, the rest insert a new
    /// random key of `lengths.0` bytes (recorded in `live`); values are random, `lengths.1`
    /// bytes long.
    fn write_random(
        rng: &mut impl rand::Rng,
        live: &mut Vec<Vec<u8>>,
        block: &mut StateChanges,
        writes: usize,
        lengths: (usize, usize),
    ) {
        let random_bytes = |rng: &mut _, len| {
            (0..len)
                .map(|_| rand::Rng::gen::<u8>(rng))
                .collect::<Vec<u8>>()
        };
        for _ in 0..writes {
            let key = if !live.is_empty() && rng.gen_bool(0.3) {
                live[rng.gen_range(0..live.len())].clone()
            } else {
                let key = random_bytes(rng, lengths.0);
                live.push(key.clone());
                key
            };
            let value = random_bytes(rng, lengths.1);
            block.insert(key, Some(value));
        }
    }

    fn sorted(update: &TreeUpdate) -> BTreeMap<NodeKey, Vec<u8>> {
        update.nodes.iter().cloned().collect()
    }

    /// `tree_insert` builds exactly what jmt's own batch insert builds — the same root, node
    /// keys and node bytes — over blocks large enough for deep paths, overwrites, leaves pushed
    /// down by new neighbours, and the empty tree (version 0 and after a block that deletes
    /// every key).
    #[test]
    fn inserts_match_jmt() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let mut tree = MemoryStateTree::new();
        let mut live: Vec<Vec<u8>> = Vec::new();
        for version in 0..30u64 {
            let mut block = StateChanges::new();
            if version == 12 {
                // Delete everything: the next block starts from jmt's null root.
                for key in live.drain(..) {
                    block.insert(key, None);
                }
            } else {
                let writes = rng.gen_range(1..1500);
                write_random(&mut rng, &mut live, &mut block, writes, (8, 20));
            }
            let (root, update) = compute_update(&tree, &block, version).expect("insert");
            if version != 12 {
                let inserts: Vec<(KeyHash, OwnedValue)> = block
                    .iter()
                    .map(|(key, value)| (key_hash(key), value.clone().expect("an insert")))
                    .collect();
                let (roots, batch) = StateTree::new(&tree)
                    .batch_put_value_sets(vec![inserts], None, version)
                    .expect("jmt");
                assert_eq!(root.0, roots[0].0, "roots differ at version {version}");
                let jmt_nodes: BTreeMap<NodeKey, Vec<u8>> = batch
                    .node_batch
                    .nodes()
                    .iter()
                    .map(|(key, node)| (key.clone(), encode_node(node)))
                    .collect();
                assert_eq!(
                    sorted(&update),
                    jmt_nodes,
                    "nodes differ at version {version}"
                );
                for (_, bytes) in &update.nodes {
                    let view = tree_insert::parse(bytes).expect("parses");
                    assert!(!matches!(view, NodeView::Null));
                }
            }
            tree.absorb(update, &block);
            assert_eq!(tree.root(version).expect("root"), Some(root));
        }
        assert!(
            live.len() > 5_000,
            "the tree grew deep enough: {}",
            live.len()
        );
    }

    /// A stored node that is cut short, has bytes after it, or records the wrong number of
    /// children is refused as corrupt, never half-read.
    #[test]
    fn damaged_node_bytes_are_corrupt() {
        let mut tree = MemoryStateTree::new();
        let root = tree
            .apply(&crate::store::testkit::changes(&[
                ("a", Some("1")),
                ("b", Some("2")),
            ]))
            .expect("apply");
        assert_ne!(root, empty_root());
        let bytes = tree
            .nodes
            .values()
            .find(|bytes| matches!(tree_insert::parse(bytes), Ok(NodeView::Internal(_))))
            .expect("an internal node")
            .clone();
        for damaged in [
            bytes[..bytes.len() - 1].to_vec(),
            [bytes.as_slice(), &[0]].concat(),
            {
                let mut wrong_count = bytes.clone();
                let at = wrong_count.len() - 2;
                wrong_count[at] += 1;
                wrong_count
            },
            vec![7],
        ] {
            assert!(
                matches!(tree_insert::parse(&damaged), Err(LedgerError::Corrupt(_))),
                "{damaged:?} parsed"
            );
        }
    }

    #[test]
    fn hasher_is_domain_separated() {
        assert_ne!(StateHasher::hash(b"k"), *blake3::hash(b"k").as_bytes());
        assert_eq!(StateHasher::hash(b"k"), Hash::tagged(tags::STATE, b"k").0);
    }

    /// jmt feeds a node's separator and halves in three calls, values in one: however the input
    /// is split, `StateHasher` gives what the tree's own hasher gives for the whole of it. Node
    /// inputs get the keyed one-compression hash (distinct per kind); anything else, including
    /// a separator followed by the wrong length, the `gongzhi/state/v1` hash.
    #[test]
    fn streamed_and_whole_inputs_hash_alike() {
        use crate::store::root_tree::NodeKind;
        let halves: Vec<u8> = (0..64u8).collect();
        let node = |domain: &[u8], tail: &[u8]| [domain, tail].concat();
        let leaf = node(b"JMT::LeafNode", &halves);
        let internal = node(b"JMT::IntrnalNode", &halves);
        let inputs = [
            b"k".to_vec(),
            leaf.clone(),
            internal.clone(),
            node(b"JMT::IntrnalNode", &halves[..63]),
            node(b"JMT::IntrnalNode", &[halves.as_slice(), &[0]].concat()),
            vec![7; 80],
            vec![9; 1_000],
            Vec::new(),
        ];
        let mut tree_hasher = TreeHasher::default();
        for input in &inputs {
            let whole = tree_hasher.hash(input);
            for piece in [1, 13, 16, 32, 80, 1_000] {
                let mut streamed = StateHasher::new();
                for chunk in input.chunks(piece) {
                    streamed.update(chunk);
                }
                assert_eq!(
                    streamed.finalize(),
                    whole,
                    "{} bytes in pieces of {piece}",
                    input.len()
                );
            }
            let is_node = *input == leaf || *input == internal;
            assert_eq!(
                whole == Hash::tagged(tags::STATE, input).0,
                !is_node,
                "{} bytes",
                input.len()
            );
        }
        let a: [u8; 32] = std::array::from_fn(|i| halves[i]);
        let b: [u8; 32] = std::array::from_fn(|i| halves[32 + i]);
        let (a, b) = (&a, &b);
        assert_eq!(
            tree_hasher.hash_pair(NodeKind::Leaf, a, b),
            tree_hasher.hash(&leaf)
        );
        assert_eq!(
            tree_hasher.hash_pair(NodeKind::Internal, a, b),
            tree_hasher.hash(&internal)
        );
        assert_ne!(tree_hasher.hash(&leaf), tree_hasher.hash(&internal));
    }
}
