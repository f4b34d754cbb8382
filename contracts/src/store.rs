//! Typed reads and writes over the state trait.
//!
//! Values are postcard bytes ([`gongzhi_ledger::codec::to_bytes`]); a value that does not decode
//! is corrupt state, a fatal [`ContractError`]. Writes go to an [`Overlay`] ([`Writes`]), so a
//! call that fails can be dropped without touching anything.
//!
//! Append-only lists are chunked ([`ChunkedHead`]): appending rewrites one small head key and,
//! once per [`keys::CHUNK`] entries, seals a full chunk under its own key. A block that appends
//! `n` entries to a list therefore changes about `1 + n / CHUNK` state keys, not `n + 1`, which
//! is what the Merkle tree is rehashed (and the node's store written) for.

use gongzhi_ledger::codec::{from_bytes, to_bytes};
use gongzhi_ledger::{Overlay, StateReader};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::keys::{self, ListName};
use crate::types::{ChunkedHead, Page, PageOf};

/// Pending writes of one call (or one block) over the state below.
pub(crate) type Writes<'a> = Overlay<'a, dyn StateReader + 'a>;

/// Decode a stored value.
pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, ContractError> {
    from_bytes(bytes, "state value").map_err(|e| ContractError::Corrupt {
        key: keys::display(key),
        reason: e.to_string(),
    })
}

/// The value at `key`, if any.
pub(crate) fn read<T: DeserializeOwned, S: StateReader + ?Sized>(
    state: &S,
    key: &[u8],
) -> Result<Option<T>, ContractError> {
    // Decoded from the state's own bytes where it lends them (no copy per read).
    let mut decoded = None;
    state.visit(key, &mut |bytes| {
        decoded = bytes.map(|bytes| decode(key, bytes))
    })?;
    decoded.transpose()
}

/// The value at `key`, which must exist (an index points at it).
pub(crate) fn read_required<T: DeserializeOwned, S: StateReader + ?Sized>(
    state: &S,
    key: &[u8],
) -> Result<T, ContractError> {
    read(state, key)?.ok_or_else(|| missing(key))
}

/// The error for a value that an index or counter refers to but that is absent.
pub(crate) fn missing(key: &[u8]) -> ContractError {
    ContractError::Corrupt {
        key: keys::display(key),
        reason: "missing value that an index or counter refers to".into(),
    }
}

/// Set `key` to `value`.
pub(crate) fn write<T: Serialize>(writes: &mut Writes<'_>, key: Vec<u8>, value: &T) {
    writes.set(key, to_bytes(value));
}

/// Allocate the next id of a sequence (ids start at 1).
pub(crate) fn next_id(writes: &mut Writes<'_>, name: &str) -> Result<u64, ContractError> {
    let key = keys::counter(name);
    let last: u64 = read(writes, &key)?.unwrap_or(0);
    let next = last.saturating_add(1);
    write(writes, key, &next);
    Ok(next)
}

/// The last id handed out by a sequence (0 if none).
pub(crate) fn last_id<S: StateReader + ?Sized>(
    state: &S,
    name: &str,
) -> Result<u64, ContractError> {
    Ok(read(state, &keys::counter(name))?.unwrap_or(0))
}

/// Append `value` to the chunked list whose head is at `head_key`; sealed chunk `c` is stored
/// at `chunk_key(c)`. The head is rewritten, and when its open chunk reaches [`keys::CHUNK`]
/// entries that chunk is sealed under the next chunk number, whatever the list's length.
///
/// The stored head is decoded (a head that does not decode is corrupt state, as for any read)
/// but not re-encoded: the new head is the stored entries' bytes behind a new prefix, plus the
/// new entry's bytes — exactly what encoding the new head would give ([`spliced_push`]).
pub(crate) fn chunked_push<T: Serialize + DeserializeOwned>(
    writes: &mut Writes<'_>,
    head_key: Vec<u8>,
    chunk_key: impl FnOnce(u64) -> Vec<u8>,
    value: T,
) -> Result<(), ContractError> {
    let entry = to_bytes(&value);
    // Planned where the state holds the stored head, which is not copied.
    let mut planned = None;
    writes.visit(&head_key, &mut |stored| {
        planned = Some(plan_push::<T>(&head_key, stored, &entry));
    })?;
    let (sealed, push) = planned.unwrap_or_else(|| plan_push::<T>(&head_key, None, &entry))?;
    if let Some(push) = push {
        if let Some(chunk) = push.chunk {
            writes.set(chunk_key(sealed), chunk);
        }
        writes.set(head_key, push.head);
        return Ok(());
    }
    // A stored head whose prefix is not in canonical form: encode it afresh.
    let stored = writes.get(&head_key)?;
    let mut head: ChunkedHead<T> = match &stored {
        Some(bytes) => decode(&head_key, bytes)?,
        None => ChunkedHead::default(),
    };
    if let Some((chunk, entries)) = head.push(value) {
        write(writes, chunk_key(chunk), &entries);
    }
    write(writes, head_key, &head);
    Ok(())
}

/// The stored head's number of sealed chunks, and the bytes appending `entry` to it writes
/// ([`spliced_push`]; `None`: the head must be re-encoded).
fn plan_push<T: DeserializeOwned>(
    head_key: &[u8],
    stored: Option<&[u8]>,
    entry: &[u8],
) -> Result<(u64, Option<SplicedPush>), ContractError> {
    let (sealed, open) = match stored {
        Some(bytes) => {
            let shape: HeadShape<T> = decode(head_key, bytes)?;
            (shape.sealed, shape.open.0)
        }
        None => (0, 0),
    };
    Ok((sealed, spliced_push(stored, sealed, open, entry)))
}

/// A stored [`ChunkedHead`] decoded only as far as a push needs: the number of sealed chunks
/// and of open entries, each entry checked to decode as `T` but not kept.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct HeadShape<T> {
    sealed: u64,
    open: SeqCount<T>,
}

/// The length of a sequence whose elements are each decoded as `T` and dropped.
struct SeqCount<T>(usize, PhantomData<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for SeqCount<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counter<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for Counter<T> {
            type Value = SeqCount<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeqCount<T>, A::Error> {
                let mut count = 0;
                while seq.next_element::<T>()?.is_some() {
                    count += 1;
                }
                Ok(SeqCount(count, PhantomData))
            }
        }
        deserializer.deserialize_seq(Counter(PhantomData))
    }
}

/// The bytes [`chunked_push`] writes: the new head and, when the push seals the open chunk, that
/// chunk.
#[derive(Debug, PartialEq, Eq)]
struct SplicedPush {
    head: Vec<u8>,
    chunk: Option<Vec<u8>>,
}

/// Append the encoded entry `entry` to the stored head `stored` (absent: an empty list), which
/// decoded as `sealed` sealed chunks and `open` open entries, without decoding its entries.
///
/// Postcard encodes a [`ChunkedHead`] as `varint(sealed) ‖ varint(open.len()) ‖ entries` and a
/// sealed chunk (a `Vec`) as `varint(CHUNK) ‖ entries`, so both are the stored entries' bytes
/// behind a new prefix. `None` when the stored head does not start with the canonical prefix of
/// the counts it decoded to (only a hand-made head could): the caller then re-encodes.
fn spliced_push(
    stored: Option<&[u8]>,
    sealed: u64,
    open: usize,
    entry: &[u8],
) -> Option<SplicedPush> {
    let entries = match stored {
        Some(bytes) => bytes.strip_prefix(head_prefix(sealed, open as u64).as_slice())?,
        None => &[],
    };
    let with_entry = |mut prefix: Vec<u8>| {
        prefix.reserve(entries.len() + entry.len());
        prefix.extend_from_slice(entries);
        prefix.extend_from_slice(entry);
        prefix
    };
    Some(if open + 1 < keys::CHUNK {
        SplicedPush {
            head: with_entry(head_prefix(sealed, open as u64 + 1)),
            chunk: None,
        }
    } else {
        let mut count = Vec::with_capacity(entries.len() + entry.len() + 2);
        push_varint(&mut count, keys::CHUNK as u64);
        SplicedPush {
            head: head_prefix(sealed.saturating_add(1), 0),
            chunk: Some(with_entry(count)),
        }
    })
}

/// `varint(sealed) ‖ varint(open)`: a [`ChunkedHead`]'s encoding up to its entries.
fn head_prefix(sealed: u64, open: u64) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(20);
    push_varint(&mut prefix, sealed);
    push_varint(&mut prefix, open);
    prefix
}

/// Postcard's (LEB128) encoding of an unsigned integer.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Append to a paged list (`list/<name>/<owner>`, chunked: see [`chunked_push`]).
pub(crate) fn list_push<T: Serialize + DeserializeOwned>(
    writes: &mut Writes<'_>,
    name: ListName,
    owner: &[u8],
    value: T,
) -> Result<(), ContractError> {
    chunked_push(
        writes,
        keys::list_head(name, owner),
        |chunk| keys::list_chunk(name, owner, chunk),
        value,
    )
}

/// One page of a paged list (`list/<name>/<owner>`; see [`chunked_page`]).
pub(crate) fn list_page<T: DeserializeOwned + Clone, S: StateReader + ?Sized>(
    state: &S,
    name: ListName,
    owner: &[u8],
    page: Page,
) -> Result<PageOf<T>, ContractError> {
    let head: ChunkedHead<T> = read(state, &keys::list_head(name, owner))?.unwrap_or_default();
    chunked_page(
        state,
        &head,
        |chunk| keys::list_chunk(name, owner, chunk),
        page,
    )
}

/// One page of the chunked list with head `head` (sealed chunk `c` at `chunk_key(c)`): only
/// the sealed chunks the page overlaps are read. A sealed chunk that is missing or not full is
/// corrupt state.
pub(crate) fn chunked_page<T: DeserializeOwned + Clone, S: StateReader + ?Sized>(
    state: &S,
    head: &ChunkedHead<T>,
    chunk_key: impl Fn(u64) -> Vec<u8>,
    page: Page,
) -> Result<PageOf<T>, ContractError> {
    let total = head.len();
    let limit = page.limit.min(Page::MAX_LIMIT);
    let end = page.start.saturating_add(limit).min(total);
    let chunk_len = keys::CHUNK as u64;
    let mut items = Vec::with_capacity(end.saturating_sub(page.start) as usize);
    let mut index = page.start;
    let open_start = head.sealed.saturating_mul(chunk_len);
    while index < end {
        if index >= open_start {
            // The rest of the page is in the head: `total` counts exactly its entries.
            let from = (index - open_start) as usize;
            items.extend_from_slice(&head.open[from..from + (end - index) as usize]);
            break;
        }
        let (chunk, offset) = (index / chunk_len, index % chunk_len);
        let count = (end - index).min(chunk_len - offset);
        let entries: Vec<T> = read_sealed(state, &chunk_key(chunk))?;
        items.extend_from_slice(&entries[offset as usize..(offset + count) as usize]);
        index += count;
    }
    let next = (end < total).then_some(end);
    Ok(PageOf { items, total, next })
}

/// Every entry of the chunked list whose head is at `head_key` (sealed chunk `c` at
/// `chunk_key(c)`), in append order; strict like [`chunked_page`].
pub(crate) fn chunked_all<T: DeserializeOwned, S: StateReader + ?Sized>(
    state: &S,
    head_key: &[u8],
    chunk_key: impl Fn(u64) -> Vec<u8>,
) -> Result<Vec<T>, ContractError> {
    let head: ChunkedHead<T> = read(state, head_key)?.unwrap_or_default();
    let mut entries = Vec::new();
    for chunk in 0..head.sealed {
        entries.extend(read_sealed::<T, S>(state, &chunk_key(chunk))?);
    }
    entries.extend(head.open);
    Ok(entries)
}

/// A sealed chunk, which must exist and hold exactly [`keys::CHUNK`] entries.
fn read_sealed<T: DeserializeOwned, S: StateReader + ?Sized>(
    state: &S,
    key: &[u8],
) -> Result<Vec<T>, ContractError> {
    let entries: Vec<T> = read_required(state, key)?;
    if entries.len() != keys::CHUNK {
        return Err(ContractError::Corrupt {
            key: keys::display(key),
            reason: format!(
                "a sealed chunk holds {} entries, not {}",
                entries.len(),
                keys::CHUNK
            ),
        });
    }
    Ok(entries)
}

/// Insert into a sorted, deduplicated vector stored at `key`.
pub(crate) fn sorted_insert<T: Serialize + DeserializeOwned + Ord>(
    writes: &mut Writes<'_>,
    key: Vec<u8>,
    value: T,
) -> Result<(), ContractError> {
    let mut list: Vec<T> = read(writes, &key)?.unwrap_or_default();
    if let Err(position) = list.binary_search(&value) {
        list.insert(position, value);
        write(writes, key, &list);
    }
    Ok(())
}

/// Remove from a sorted vector stored at `key`.
pub(crate) fn sorted_remove<T: Serialize + DeserializeOwned + Ord>(
    writes: &mut Writes<'_>,
    key: Vec<u8>,
    value: &T,
) -> Result<(), ContractError> {
    let mut list: Vec<T> = read(writes, &key)?.unwrap_or_default();
    if let Ok(position) = list.binary_search(value) {
        list.remove(position);
        write(writes, key, &list);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::GrantId;

    /// The spliced bytes are what encoding the pushed head (and sealed chunk) gives, through
    /// several seals and across varint widths.
    #[test]
    fn spliced_push_matches_encoding() {
        let mut head: ChunkedHead<GrantId> = ChunkedHead::default();
        let mut stored: Option<Vec<u8>> = None;
        for i in 0..(3 * keys::CHUNK as u64 + 5) {
            let id = GrantId(i * 997 + 1);
            let push = spliced_push(
                stored.as_deref(),
                head.sealed,
                head.open.len(),
                &to_bytes(&id),
            )
            .expect("canonical head");
            let sealed = head.push(id).map(|(_, entries)| to_bytes(&entries));
            assert_eq!(push.chunk, sealed, "chunk after push {i}");
            assert_eq!(push.head, to_bytes(&head), "head after push {i}");
            stored = Some(push.head);
        }
        assert_eq!(head.sealed, 3);
        assert_eq!(to_bytes(&u64::MAX), {
            let mut v = Vec::new();
            push_varint(&mut v, u64::MAX);
            v
        });
    }

    /// The shape a push decodes has the head's counts, and refuses a head whose entries do not
    /// decode, like a full decode.
    #[test]
    fn head_shape_counts_and_checks_entries() {
        let head = ChunkedHead {
            sealed: 300,
            open: vec![GrantId(1), GrantId(70_000), GrantId(3)],
        };
        let shape: HeadShape<GrantId> = decode(b"h", &to_bytes(&head)).expect("decodes");
        assert_eq!((shape.sealed, shape.open.0), (300, 3));
        // Three entries announced, the last one a truncated varint.
        let corrupt = [0x01, 0x03, 0x01, 0x02, 0x80];
        assert!(decode::<HeadShape<GrantId>>(b"h", &corrupt).is_err());
        assert!(decode::<ChunkedHead<GrantId>>(b"h", &corrupt).is_err());
    }

    /// A head whose counts are not canonically encoded is not spliced (the caller re-encodes).
    #[test]
    fn non_canonical_head_is_not_spliced() {
        // sealed = 0 written as the two-byte varint 0x80 0x00.
        let stored = [0x80, 0x00, 0x01, 0x07];
        assert_eq!(spliced_push(Some(&stored), 0, 1, &[0x08]), None);
        assert!(spliced_push(Some(&[0x00, 0x01, 0x07]), 0, 1, &[0x08]).is_some());
    }
}
