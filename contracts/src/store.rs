//! Typed reads and writes over the state trait.
//!
//! Values are postcard bytes ([`gongzhi_ledger::codec::to_bytes`]); a value that does not decode
//! is corrupt state, a fatal [`ContractError`]. Writes go to an [`Overlay`] ([`Writes`]), so a
//! call that fails can be dropped without touching anything.

use gongzhi_ledger::codec::{from_bytes, to_bytes};
use gongzhi_ledger::{Overlay, StateReader};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ContractError;
use crate::keys::{self, ListName};
use crate::types::{Page, PageOf};

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
    match state.get(key)? {
        Some(bytes) => decode(key, &bytes).map(Some),
        None => Ok(None),
    }
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

/// Append to a paged list.
pub(crate) fn list_push<T: Serialize>(
    writes: &mut Writes<'_>,
    name: ListName,
    owner: &[u8],
    value: &T,
) -> Result<(), ContractError> {
    let len_key = keys::list_len(name, owner);
    let len: u64 = read(writes, &len_key)?.unwrap_or(0);
    write(writes, keys::list_entry(name, owner, len), value);
    write(writes, len_key, &(len + 1));
    Ok(())
}

/// One page of a paged list.
pub(crate) fn list_page<T: DeserializeOwned, S: StateReader + ?Sized>(
    state: &S,
    name: ListName,
    owner: &[u8],
    page: Page,
) -> Result<PageOf<T>, ContractError> {
    let total: u64 = read(state, &keys::list_len(name, owner))?.unwrap_or(0);
    let limit = page.limit.min(Page::MAX_LIMIT);
    let end = page.start.saturating_add(limit).min(total);
    let mut items = Vec::new();
    for index in page.start..end {
        items.push(read_required(state, &keys::list_entry(name, owner, index))?);
    }
    let next = (end < total).then_some(end);
    Ok(PageOf { items, total, next })
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
