//! Canonical binary encoding for everything that is hashed or signed.
//!
//! Every canonical object is `version byte ‖ postcard(body)`. Postcard writes structs as their
//! fields in declaration order and every sequence with a varint length prefix, so a value has
//! exactly one encoding and no two lists can be confused by concatenation.
//!
//! Invariants: `decode(encode(x)) == x`; decoding rejects input over the caller's size limit,
//! an unknown version byte, and trailing bytes after the value.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::LedgerError;

/// A type with a canonical, versioned encoding.
pub trait Canonical: Serialize + DeserializeOwned {
    /// Name used in error messages ("tx", "block", …).
    const KIND: &'static str;
    /// Current encoding version; the first byte of every encoding.
    const VERSION: u8 = 1;
    /// Largest encoding accepted by [`Canonical::decode`].
    const MAX_BYTES: usize;

    /// The canonical bytes of `self`.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + encoded_len(self));
        out.push(Self::VERSION);
        // Serialising into a Vec cannot fail for our types: postcard only errors on serde
        // features they do not use (sequences of unknown length).
        postcard::to_extend(self, out).expect("canonical types always serialise")
    }

    /// Decode canonical bytes, rejecting oversize input, unknown versions and trailing bytes.
    fn decode(bytes: &[u8]) -> Result<Self, LedgerError> {
        decode_versioned(bytes, Self::KIND, Self::VERSION, Self::MAX_BYTES)
    }
}

/// Postcard bytes of a value without a version byte (used inside hashes of small values).
pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, Vec::with_capacity(encoded_len(value)))
        .expect("canonical types always serialise")
}

/// The length of `value`'s postcard bytes, from a pass that writes nothing: encoding into a
/// buffer of exactly that size is cheaper than growing one from empty (a 200-byte tx body
/// otherwise costs six reallocations and copies).
fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(0)
}

/// Decode postcard bytes that must hold exactly one `T` (no version byte).
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8], kind: &'static str) -> Result<T, LedgerError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| LedgerError::Malformed {
            kind,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(LedgerError::TrailingBytes {
            kind,
            count: rest.len(),
        });
    }
    Ok(value)
}

fn decode_versioned<T: DeserializeOwned>(
    bytes: &[u8],
    kind: &'static str,
    version: u8,
    max: usize,
) -> Result<T, LedgerError> {
    if bytes.len() > max {
        return Err(LedgerError::TooLarge {
            kind,
            size: bytes.len(),
            max,
        });
    }
    let (&first, body) = bytes.split_first().ok_or(LedgerError::Malformed {
        kind,
        reason: "empty input".into(),
    })?;
    if first != version {
        return Err(LedgerError::UnknownVersion {
            kind,
            found: first,
            supported: version,
        });
    }
    from_bytes(body, kind)
}

/// `#[serde(with = "crate::codec::byte_string")]` for a `Vec<u8>` field: the same postcard
/// bytes as the derived encoding of a sequence of `u8` (a varint length, then the bytes), but
/// written and read as one slice instead of one byte at a time. Hashing a tx serialises its
/// call bytes every time, so this is on the hot path; human-readable formats see the same
/// array of numbers as before.
pub mod byte_string {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serialise `bytes` as a byte string.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    /// Deserialise a byte string (or, from self-describing formats, a sequence of bytes).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(ByteString)
    }

    struct ByteString;

    impl<'de> Visitor<'de> for ByteString {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Bounded by the input: a claimed length reserves at most what 4 KiB allows.
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// The byte-string helper changes speed, never bytes: it encodes exactly as the derived
    /// `Vec<u8>` (a sequence of `u8`) did, and decodes what that wrote, at every length class
    /// of the varint prefix.
    #[test]
    fn byte_strings_encode_as_sequences_of_bytes_did() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Derived(u64, Vec<u8>);
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Fast(u64, #[serde(with = "byte_string")] Vec<u8>);
        for len in [0usize, 1, 127, 128, 300, 20_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let derived = to_bytes(&Derived(9, bytes.clone()));
            assert_eq!(to_bytes(&Fast(9, bytes.clone())), derived, "length {len}");
            assert_eq!(
                from_bytes::<Fast>(&derived, "test").ok(),
                Some(Fast(9, bytes.clone()))
            );
            // JSON (used by reports and the CLI) keeps its array of numbers, both ways.
            let json = serde_json::to_string(&Derived(9, bytes.clone())).ok();
            assert_eq!(serde_json::to_string(&Fast(9, bytes.clone())).ok(), json);
            let back = json.and_then(|json| serde_json::from_str::<Fast>(&json).ok());
            assert_eq!(back, Some(Fast(9, bytes.clone())));
        }
        let truncated = &to_bytes(&Derived(9, vec![1; 300]))[..200];
        assert!(from_bytes::<Fast>(truncated, "test").is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        b: Vec<u8>,
    }
    impl Canonical for Sample {
        const KIND: &'static str = "sample";
        const MAX_BYTES: usize = 64;
    }

    #[test]
    fn roundtrip_and_rejections() {
        let s = Sample {
            a: 7,
            b: vec![1, 2, 3],
        };
        let bytes = s.encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(Sample::decode(&bytes).ok(), Some(s));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Sample::decode(&trailing),
            Err(LedgerError::TrailingBytes { count: 1, .. })
        ));

        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert!(matches!(
            Sample::decode(&wrong_version),
            Err(LedgerError::UnknownVersion { found: 9, .. })
        ));

        assert!(matches!(
            Sample::decode(&[0u8; 65]),
            Err(LedgerError::TooLarge { size: 65, .. })
        ));
        assert!(matches!(
            Sample::decode(&[]),
            Err(LedgerError::Malformed { .. })
        ));
        assert!(matches!(
            Sample::decode(&bytes[..bytes.len() - 1]),
            Err(LedgerError::Malformed { .. })
        ));
    }
}
