//! The state interface contracts execute on, and an in-memory implementation.
//!
//! Contracts read through [`StateReader`] and return their writes as [`StateChanges`]; they
//! never see a storage engine. Keys are ordered bytes (`BTreeMap`) so every node applies the
//! same changes in the same order.

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
