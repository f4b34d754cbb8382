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
    let mut level: Vec<Hash> = tagged_many(tags::MERKLE_LEAF, leaves);
    if level.is_empty() {
        return Hash::tagged(tags::MERKLE_NODE, &0u64.to_le_bytes());
    }
    while level.len() > 1 {
        // Each pair's node hash, a level at a time; an odd last hash goes up as it is.
        let pairs: Vec<[u8; 64]> = level
            .chunks_exact(2)
            .map(|pair| {
                let mut buf = [0u8; 64];
                buf[..32].copy_from_slice(&pair[0].0);
                buf[32..].copy_from_slice(&pair[1].0);
                buf
            })
            .collect();
        let odd = level.chunks_exact(2).remainder().first().copied();
        level = tagged_many(tags::MERKLE_NODE, &pairs);
        level.extend(odd);
    }
    let mut buf = Vec::with_capacity(40);
    buf.extend_from_slice(&(leaves.len() as u64).to_le_bytes());
    buf.extend_from_slice(&level[0].0);
    Hash::tagged(tags::MERKLE_NODE, &buf)
}

/// [`Hash::tagged`] of each of `inputs`, in order, the same hashes computed several inputs at
/// a time.
///
/// blake3 hashes an input of up to 1,024 bytes as a chain of 64-byte blocks, each compressed
/// on the previous one's output. Inputs with the same number of whole blocks before their last
/// (a block's txs mostly have) have those blocks compressed side by side, sixteen inputs at
/// once with AVX-512 (`blake3::platform::Platform::hash_many`); each input's last block is
/// then compressed on its own, or with the rest when it is a whole block too (a Merkle node's
/// 64 bytes). Longer inputs are hashed one by one. `blake3::platform` is public but outside
/// blake3's documented API; the tests compare every length up to past 1,024 bytes with
/// [`Hash::tagged`], so a blake3 release that changed it would fail them.
pub fn tagged_many<T: AsRef<[u8]>>(tag: &str, inputs: &[T]) -> Vec<Hash> {
    let Some(key) = CONTEXT_KEYS
        .iter()
        .find_map(|(known, key)| (*known == tag).then_some(*key))
    else {
        return inputs
            .iter()
            .map(|input| Hash::tagged(tag, input.as_ref()))
            .collect();
    };
    let batch = BlockBatch {
        platform: blake3::platform::Platform::detect(),
        key: blake3::platform::words_from_le_bytes_32(&key),
    };
    let mut hashes = vec![Hash::ZERO; inputs.len()];
    // Inputs grouped by their whole blocks before the last, and whether that last block is
    // whole (then it goes with the others): (whole blocks batched, last block whole).
    let mut groups: std::collections::BTreeMap<(usize, bool), Vec<usize>> =
        std::collections::BTreeMap::new();
    for (at, input) in inputs.iter().enumerate() {
        let len = input.as_ref().len();
        if len > CHUNK_LEN {
            hashes[at] = Hash::tagged(tag, input.as_ref());
        } else if len > 0 && len % BLOCK_LEN == 0 {
            groups.entry((len / BLOCK_LEN, true)).or_default().push(at);
        } else {
            groups.entry((len / BLOCK_LEN, false)).or_default().push(at);
        }
    }
    for ((blocks, last_whole), members) in groups {
        for lanes in members.chunks(LANES) {
            let slices: Vec<&[u8]> = lanes.iter().map(|&at| inputs[at].as_ref()).collect();
            let mut cvs = [[0u32; 8]; LANES];
            if blocks > 0 {
                batch.whole_blocks(blocks, last_whole, &slices, &mut cvs);
            } else {
                cvs = [batch.key; LANES];
            }
            for ((&at, slice), cv) in lanes.iter().zip(&slices).zip(&mut cvs) {
                if !last_whole {
                    batch.last_block(cv, &slice[blocks * BLOCK_LEN..], blocks == 0);
                }
                hashes[at] = Hash(blake3::platform::le_bytes_from_words_32(cv));
            }
        }
    }
    hashes
}

/// blake3's chunk and block sizes, and its domain flags (the specification's table 3), for
/// the batched hashing here and in the state tree's `hash_jobs`.
const CHUNK_LEN: usize = 1024;
const BLOCK_LEN: usize = 64;
pub(crate) const CHUNK_START: u8 = 1;
pub(crate) const CHUNK_END: u8 = 2;
pub(crate) const ROOT: u8 = 8;
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) const KEYED_HASH: u8 = 16;
const DERIVE_KEY_MATERIAL: u8 = 64;
/// Inputs compressed side by side: AVX-512's sixteen lanes.
pub(crate) const LANES: usize = 16;

/// [`tagged_many`]'s compressions under one tag's context key.
struct BlockBatch {
    platform: blake3::platform::Platform,
    key: [u32; 8],
}

impl BlockBatch {
    /// The chaining values after the first `blocks` whole blocks of each input (at most
    /// [`LANES`]; every input longer than that), the last of them finishing the hash when
    /// `finish` (the input is exactly those blocks).
    fn whole_blocks(&self, blocks: usize, finish: bool, inputs: &[&[u8]], cvs: &mut [[u32; 8]]) {
        macro_rules! lengths {
            ($($blocks:literal),*) => {
                match blocks {
                    $($blocks => self.prefix::<{ $blocks * BLOCK_LEN }>(finish, inputs, cvs),)*
                    _ => {}
                }
            };
        }
        lengths!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    }

    fn prefix<const N: usize>(&self, finish: bool, inputs: &[&[u8]], cvs: &mut [[u32; 8]]) {
        let mut arrays: Vec<&[u8; N]> = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(Ok(array)) = input.get(..N).map(<&[u8; N]>::try_from) {
                arrays.push(array);
            }
        }
        let mut out = [0u8; 32 * LANES];
        let out = &mut out[..32 * arrays.len()];
        self.platform.hash_many(
            &arrays,
            &self.key,
            0,
            blake3::IncrementCounter::No,
            DERIVE_KEY_MATERIAL,
            CHUNK_START,
            if finish { CHUNK_END | ROOT } else { 0 },
            out,
        );
        for (cv, bytes) in cvs.iter_mut().zip(out.chunks_exact(32)) {
            let mut word_bytes = [0u8; 32];
            word_bytes.copy_from_slice(bytes);
            *cv = blake3::platform::words_from_le_bytes_32(&word_bytes);
        }
    }

    /// Compress an input's last, partial block (`tail`, under 64 bytes) on `cv`, finishing
    /// its hash.
    fn last_block(&self, cv: &mut [u32; 8], tail: &[u8], first: bool) {
        let mut block = [0u8; BLOCK_LEN];
        block[..tail.len()].copy_from_slice(tail);
        let start = if first { CHUNK_START } else { 0 };
        self.platform.compress_in_place(
            cv,
            &block,
            tail.len() as u8,
            0,
            DERIVE_KEY_MATERIAL | start | CHUNK_END | ROOT,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input length up to past one chunk, in one call (so in every group, and more
    /// than sixteen inputs in some), hashes as [`Hash::tagged`] one by one; so does a tag
    /// without a cached context key.
    #[test]
    fn tagged_many_is_tagged_one_by_one() {
        let inputs: Vec<Vec<u8>> = (0..1100usize)
            .chain([64, 64, 64, 128, 1024, 1024, 0, 0, 5000])
            .map(|len| (0..len).map(|i| (i * 31 + len) as u8).collect())
            .collect();
        for tag in [tags::TX, tags::MERKLE_NODE, "not/a/known/tag"] {
            let expected: Vec<Hash> = inputs
                .iter()
                .map(|input| Hash::tagged(tag, input))
                .collect();
            assert_eq!(tagged_many(tag, &inputs), expected, "{tag}");
        }
        assert!(tagged_many::<Vec<u8>>(tags::TX, &[]).is_empty());
    }

    /// The Merkle root computed a level at a time is the one computed pair by pair.
    #[test]
    fn merkle_root_is_the_pairwise_root() {
        fn pairwise(leaves: &[Vec<u8>]) -> Hash {
            let mut level: Vec<Hash> = leaves
                .iter()
                .map(|leaf| Hash::tagged(tags::MERKLE_LEAF, leaf))
                .collect();
            if level.is_empty() {
                return Hash::tagged(tags::MERKLE_NODE, &0u64.to_le_bytes());
            }
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|pair| match pair {
                        [left, right] => {
                            Hash::tagged(tags::MERKLE_NODE, &[left.0, right.0].concat())
                        }
                        _ => pair[0],
                    })
                    .collect();
            }
            let mut buf = (leaves.len() as u64).to_le_bytes().to_vec();
            buf.extend_from_slice(&level[0].0);
            Hash::tagged(tags::MERKLE_NODE, &buf)
        }
        for count in [0usize, 1, 2, 3, 5, 16, 17, 33, 100] {
            let leaves: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; 40 + i * 7]).collect();
            assert_eq!(merkle_root(&leaves), pairwise(&leaves), "{count} leaves");
        }
    }

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
