//! Identifiers shared by every contract.
//!
//! Slug ids (`OrgId`, `DatasetId`, `PurposeCode`, `ReasonCode`, field names) are 1–64 characters
//! of `a-z 0-9 - _`: they appear inside state keys between `/` separators, so the syntax rule is
//! what keeps the key layout unambiguous. Sequential ids (`GrantId`, `RequestId`, `ProposalId`,
//! `RecordId`) start at 1 and are big-endian in keys so they sort numerically.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{reject, CallResult};

/// Longest slug id.
pub const MAX_SLUG_LEN: usize = 64;

/// Whether `s` is a valid slug id.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Reject `s` unless it is a slug; `what` names it in the message.
pub(crate) fn check_slug(what: &str, s: &str) -> CallResult<()> {
    if !is_slug(s) {
        reject!(
            InvalidArgument,
            "{what} {s:?} is not a valid id: use 1-{MAX_SLUG_LEN} characters of a-z, 0-9, '-' and '_'"
        );
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

macro_rules! seq_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

slug_id!(
    /// An organisation, e.g. `yuetan-street`.
    OrgId
);
slug_id!(
    /// A dataset, e.g. `elderly-subsidy-roll`.
    DatasetId
);
slug_id!(
    /// A purpose in the taxonomy, e.g. `elderly-care`.
    PurposeCode
);
slug_id!(
    /// A civility reason in the catalogue, e.g. `garbage-sorting`.
    ReasonCode
);

seq_id!(
    /// A grant.
    GrantId,
    "grant#"
);
seq_id!(
    /// An access request.
    RequestId,
    "request#"
);
seq_id!(
    /// A governance proposal.
    ProposalId,
    "proposal#"
);
seq_id!(
    /// A civility-bank record (award, redemption or reversal).
    RecordId,
    "record#"
);

/// A resident's pseudonym: a 32-byte keyed hash computed off chain. No personal data on chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResidentId(pub [u8; 32]);

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({self})")
    }
}

/// A page request for list queries: skip `start` entries, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Index of the first entry (0-based).
    pub start: u64,
    /// Most entries to return (capped at [`Page::MAX_LIMIT`]).
    pub limit: u64,
}

impl Page {
    /// Largest page served.
    pub const MAX_LIMIT: u64 = 1000;

    /// The first `limit` entries.
    pub fn first(limit: u64) -> Page {
        Page { start: 0, limit }
    }
}

/// The head of an append-only chunked list (every append-only list in state: the access
/// indexes, the paged lists, residents' histories, grants' children; see [`crate::keys`]): how
/// many full chunks of [`crate::keys::CHUNK`] entries are sealed under their own keys
/// (numbered from 0), and the open chunk of newer entries, fewer than `CHUNK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkedHead<T> {
    /// Sealed chunks, numbered from 0.
    pub sealed: u64,
    /// The entries after the sealed chunks, in append order.
    pub open: Vec<T>,
}

impl<T> Default for ChunkedHead<T> {
    fn default() -> Self {
        ChunkedHead {
            sealed: 0,
            open: Vec::new(),
        }
    }
}

impl<T> ChunkedHead<T> {
    /// Append `value` to the open chunk. When that fills it, the full chunk is taken out and
    /// returned with its number, for the caller to store under that chunk's key.
    pub fn push(&mut self, value: T) -> Option<(u64, Vec<T>)> {
        self.open.push(value);
        if self.open.len() < crate::keys::CHUNK {
            return None;
        }
        let chunk = self.sealed;
        self.sealed += 1;
        Some((chunk, std::mem::take(&mut self.open)))
    }

    /// Entries in the whole list.
    pub fn len(&self) -> u64 {
        self.sealed
            .saturating_mul(crate::keys::CHUNK as u64)
            .saturating_add(self.open.len() as u64)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOf<T> {
    /// The entries.
    pub items: Vec<T>,
    /// Total entries in the list.
    pub total: u64,
    /// Start of the next page, if there is one.
    pub next: Option<u64>,
}
