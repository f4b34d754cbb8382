//! The authenticated state: a Jellyfish Merkle tree hashed with blake3 under `gongzhi/state/v1`.
//!
//! The tree's version is the block height: version 0 is the genesis state, version h the state
//! after block h. Keys are hashed to [`KeyHash`]es with [`StateHasher`]; the tree never sees raw
//! keys, so historic reads go through the value history (key hash ‖ version → value).
//!
//! - [`DbTreeReader`] reads nodes and value history from RocksDB for jmt, through the store's
//!   [`NodeCache`] of decoded nodes.
//! - [`MemoryStateTree`] is the same tree held in memory, for replays and models.
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
use crate::fast_hash::FastMap;
use crate::hash::{tags, Hash};
use crate::state::StateChanges;
use crate::LedgerError;

/// blake3 keyed by the `gongzhi/state/v1` derivation context: the tree's only hash function,
/// for keys, values, leaves and inner nodes.
#[derive(Clone, Debug)]
pub struct StateHasher(blake3::Hasher);

impl SimpleHasher for StateHasher {
    fn new() -> Self {
        // Deriving the context key costs one blake3 compression; do it once and clone.
        static PROTOTYPE: OnceLock<blake3::Hasher> = OnceLock::new();
        StateHasher(
            PROTOTYPE
                .get_or_init(|| blake3::Hasher::new_derive_key(tags::STATE))
                .clone(),
        )
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
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

/// Compute the root and node batch of `changes` applied on top of version `version - 1`
/// (or on the empty tree at version 0), without writing anything.
///
/// A change set without deletions (nearly every block) goes through jmt's batch insert, which
/// builds and hashes each touched node once; with deletions it goes key by key. Both give the
/// same tree (a Jellyfish tree's shape depends only on its key set), which
/// `batch_and_key_by_key_updates_agree` checks.
pub fn compute_update<R: TreeReader>(
    reader: &R,
    changes: &StateChanges,
    version: Version,
) -> Result<(Hash, TreeUpdateBatch), LedgerError> {
    let tree = StateTree::new(reader);
    let inserts: Option<Vec<(KeyHash, OwnedValue)>> = changes
        .iter()
        .map(|(key, value)| value.as_ref().map(|value| (key_hash(key), value.clone())))
        .collect();
    let (root, batch) = match inserts {
        Some(inserts) if !inserts.is_empty() => tree
            .batch_put_value_sets(vec![inserts], None, version)
            .map(|(roots, batch)| (roots.first().copied(), batch)),
        _ => tree
            .put_value_set(value_set(changes), version)
            .map(|(root, batch)| (Some(root), batch)),
    }
    .map_err(from_jmt)?;
    let root = root.ok_or_else(|| LedgerError::Corrupt("state tree update gave no root".into()))?;
    Ok((Hash(root.0), batch))
}

/// [`compute_update`] always key by key: the reference the batch path is tested against.
pub fn compute_update_key_by_key<R: TreeReader>(
    reader: &R,
    changes: &StateChanges,
    version: Version,
) -> Result<(Hash, TreeUpdateBatch), LedgerError> {
    let (root, batch) = StateTree::new(reader)
        .put_value_set(value_set(changes), version)
        .map_err(from_jmt)?;
    Ok((Hash(root.0), batch))
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

impl TreeReader for DbTreeReader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if let Some(node) = self.cache.get(node_key) {
            return Ok(Some(node));
        }
        let bytes = self
            .db
            .get_pinned_cf(self.nodes, node_key_bytes(node_key))
            .map_err(LedgerError::from)?;
        let node = bytes.map(|b| decode_node(&b)).transpose()?;
        if let Some(node) = &node {
            // Stored nodes are committed and immutable: safe to remember.
            self.cache.insert(node_key, node.clone());
        }
        Ok(node)
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
    /// Looked up only, never iterated: a hash map cannot leak an order into results.
    nodes: FastMap<NodeKey, Node>,
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
        let (root, batch) = compute_update(&*self, changes, version)?;
        self.absorb(&batch);
        Ok(root)
    }

    fn absorb(&mut self, batch: &TreeUpdateBatch) {
        for (key, node) in batch.node_batch.nodes() {
            self.nodes.insert(key.clone(), node.clone());
        }
        for ((v, hash), value) in batch.node_batch.values() {
            self.values.insert((*hash, *v), value.clone());
        }
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

impl TreeReader for MemoryStateTree {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(node_key).cloned())
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
            for _ in 0..rng.gen_range(1..60) {
                let key = if !live.is_empty() && rng.gen_bool(0.3) {
                    live[rng.gen_range(0..live.len())].clone()
                } else {
                    let key = rng.gen::<[u8; 6]>().to_vec();
                    live.push(key.clone());
                    key
                };
                block.insert(key, Some(rng.gen::<[u8; 12]>().to_vec()));
            }
            if version % 5 == 4 {
                for _ in 0..3 {
                    let index = rng.gen_range(0..live.len());
                    block.insert(live.swap_remove(index), None);
                }
            }
            let (root_a, batch_a) = compute_update(&batched, &block, version).expect("batched");
            let (root_b, batch_b) =
                compute_update_key_by_key(&reference, &block, version).expect("key by key");
            assert_eq!(root_a, root_b, "roots differ at version {version}");
            assert_eq!(
                batch_a.node_batch.nodes(),
                batch_b.node_batch.nodes(),
                "new nodes differ at version {version}"
            );
            batched.absorb(&batch_a);
            reference.absorb(&batch_b);
        }
    }

    #[test]
    fn hasher_is_domain_separated() {
        assert_ne!(StateHasher::hash(b"k"), *blake3::hash(b"k").as_bytes());
        assert_eq!(StateHasher::hash(b"k"), Hash::tagged(tags::STATE, b"k").0);
    }
}
