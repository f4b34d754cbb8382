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
        let out = vec![Self::VERSION];
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
    postcard::to_stdvec(value).expect("canonical types always serialise")
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

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
