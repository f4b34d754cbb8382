//! A block's inserts into the Jellyfish tree without jmt: the same new nodes, in jmt's stored
//! form, built from the stored bytes of the nodes they replace.
//!
//! jmt's batch insert copies every node it reads into a per-update hash map (growing it by
//! rehashing), clones each one again to build its successor, rehashes every internal node's
//! sixteen slots with a freshly built hasher, and the store then encodes each new node. On this
//! project's VM, where fresh memory is expensive, that churn was most of a node's state-update
//! time. Here a node is read as its stored bytes (from the store's
//! [`NodeCache`](super::NodeCache) or RocksDB) and parsed into a [`NodeView`] on the stack; each
//! new node is hashed once, with one reused hasher, and encoded once, into the bytes that the
//! store writes and then caches.
//!
//! Invariants:
//! - **The result is jmt's, byte for byte:** the same root and the same new node keys and node
//!   bytes (postcard of jmt's `Node`) as jmt's `batch_put_value_sets` on the same tree.
//!   `inserts_match_jmt` checks this over random blocks. Only inserts and overwrites are
//!   handled; a block that deletes a key goes through jmt (see `state_tree::compute_update`).
//! - Only the tree at `version - 1` is read: the root at that version, then children at the
//!   versions their parents record.
//! - Inserts are processed in key-hash order; nothing depends on a hash map's iteration order.

use jmt::storage::NodeKey;
use jmt::Version;

use super::root_tree::{nibble, NodeKind, TreeHasher, PLACEHOLDER};
use crate::hash::Hash;
use crate::LedgerError;

/// postcard's variant indexes of jmt's `Node` (`Null`, `Internal`, `Leaf`) and `NodeType`.
const NODE_NULL: u64 = 0;
const NODE_INTERNAL: u64 = 1;
const NODE_LEAF: u64 = 2;
const TYPE_LEAF: u64 = 0;
const TYPE_INTERNAL: u64 = 1;

/// One child slot of an internal node, as jmt's `Child` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub hash: [u8; 32],
    /// The version of the child's node key.
    pub version: Version,
    /// `None` for a leaf, else the number of leaves below the internal child.
    pub leaves: Option<u64>,
}

impl Slot {
    fn leaf_count(&self) -> u64 {
        self.leaves.unwrap_or(1)
    }
}

/// A stored node, parsed: what an insert needs to know of it. It lives on the stack, so an
/// internal node's sixteen slots stay inline rather than boxed (boxing is the allocation this
/// module exists to avoid).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeView {
    /// jmt's root of the empty tree.
    Null,
    Leaf {
        key_hash: [u8; 32],
        value_hash: [u8; 32],
    },
    Internal([Option<Slot>; 16]),
}

/// Where an insert reads the tree's nodes from.
pub trait NodeSource {
    /// The node stored under `key`, parsed; `None` if there is none.
    fn node_view(&self, key: &NodeKey) -> Result<Option<NodeView>, LedgerError>;
}

/// The new nodes of one version: node keys and their stored bytes.
pub type NewNodes = Vec<(NodeKey, Vec<u8>)>;

/// Insert or overwrite `inserts` — (key hash, value hash), sorted by key hash, no key twice,
/// at least one — as `version`, on top of the tree at `version - 1` (the empty tree when
/// `version` is 0). Returns the new root and the new nodes.
pub fn insert<S: NodeSource>(
    source: &S,
    inserts: &[([u8; 32], [u8; 32])],
    version: Version,
) -> Result<(Hash, NewNodes), LedgerError> {
    if inserts.is_empty() {
        return Err(LedgerError::Corrupt(
            "a tree insert needs at least one key".into(),
        ));
    }
    let mut builder = Builder {
        source,
        version,
        hasher: TreeHasher::default(),
        nodes: Vec::with_capacity(inserts.len() * 3),
    };
    let root = match version.checked_sub(1) {
        None => None,
        Some(previous) => {
            let key = node_key(previous, &[0; 32], 0);
            match source.node_view(&key)? {
                Some(NodeView::Null) => None,
                Some(view) => Some(view),
                None => {
                    return Err(LedgerError::Corrupt(format!(
                        "the state tree has no root at version {previous}"
                    )))
                }
            }
        }
    };
    let built = match root {
        None => builder.create(inserts, 0),
        Some(view) => builder.update(view, inserts, 0)?,
    };
    Ok((Hash(built.hash), builder.nodes))
}

struct Builder<'a, S> {
    source: &'a S,
    version: Version,
    hasher: TreeHasher,
    nodes: NewNodes,
}

impl<S: NodeSource> Builder<'_, S> {
    /// The subtree at depth `depth` that held `view` (reached through the path all of
    /// `inserts` share), with `inserts` applied.
    fn update(
        &mut self,
        view: NodeView,
        inserts: &[([u8; 32], [u8; 32])],
        depth: usize,
    ) -> Result<Slot, LedgerError> {
        match view {
            NodeView::Internal(mut slots) => {
                for group in groups(inserts, depth) {
                    let nibble = nibble(&group[0].0, depth);
                    let child = match slots[nibble] {
                        Some(old) => {
                            let key = node_key(old.version, &group[0].0, depth + 1);
                            let view = self.source.node_view(&key)?.ok_or_else(|| {
                                LedgerError::Corrupt(format!(
                                    "the state tree has no node {key:?} that its parent names"
                                ))
                            })?;
                            self.update(view, group, depth + 1)?
                        }
                        None => self.create(group, depth + 1),
                    };
                    slots[nibble] = Some(child);
                }
                Ok(self.internal(&inserts[0].0, depth, &slots))
            }
            NodeView::Leaf {
                key_hash,
                value_hash,
            } => Ok(self.with_leaf((key_hash, value_hash), inserts, depth)),
            NodeView::Null => Err(LedgerError::Corrupt(
                "the state tree has an empty node below its root".into(),
            )),
        }
    }

    /// A new subtree at depth `depth` holding `inserts` and the leaf `existing`, which sat
    /// where the subtree goes (its key shares the path above `depth` with `inserts`).
    fn with_leaf(
        &mut self,
        existing: ([u8; 32], [u8; 32]),
        inserts: &[([u8; 32], [u8; 32])],
        depth: usize,
    ) -> Slot {
        if let [(key_hash, value_hash)] = inserts {
            if *key_hash == existing.0 {
                return self.leaf(key_hash, value_hash, depth);
            }
        }
        let mut slots = [None; 16];
        let existing_nibble = nibble(&existing.0, depth);
        for group in groups(inserts, depth) {
            let nibble = nibble(&group[0].0, depth);
            slots[nibble] = Some(if nibble == existing_nibble {
                self.with_leaf(existing, group, depth + 1)
            } else {
                self.create(group, depth + 1)
            });
        }
        if slots[existing_nibble].is_none() {
            // The leaf moves down one level, unchanged, under a new node key.
            slots[existing_nibble] = Some(self.leaf(&existing.0, &existing.1, depth + 1));
        }
        self.internal(&existing.0, depth, &slots)
    }

    /// A new subtree at depth `depth` holding exactly `inserts`.
    fn create(&mut self, inserts: &[([u8; 32], [u8; 32])], depth: usize) -> Slot {
        if let [(key_hash, value_hash)] = inserts {
            return self.leaf(key_hash, value_hash, depth);
        }
        let mut slots = [None; 16];
        for group in groups(inserts, depth) {
            slots[nibble(&group[0].0, depth)] = Some(self.create(group, depth + 1));
        }
        self.internal(&inserts[0].0, depth, &slots)
    }

    /// Emit a leaf at the first `depth` nibbles of `key_hash`.
    fn leaf(&mut self, key_hash: &[u8; 32], value_hash: &[u8; 32], depth: usize) -> Slot {
        let mut bytes = Vec::with_capacity(65);
        push_varint(&mut bytes, NODE_LEAF);
        bytes.extend_from_slice(key_hash);
        bytes.extend_from_slice(value_hash);
        let hash = self.hasher.hash_pair(NodeKind::Leaf, key_hash, value_hash);
        self.nodes
            .push((node_key(self.version, key_hash, depth), bytes));
        Slot {
            hash,
            version: self.version,
            leaves: None,
        }
    }

    /// Emit an internal node with `slots` at the first `depth` nibbles of `path_key`.
    fn internal(&mut self, path_key: &[u8; 32], depth: usize, slots: &[Option<Slot>; 16]) -> Slot {
        let bytes = encode_internal(slots);
        let hash = range_hash(&mut self.hasher, slots, 0, 16);
        self.nodes
            .push((node_key(self.version, path_key, depth), bytes));
        Slot {
            hash,
            version: self.version,
            leaves: Some(slots.iter().flatten().map(Slot::leaf_count).sum()),
        }
    }
}

/// jmt's hash of the slots `start..start + width` of an internal node: the placeholder for no
/// child, the child's own hash for a single slot or for a range whose only child is a leaf,
/// else the domain-separated hash of its two halves.
fn range_hash(
    hasher: &mut TreeHasher,
    slots: &[Option<Slot>; 16],
    start: usize,
    width: usize,
) -> [u8; 32] {
    let mut present = slots[start..start + width].iter().flatten();
    match (present.next(), present.next()) {
        (None, _) => PLACEHOLDER,
        (Some(only), None) if width == 1 || only.leaves.is_none() => only.hash,
        _ => {
            let half = width / 2;
            let left = range_hash(hasher, slots, start, half);
            let right = range_hash(hasher, slots, start + half, half);
            hasher.hash_pair(NodeKind::Internal, &left, &right)
        }
    }
}

/// `inserts` (sorted by key hash) split into runs that share the nibble at `depth`.
fn groups(
    inserts: &[([u8; 32], [u8; 32])],
    depth: usize,
) -> impl Iterator<Item = &[([u8; 32], [u8; 32])]> {
    inserts.chunk_by(move |a, b| nibble(&a.0, depth) == nibble(&b.0, depth))
}

/// The node key at `version` of the first `nibbles` nibbles of `key_hash`. jmt's nibble path has
/// no public constructor, so this decodes its postcard form: version, nibble count, then the
/// packed nibbles as a byte string (an odd count leaves the last low nibble zero).
pub fn node_key(version: Version, key_hash: &[u8; 32], nibbles: usize) -> NodeKey {
    let bytes = nibbles.div_ceil(2);
    let mut encoded = Vec::with_capacity(12 + bytes);
    push_varint(&mut encoded, version);
    push_varint(&mut encoded, nibbles as u64);
    push_varint(&mut encoded, bytes as u64);
    encoded.extend_from_slice(&key_hash[..bytes]);
    if nibbles % 2 == 1 {
        if let Some(last) = encoded.last_mut() {
            *last &= 0xf0;
        }
    }
    postcard::from_bytes(&encoded).expect("a well-formed node key encoding")
}

/// jmt's stored bytes of an internal node with `slots`.
fn encode_internal(slots: &[Option<Slot>; 16]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + slots.iter().flatten().count() * 48);
    push_varint(&mut bytes, NODE_INTERNAL);
    let mut children = 0u64;
    let mut leaves = 0u64;
    for slot in slots {
        match slot {
            None => bytes.push(0),
            Some(slot) => {
                bytes.push(1);
                bytes.extend_from_slice(&slot.hash);
                push_varint(&mut bytes, slot.version);
                match slot.leaves {
                    None => push_varint(&mut bytes, TYPE_LEAF),
                    Some(count) => {
                        push_varint(&mut bytes, TYPE_INTERNAL);
                        push_varint(&mut bytes, count);
                    }
                }
                children += 1;
                leaves += slot.leaf_count();
            }
        }
    }
    push_varint(&mut bytes, children);
    push_varint(&mut bytes, leaves);
    bytes
}

/// Parse jmt's stored bytes of a node.
pub fn parse(bytes: &[u8]) -> Result<NodeView, LedgerError> {
    let mut reader = Reader { bytes, at: 0 };
    let view = match reader.varint()? {
        NODE_NULL => NodeView::Null,
        NODE_LEAF => NodeView::Leaf {
            key_hash: reader.array()?,
            value_hash: reader.array()?,
        },
        NODE_INTERNAL => {
            let mut slots = [None; 16];
            for slot in &mut slots {
                *slot = match reader.byte()? {
                    0 => None,
                    1 => Some(Slot {
                        hash: reader.array()?,
                        version: reader.varint()?,
                        leaves: match reader.varint()? {
                            TYPE_LEAF => None,
                            TYPE_INTERNAL => Some(reader.varint()?),
                            other => return Err(corrupt(format!("child type {other}"))),
                        },
                    }),
                    other => return Err(corrupt(format!("option tag {other}"))),
                };
            }
            let children = reader.varint()?;
            let leaves = reader.varint()?;
            let present = slots.iter().flatten().count() as u64;
            let below: u64 = slots.iter().flatten().map(Slot::leaf_count).sum();
            if children != present || leaves != below || present == 0 {
                return Err(corrupt(format!(
                    "{present} children and {below} leaves recorded as {children} and {leaves}"
                )));
            }
            NodeView::Internal(slots)
        }
        other => return Err(corrupt(format!("node tag {other}"))),
    };
    if reader.at != bytes.len() {
        return Err(corrupt(format!(
            "{} bytes after the node",
            bytes.len() - reader.at
        )));
    }
    Ok(view)
}

fn corrupt(what: String) -> LedgerError {
    LedgerError::Corrupt(format!("undecodable state tree node: {what}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, LedgerError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| corrupt("truncated".into()))?;
        self.at += 1;
        Ok(byte)
    }

    fn array(&mut self) -> Result<[u8; 32], LedgerError> {
        let end = self.at + 32;
        let array = self
            .bytes
            .get(self.at..end)
            .and_then(|slice| <[u8; 32]>::try_from(slice).ok())
            .ok_or_else(|| corrupt("truncated".into()))?;
        self.at = end;
        Ok(array)
    }

    /// postcard's unsigned LEB128 varint (at most ten bytes for a u64).
    fn varint(&mut self) -> Result<u64, LedgerError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(corrupt("varint overflow".into()));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint too long".into()))
    }
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
