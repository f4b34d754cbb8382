//! blake3 hashing with one domain tag per object kind.
//!
//! A tag is used as blake3's key-derivation context, so a header hash can never equal a tx hash
//! of the same bytes. Tags are versioned (`gongzhi/tx/v1`) and never reused for another kind.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Domain tags of every hashed or signed object kind.
pub mod tags {
    /// A transaction (hash of its full canonical encoding) and its signing payload.
    pub const TX: &str = "gongzhi/tx/v1";
    /// A block header: the block hash.
    pub const HEADER: &str = "gongzhi/header/v1";
    /// A validator set.
    pub const VALIDATOR_SET: &str = "gongzhi/validator-set/v1";
    /// Leaves and inner nodes of the tx and receipt Merkle trees.
    pub const MERKLE_LEAF: &str = "gongzhi/merkle-leaf/v1";
    /// Inner node of a Merkle tree.
    pub const MERKLE_NODE: &str = "gongzhi/merkle-node/v1";
    /// A tx receipt.
    pub const RECEIPT: &str = "gongzhi/receipt/v1";
    /// A commit certificate.
    pub const COMMIT: &str = "gongzhi/commit/v1";
    /// The genesis document.
    pub const GENESIS: &str = "gongzhi/genesis/v1";
    /// Keys and values of the authenticated state tree.
    pub const STATE: &str = "gongzhi/state/v1";
    /// The key (derived from this context) of the state tree's leaf hashes.
    pub const STATE_LEAF: &str = "gongzhi/state-leaf/v1";
    /// The key (derived from this context) of the state tree's internal-node hashes.
    pub const STATE_INTERNAL: &str = "gongzhi/state-internal/v1";

    /// Every tag above.
    pub const ALL: [&str; 11] = [
        TX,
        HEADER,
        VALIDATOR_SET,
        MERKLE_LEAF,
        MERKLE_NODE,
        RECEIPT,
        COMMIT,
        GENESIS,
        STATE,
        STATE_LEAF,
        STATE_INTERNAL,
    ];
}

/// The tags of [`tags::ALL`], each with its blake3 context key (the hash of the context string
/// that key derivation starts from), computed once.
static CONTEXT_KEYS: std::sync::LazyLock<[(&str, blake3::hazmat::ContextKey); 11]> =
    std::sync::LazyLock::new(|| {
        tags::ALL.map(|tag| (tag, blake3::hazmat::hash_derive_key_context(tag)))
    });

/// A blake3 hasher in key-derivation mode under `tag`: the same hasher as
/// `blake3::Hasher::new_derive_key(tag)`, without hashing the tag again for one of [`tags`]
/// (for a 64-byte Merkle node that is half the work).
fn tagged_hasher(tag: &str) -> blake3::Hasher {
    use blake3::hazmat::HasherExt;
    match CONTEXT_KEYS.iter().find(|(known, _)| *known == tag) {
        Some((_, key)) => blake3::Hasher::new_from_context_key(key),
        None => blake3::Hasher::new_derive_key(tag),
    }
}

/// A 32-byte blake3 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, used as "no previous block" and the empty root.
    pub const ZERO: Hash = Hash([0; 32]);

    /// Hash `bytes` under a domain tag.
    pub fn tagged(tag: &str, bytes: &[u8]) -> Hash {
        let mut hasher = tagged_hasher(tag);
        hasher.update(bytes);
        Hash(*hasher.finalize().as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Hash, crate::LedgerError> {
        let bytes = hex::decode(s.trim()).map_err(|e| crate::LedgerError::Malformed {
            kind: "hash",
            reason: format!("not hex: {e}"),
        })?;
        let array: [u8; 32] =
            bytes
                .try_into()
                .map_err(|b: Vec<u8>| crate::LedgerError::Malformed {
                    kind: "hash",
                    reason: format!("expected 32 bytes, got {}", b.len()),
                })?;
        Ok(Hash(array))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..12])
    }
}

/// Merkle root over a list of leaves (RFC 6962 shape: leaves and inner nodes hashed under
/// different tags, the leaf count folded into the root so lists of different lengths differ).
pub fn merkle_root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| Hash::tagged(tags::MERKLE_LEAF, leaf.as_ref()))
        .collect();
    if level.is_empty() {
        return Hash::tagged(tags::MERKLE_NODE, &0u64.to_le_bytes());
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(&left.0);
                    buf[32..].copy_from_slice(&right.0);
                    Hash::tagged(tags::MERKLE_NODE, &buf)
                }
                [single] => *single,
                _ => Hash::ZERO,
            })
            .collect();
    }
    let mut buf = Vec::with_capacity(40);
    buf.extend_from_slice(&(leaves.len() as u64).to_le_bytes());
    buf.extend_from_slice(&level[0].0);
    Hash::tagged(tags::MERKLE_NODE, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached context keys give blake3's own key derivation, for every tag and for a tag
    /// that is not cached.
    #[test]
    fn tagged_is_blake3_derive_key() {
        for (tag, _) in CONTEXT_KEYS.iter() {
            for len in [0usize, 1, 64, 65, 1024, 3000] {
                let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
                assert_eq!(
                    Hash::tagged(tag, &bytes).0,
                    blake3::derive_key(tag, &bytes),
                    "{tag} over {len} bytes"
                );
            }
        }
        assert_eq!(
            Hash::tagged("not/a/known/tag", b"x").0,
            blake3::derive_key("not/a/known/tag", b"x")
        );
    }

    #[test]
    fn tags_separate_domains() {
        assert_ne!(
            Hash::tagged(tags::TX, b"x"),
            Hash::tagged(tags::HEADER, b"x")
        );
    }

    #[test]
    fn merkle_root_depends_on_order_and_count() {
        let a = merkle_root(&[b"a".as_slice(), b"b"]);
        let b = merkle_root(&[b"b".as_slice(), b"a"]);
        let c = merkle_root(&[b"a".as_slice(), b"b", b"b"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(merkle_root::<&[u8]>(&[]), merkle_root(&[b"".as_slice()]));
    }

    #[test]
    fn hex_roundtrip() {
        let h = Hash::tagged(tags::TX, b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()).ok(), Some(h));
        assert!(Hash::from_hex("zz").is_err());
        assert!(Hash::from_hex("abcd").is_err());
    }
}
