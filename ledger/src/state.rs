//! The state interface contracts execute on, and an in-memory implementation.
//!
//! Contracts read through [`StateReader`] and return their writes as [`StateChanges`]; they
//! never see a storage engine. Keys are ordered bytes (`BTreeMap`) so every node applies the
//! same changes in the same order.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::LedgerError;

/// Writes of a block: `Some(value)` sets a key, `None` deletes it.
pub type StateChanges = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to one version of the state.
pub trait StateReader {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
}

/// A whole state held in memory (tests, benchmarks, replay of small chains).
pub type MemoryState = BTreeMap<Vec<u8>, Vec<u8>>;

impl StateReader for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

impl<T: StateReader + ?Sized> StateReader for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        (**self).get(key)
    }
}

/// Apply changes to an in-memory state.
pub fn apply_changes(state: &mut MemoryState, changes: &StateChanges) {
    for (key, value) in changes {
        match value {
            Some(v) => {
                state.insert(key.clone(), v.clone());
            }
            None => {
                state.remove(key);
            }
        }
    }
}

/// A block's changes seen on top of the state before it, without copying either.
#[derive(Debug)]
pub struct AfterChanges<'a, S: StateReader + ?Sized> {
    /// The state before the changes.
    pub base: &'a S,
    /// The changes.
    pub changes: &'a StateChanges,
}

impl<S: StateReader + ?Sized> StateReader for AfterChanges<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        match self.changes.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.base.get(key),
        }
    }
}

/// A state that does not change while it is read, remembering every answer: a key read twice
/// is fetched from `base` once. A block's txs read the same few records over and over (their
/// organisations, the datasets they name); this spares the storage engine a point lookup for
/// each repeat. Only for a `base` that is one fixed version (a snapshot), and for as long as
/// one execution: it holds every key read.
#[derive(Debug)]
pub struct ReadCache<S: StateReader> {
    base: S,
    seen: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<S: StateReader> ReadCache<S> {
    /// A cache over `base`, empty.
    pub fn new(base: S) -> Self {
        ReadCache {
            base,
            seen: RefCell::new(BTreeMap::new()),
        }
    }
}

impl<S: StateReader> StateReader for ReadCache<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        if let Some(value) = self.seen.borrow().get(key) {
            return Ok(value.clone());
        }
        let value = self.base.get(key)?;
        self.seen.borrow_mut().insert(key.to_vec(), value.clone());
        Ok(value)
    }
}

/// Pending writes layered over a base state: reads see the writes first.
#[derive(Debug)]
pub struct Overlay<'a, S: StateReader + ?Sized> {
    base: &'a S,
    changes: StateChanges,
}

impl<'a, S: StateReader + ?Sized> Overlay<'a, S> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            changes: StateChanges::new(),
        }
    }

    /// Record a write.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.changes.insert(key, Some(value));
    }

    /// Record a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.changes.insert(key, None);
    }

    /// The writes so far.
    pub fn changes(&self) -> &StateChanges {
        &self.changes
    }

    /// Give up the overlay, keeping its writes.
    pub fn into_changes(self) -> StateChanges {
        self.changes
    }

    /// Merge writes made by a nested overlay.
    pub fn merge(&mut self, changes: StateChanges) {
        self.changes.extend(changes);
    }
}

impl<S: StateReader + ?Sized> StateReader for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        AfterChanges {
            base: self.base,
            changes: &self.changes,
        }
        .get(key)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A state that counts the reads that reach it.
    struct Counting {
        state: MemoryState,
        reads: Cell<usize>,
    }

    impl StateReader for Counting {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
            self.reads.set(self.reads.get() + 1);
            StateReader::get(&self.state, key)
        }
    }

    #[test]
    fn read_cache_answers_as_its_base_and_fetches_each_key_once() {
        let base = Counting {
            state: MemoryState::from([(b"org/a".to_vec(), b"record".to_vec())]),
            reads: Cell::new(0),
        };
        let cache = ReadCache::new(&base);
        for _ in 0..3 {
            assert_eq!(cache.get(b"org/a").ok(), Some(Some(b"record".to_vec())));
            assert_eq!(cache.get(b"org/b").ok(), Some(None));
        }
        assert_eq!(
            base.reads.get(),
            2,
            "one read per distinct key, absent ones included"
        );
        // Under an overlay, a write hides the cached value without touching the cache.
        let mut overlay = Overlay::new(&cache);
        overlay.set(b"org/a".to_vec(), b"changed".to_vec());
        assert_eq!(overlay.get(b"org/a").ok(), Some(Some(b"changed".to_vec())));
        assert_eq!(cache.get(b"org/a").ok(), Some(Some(b"record".to_vec())));
    }
}
