//! The state interface contracts execute on, and an in-memory implementation.
//!
//! Contracts read through [`StateReader`] and return their writes as [`StateChanges`]; they
//! never see a storage engine. Keys are ordered bytes (`BTreeMap`) so every node applies the
//! same changes in the same order.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::fast_hash::FastMap;
use crate::LedgerError;

/// Writes of a block: `Some(value)` sets a key, `None` deletes it.
pub type StateChanges = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to one version of the state.
pub trait StateReader {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;

    /// Call `f` once with the value at `key` (`None`: absent) — the value [`StateReader::get`]
    /// returns, lent rather than copied where the state holds it in memory. Readers that only
    /// decode a value use this to spare a copy per read.
    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        let value = self.get(key)?;
        f(value.as_deref());
        Ok(())
    }
}

/// A whole state held in memory (tests, benchmarks, replay of small chains).
pub type MemoryState = BTreeMap<Vec<u8>, Vec<u8>>;

impl StateReader for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(BTreeMap::get(self, key).cloned())
    }

    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        f(BTreeMap::get(self, key).map(Vec::as_slice));
        Ok(())
    }
}

impl<T: StateReader + ?Sized> StateReader for &T {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        (**self).get(key)
    }

    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        (**self).visit(key, f)
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
        layered_get(self.changes.get(key), self.base, key)
    }

    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        layered_visit(self.changes.get(key), self.base, key, f)
    }
}

/// A read through a layer of writes: `written` is the layer's entry for `key` (`Some(None)`: a
/// delete), else `base` answers.
fn layered_get<S: StateReader + ?Sized>(
    written: Option<&Option<Vec<u8>>>,
    base: &S,
    key: &[u8],
) -> Result<Option<Vec<u8>>, LedgerError> {
    match written {
        Some(value) => Ok(value.clone()),
        None => base.get(key),
    }
}

/// [`layered_get`], lending the value to `f` ([`StateReader::visit`]).
fn layered_visit<S: StateReader + ?Sized>(
    written: Option<&Option<Vec<u8>>>,
    base: &S,
    key: &[u8],
    f: &mut dyn FnMut(Option<&[u8]>),
) -> Result<(), LedgerError> {
    match written {
        Some(value) => {
            f(value.as_deref());
            Ok(())
        }
        None => base.visit(key, f),
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
    /// Looked up only, never iterated (see [`crate::fast_hash`]).
    seen: RefCell<FastMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<S: StateReader> ReadCache<S> {
    /// A cache over `base`, empty.
    pub fn new(base: S) -> Self {
        ReadCache {
            base,
            seen: RefCell::new(FastMap::default()),
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

    /// Lends the cached value: no copy on a repeat read, and none on the first either (the
    /// value fetched from `base` moves into the cache after `f` has read it).
    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        if let Some(value) = self.seen.borrow().get(key) {
            f(value.as_deref());
            return Ok(());
        }
        let value = self.base.get(key)?;
        f(value.as_deref());
        self.seen.borrow_mut().insert(key.to_vec(), value);
        Ok(())
    }
}

/// Pending writes layered over a base state: reads see the writes first.
///
/// Checkpoints let one overlay hold a block's writes and still drop a failed tx's:
/// [`Overlay::checkpoint`] starts journaling every write's previous entry, [`Overlay::rollback`]
/// restores the entries as they were at the checkpoint, [`Overlay::keep`] accepts the writes
/// since it. Checkpoints nest. Invariant: after `checkpoint(); …; rollback()` the writes are
/// exactly those before the checkpoint, entry for entry.
///
/// The writes are held in a hash table ([`crate::fast_hash`]): a block's thousands of keys share
/// long prefixes, which a B-tree compares over and over on every read and write. They are
/// ordered once, by [`Overlay::into_changes`]; nothing else iterates them.
#[derive(Debug)]
pub struct Overlay<'a, S: StateReader + ?Sized> {
    base: &'a S,
    changes: FastMap<Vec<u8>, Option<Vec<u8>>>,
    /// While a checkpoint is open: each write's key and the entry it replaced (`None`: the key
    /// had no entry), oldest first.
    journal: Vec<JournalEntry>,
    /// Journal length at each open checkpoint, innermost last.
    marks: Vec<usize>,
}

/// A journaled write: its key and the entry it replaced in an overlay's changes (`None`: no
/// entry).
type JournalEntry = (Vec<u8>, Option<Option<Vec<u8>>>);

impl<'a, S: StateReader + ?Sized> Overlay<'a, S> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            changes: FastMap::default(),
            journal: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// Record a write.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.record(key, Some(value));
    }

    /// Record a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.record(key, None);
    }

    fn record(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if self.marks.is_empty() {
            self.changes.insert(key, value);
        } else {
            let replaced = self.changes.insert(key.clone(), value);
            self.journal.push((key, replaced));
        }
    }

    /// Give up the overlay, keeping its writes (open checkpoints are kept too), in key order.
    pub fn into_changes(self) -> StateChanges {
        self.changes.into_iter().collect()
    }

    /// Open a checkpoint: the writes from here on can be rolled back.
    pub fn checkpoint(&mut self) {
        self.marks.push(self.journal.len());
    }

    /// Close the innermost checkpoint keeping the writes made since it.
    pub fn keep(&mut self) {
        self.marks.pop();
        if self.marks.is_empty() {
            self.journal.clear();
        }
    }

    /// Close the innermost checkpoint undoing the writes made since it (none open: nothing).
    pub fn rollback(&mut self) {
        let Some(mark) = self.marks.pop() else {
            return;
        };
        for (key, replaced) in self.journal.drain(mark..).rev() {
            match replaced {
                Some(entry) => {
                    self.changes.insert(key, entry);
                }
                None => {
                    self.changes.remove(&key);
                }
            }
        }
    }
}

impl<S: StateReader + ?Sized> StateReader for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        layered_get(self.changes.get(key), self.base, key)
    }

    fn visit(&self, key: &[u8], f: &mut dyn FnMut(Option<&[u8]>)) -> Result<(), LedgerError> {
        layered_visit(self.changes.get(key), self.base, key, f)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A rollback restores the writes as they were at its checkpoint — overwritten, deleted
    /// and new keys alike, through nested checkpoints — and `keep` keeps them.
    #[test]
    fn rollback_restores_the_checkpoint() {
        let base = MemoryState::from([(b"k0".to_vec(), b"base".to_vec())]);
        let mut overlay = Overlay::new(&base);
        overlay.set(b"a".to_vec(), b"1".to_vec());
        overlay.delete(b"k0".to_vec());

        overlay.checkpoint();
        overlay.set(b"a".to_vec(), b"2".to_vec());
        overlay.set(b"b".to_vec(), b"3".to_vec());
        overlay.set(b"k0".to_vec(), b"back".to_vec());
        overlay.checkpoint();
        overlay.delete(b"a".to_vec());
        overlay.set(b"c".to_vec(), b"4".to_vec());
        overlay.rollback();
        assert_eq!(overlay.get(b"a").ok().flatten(), Some(b"2".to_vec()));
        assert_eq!(overlay.get(b"c").ok().flatten(), None);
        overlay.rollback();
        assert_eq!(overlay.get(b"a").ok().flatten(), Some(b"1".to_vec()));
        assert_eq!(overlay.get(b"b").ok().flatten(), None);
        assert_eq!(overlay.get(b"k0").ok().flatten(), None);

        overlay.checkpoint();
        overlay.set(b"d".to_vec(), b"5".to_vec());
        overlay.keep();
        overlay.rollback(); // no checkpoint open: nothing to undo
        assert_eq!(overlay.get(b"d").ok().flatten(), Some(b"5".to_vec()));
        assert_eq!(
            overlay.into_changes(),
            StateChanges::from([
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"d".to_vec(), Some(b"5".to_vec())),
                (b"k0".to_vec(), None),
            ])
        );
    }

    /// A state that counts the reads that reach it.
    struct Counting {
        state: MemoryState,
        reads: Cell<usize>,
    }

    impl Counting {
        /// `org/a` = `record`, nothing else, no reads yet.
        fn with_one_record() -> Counting {
            Counting {
                state: MemoryState::from([(b"org/a".to_vec(), b"record".to_vec())]),
                reads: Cell::new(0),
            }
        }
    }

    impl StateReader for Counting {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
            self.reads.set(self.reads.get() + 1);
            StateReader::get(&self.state, key)
        }
    }

    #[test]
    fn read_cache_answers_as_its_base_and_fetches_each_key_once() {
        let base = Counting::with_one_record();
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

    #[test]
    fn read_cache_lends_what_get_returns_and_shares_one_fetch_per_key() {
        let base = Counting::with_one_record();
        let cache = ReadCache::new(&base);
        let lent = |key: &[u8]| {
            let mut seen = None;
            cache
                .visit(key, &mut |value| seen = Some(value.map(<[u8]>::to_vec)))
                .expect("visit");
            seen.expect("visit calls f once")
        };
        // First reads by visit, repeats by either way: the same answers, one fetch per key.
        assert_eq!(lent(b"org/a"), Some(b"record".to_vec()));
        assert_eq!(lent(b"org/b"), None);
        for _ in 0..2 {
            assert_eq!(lent(b"org/a"), cache.get(b"org/a").expect("get"));
            assert_eq!(lent(b"org/b"), cache.get(b"org/b").expect("get"));
        }
        assert_eq!(base.reads.get(), 2);
    }
}
