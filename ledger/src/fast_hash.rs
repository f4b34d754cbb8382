//! A fast hasher for in-memory lookup tables: the contracts' `CheckIndex`, the store's
//! cache of decoded Jellyfish tree nodes, and the pending writes and read cache of a block's
//! execution ([`crate::state::Overlay`], [`crate::state::ReadCache`]).
//!
//! Their keys are short ids (organisation, dataset, purpose and field slugs, grant ids,
//! interned (grantee, dataset) pairs, tree node keys). With the standard SipHash, hashing them
//! cost as much as the rest of a lookup; this hasher is FxHash's word step (rotate, xor, multiply) over
//! 8-byte words with a splitmix64 finaliser, so that the low bits the table indexes by
//! depend on every input bit (a bare multiply would bucket `(grantee, dataset)` pairs by the
//! dataset alone).
//!
//! Invariants:
//! - lookups only: nothing iterates a table hashed with it into a result, a state write or
//!   anything else observable except through a sorted map (`CheckIndex`'s equality, an
//!   overlay's `into_changes`), so its order can never leak; determinism does not depend on
//!   the hasher,
//!   although it has no random keys;
//! - not resistant to chosen collisions: the keys are ids admitted into committed state by
//!   governance and permissioned issuers, and tree node keys derive from blake3 key hashes;
//!   request input is only looked up, never inserted. An overlay's keys come from txs that
//!   only members can submit.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`]; for point lookups only (see the module docs).
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// FxHash word step with a splitmix64 finaliser. See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastHasher {
    hash: u64,
}

const MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            // The length goes in the free top byte: "a" and "a\0" differ.
            self.add(tail_word(bytes, rest.len()) | (rest.len() as u64) << 56);
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        let mut z = self.hash;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The last `rest` (1 to 7) bytes of `bytes` as a little-endian number. From a key of at least
/// eight bytes, one load of its last eight bytes, shifted: assembling the word in memory
/// byte by byte and then loading it stalled on store forwarding, and that was about half of
/// this hasher's time.
fn tail_word(bytes: &[u8], rest: usize) -> u64 {
    match bytes.len().checked_sub(8) {
        Some(start) => {
            let mut last = [0u8; 8];
            last.copy_from_slice(&bytes[start..]);
            u64::from_le_bytes(last) >> (8 * (8 - rest))
        }
        None => bytes
            .iter()
            .rev()
            .fold(0u64, |word, &byte| word << 8 | u64::from(byte)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
        use std::hash::BuildHasher;
        BuildHasherDefault::<FastHasher>::default().hash_one(value)
    }

    #[test]
    fn pairs_differing_in_the_high_half_spread_over_low_bits() {
        let buckets: std::collections::BTreeSet<u64> = (0..1000u64)
            .map(|org| hash(&(org << 32 | 7)) & 0xffff)
            .collect();
        assert!(buckets.len() > 950, "{}", buckets.len());
    }

    /// The tail word is the remaining bytes, least significant first, whatever the length.
    #[test]
    fn tail_word_is_the_remaining_bytes() {
        let bytes: Vec<u8> = (1..=23).collect();
        for len in 1..=bytes.len() {
            let rest = len % 8;
            if rest == 0 {
                continue;
            }
            let key = &bytes[..len];
            let mut expected = [0u8; 8];
            expected[..rest].copy_from_slice(&key[len - rest..]);
            assert_eq!(
                tail_word(key, rest),
                u64::from_le_bytes(expected),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn strings_hash_by_content() {
        assert_eq!(hash("grantee-0001"), hash(&String::from("grantee-0001")));
        assert_ne!(hash("grantee-0001"), hash("grantee-0002"));
        assert_ne!(hash("a"), hash("a\0"));
    }
}
