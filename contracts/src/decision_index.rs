//! [`CheckIndex`]: the decision's inputs decoded and held in memory, for fast checks at the
//! latest committed height.
//!
//! The index mirrors exactly the key families [`check`](crate::check) reads:
//! `org-status/<org>`, `purpose/<code>` (presence only), `dataset/<id>`, `grant/<id>`, and the
//! access index's head `access/<grantee>/<dataset>` and sealed chunks
//! `access/<grantee>/<dataset>/<chunk:be>`, each decoded once. [`CheckIndex::check`] runs the same
//! evaluation as [`check`](crate::check) ([`decide`]); only the reads differ, so for the
//! state the index was built from (and kept up to date with [`CheckIndex::apply`]) both give
//! the same [`Decision`] (the property test `tests/decision_index.rs` checks this).
//!
//! Invariants:
//! - after `from_entries(s)` or `build(s)`, then `apply(c1)`, …, `apply(cn)`, the index
//!   equals `from_entries` of `s` with `c1..cn` applied: `apply` re-decodes only the changed
//!   keys of those families and ignores every other key;
//! - `apply` is all-or-nothing: every changed value is decoded before any is applied, so a
//!   corrupt value leaves the index unchanged (and returns [`ContractError::Corrupt`]);
//! - a state key that no decision can read is never needed: slug ids contain no `/`, so an
//!   access key splits at its first two `/` after the prefix (a chunk number is the 8 bytes
//!   after the second, whatever they are);
//! - adding a grant to a long access list costs the index its head (fewer than
//!   [`keys::CHUNK`] entries) and at most one sealed chunk, not the whole list.
//!
//!
//! Layout (what a check touches): organisation, dataset, purpose and field names are interned
//! to numbers (never reused; an access key can intern an organisation or dataset that has no
//! record, which then reads as absent); the access lists are keyed by the pair (grantee
//! number, dataset number) and held chunk by chunk as stored (a check reads the sealed chunks
//! the head counts, then the head's open chunk, as [`check`](crate::check) does), and each
//! entry holds its grant's terms pre-decoded inline
//! (`terms::Terms`: purposes and fields as bitsets) next to a shared pointer to the decoded
//! record, which only explanations and ancestor walks read. A grant listed in several
//! access lists or chunks (only a corrupt or synthetic state does that) has a copy in each:
//! the index remembers which chunks list each grant and refreshes them when the grant changes.
//!
//! Determinism: the index never writes state and is not used by execution, so it may use
//! hash tables (with a fast non-SipHash hasher, `gongzhi_ledger::fast_hash`) — for point lookups only;
//! nothing iterates them into a result. Equality ([`PartialEq`]) compares the indexed
//! contents in sorted order, not the interned numbers (which depend on the order entries
//! came in). Historic checks and decision receipts keep using [`check`](crate::check) over
//! the store.

mod terms;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gongzhi_ledger::{StateChanges, StateReader, Timestamp};
use serde::de::DeserializeOwned;

use self::terms::{next_number, NumberSet, Request, Terms};
use crate::decision::{decide, evaluate_grant, evaluate_terms, Decision, DecisionReads, Evaluated};
use crate::error::ContractError;
use crate::governance::{org_ids, purpose_exists, OrgStatus};
use crate::grants::lifecycle::GRANT_SEQUENCE;
use crate::grants::{get_dataset, get_grant, AccessHead, Dataset, Grant};
use crate::keys::{self, prefix};
use crate::store;
use crate::types::{DatasetId, GrantId, OrgId, PurposeCode};
use gongzhi_ledger::fast_hash::FastMap;

/// The decision's inputs for one state, decoded. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct CheckIndex {
    /// Organisations by id: number and status.
    orgs: FastMap<Box<str>, OrgEntry>,
    /// Purposes by code: number and whether it is in the taxonomy.
    purposes: FastMap<Box<str>, PurposeEntry>,
    /// Datasets by id: number and record.
    datasets: FastMap<Box<str>, DatasetEntry>,
    /// Field names of grants, numbered.
    fields: FastMap<Box<str>, u32>,
    /// Grants by id: the decoded grant, and the access lists that list it.
    grants: FastMap<GrantId, GrantEntry>,
    /// Access lists by (grantee number, dataset number).
    access: FastMap<u64, AccessList>,
    /// How many grants are indexed.
    grant_count: usize,
}

#[derive(Debug, Clone, Copy)]
struct OrgEntry {
    number: u32,
    status: Option<OrgStatus>,
}

#[derive(Debug, Clone, Copy)]
struct PurposeEntry {
    number: u32,
    exists: bool,
}

#[derive(Debug, Clone)]
struct DatasetEntry {
    number: u32,
    record: Option<Dataset>,
}

/// A decoded grant: its terms pre-decoded, and the record itself.
#[derive(Debug, Clone)]
struct IndexedGrant {
    terms: Terms,
    record: Arc<Grant>,
}

#[derive(Debug, Clone, Default)]
struct GrantEntry {
    /// `None`: no `grant/<id>` (an access list still names it).
    grant: Option<IndexedGrant>,
    /// The access-list chunks naming it.
    listed_in: Vec<Listing>,
}

/// A chunk of an access list: a sealed one by number, or the head's open one (last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Sealed(u64),
    Open,
}

/// Where a grant is listed: (pair key, chunk).
type Listing = (u64, Slot);

/// One pair's access index as stored: the head's sealed-chunk count and the chunks present.
#[derive(Debug, Clone, Default)]
struct AccessList {
    /// Sealed chunks the head counts (`None`: no head key).
    sealed: Option<u64>,
    /// Chunks present: sealed ones whether or not the head counts them, and the open one.
    slots: BTreeMap<Slot, Box<[Candidate]>>,
}

impl AccessList {
    /// The chunks a decision reads, in order: the sealed ones the head counts, then the open
    /// one; none without a head.
    fn visible(&self) -> impl Iterator<Item = &[Candidate]> {
        let counted = self
            .slots
            .range(Slot::Sealed(0)..Slot::Sealed(self.sealed.unwrap_or(0)));
        let open = self
            .sealed
            .and_then(|_| self.slots.get_key_value(&Slot::Open));
        counted.chain(open).map(|(_, chunk)| &chunk[..])
    }

    fn is_empty(&self) -> bool {
        self.sealed.is_none() && self.slots.is_empty()
    }
}

/// One entry of an access list, with its grant (`None`: missing, corrupt state).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    id: GrantId,
    grant: Option<IndexedGrant>,
}

/// The access table key of (grantee number, dataset number).
fn pair_key(grantee: u32, dataset: u32) -> u64 {
    u64::from(grantee) << 32 | u64::from(dataset)
}

/// One changed key of a family the index mirrors, decoded (`None`: deleted).
enum Entry {
    Status(OrgId, Option<OrgStatus>),
    Purpose(PurposeCode, bool),
    Dataset(DatasetId, Option<Dataset>),
    Grant(GrantId, Option<Box<Grant>>),
    AccessHead(OrgId, DatasetId, Option<AccessHead>),
    AccessChunk(OrgId, DatasetId, u64, Option<Vec<GrantId>>),
}

/// `key` minus `prefix` and the `/` after it.
fn id_after<'k>(key: &'k [u8], prefix: &[u8]) -> Option<&'k [u8]> {
    key.strip_prefix(prefix)?.strip_prefix(b"/")
}

fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

fn decoded<T: DeserializeOwned>(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<Option<T>, ContractError> {
    value.map(|bytes| store::decode(key, bytes)).transpose()
}

/// Which mirrored entry `key` is, with its new value decoded; `None` for any other key.
fn parse(key: &[u8], value: Option<&[u8]>) -> Result<Option<Entry>, ContractError> {
    if let Some(id) = id_after(key, prefix::ORG_STATUS).and_then(text) {
        return Ok(Some(Entry::Status(OrgId(id), decoded(key, value)?)));
    }
    if let Some(code) = id_after(key, prefix::PURPOSE).and_then(text) {
        return Ok(Some(Entry::Purpose(PurposeCode(code), value.is_some())));
    }
    if let Some(id) = id_after(key, prefix::DATASET).and_then(text) {
        return Ok(Some(Entry::Dataset(DatasetId(id), decoded(key, value)?)));
    }
    if let Some(id) = id_after(key, prefix::GRANT) {
        if let Ok(be) = <[u8; 8]>::try_from(id) {
            let id = GrantId(u64::from_be_bytes(be));
            return Ok(Some(Entry::Grant(
                id,
                decoded::<Grant>(key, value)?.map(Box::new),
            )));
        }
        return Ok(None);
    }
    if let Some(rest) = id_after(key, prefix::ACCESS) {
        return Ok(match access_key(rest) {
            Some((grantee, dataset, None)) => {
                Some(Entry::AccessHead(grantee, dataset, decoded(key, value)?))
            }
            Some((grantee, dataset, Some(chunk))) => Some(Entry::AccessChunk(
                grantee,
                dataset,
                chunk,
                decoded(key, value)?,
            )),
            None => None,
        });
    }
    Ok(None)
}

/// `<grantee>/<dataset>` (the head) or `<grantee>/<dataset>/<chunk:be>` (a sealed chunk), split.
fn access_key(rest: &[u8]) -> Option<(OrgId, DatasetId, Option<u64>)> {
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (grantee, tail) = (&rest[..slash], &rest[slash + 1..]);
    let (dataset, chunk) = match tail.iter().position(|&b| b == b'/') {
        None => (tail, None),
        Some(at) => {
            let chunk = <[u8; 8]>::try_from(&tail[at + 1..]).ok()?;
            (&tail[..at], Some(u64::from_be_bytes(chunk)))
        }
    };
    Some((OrgId(text(grantee)?), DatasetId(text(dataset)?), chunk))
}

impl CheckIndex {
    /// An empty index (the state before genesis; `apply` the genesis changes to it).
    pub fn new() -> CheckIndex {
        CheckIndex::default()
    }

    /// The index of a whole state given as its `(key, value)` pairs in any order (e.g. a
    /// `MemoryState`'s iterator or a store scan). Exact: every mirrored key is taken.
    pub fn from_entries<'a, I>(entries: I) -> Result<CheckIndex, ContractError>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut index = CheckIndex::new();
        for (key, value) in entries {
            if let Some(entry) = parse(key, Some(value))? {
                index.put(entry);
            }
        }
        Ok(index)
    }

    /// The index of `state` by point reads only, walking the state's own lists: the
    /// organisation list, the purpose list, the dataset list, grants `1..=` the grant counter
    /// and the access index of each (grantee, dataset) pair holding a grant. Equal to
    /// [`CheckIndex::from_entries`] as long as the lists are complete, which the contracts keep
    /// (organisations are never dropped from `orgs`, purposes and datasets are listed when
    /// written, every access entry lists grants of its pair, no chunk lies beyond its head's
    /// count).
    pub fn build<S: StateReader + ?Sized>(state: &S) -> Result<CheckIndex, ContractError> {
        let mut index = CheckIndex::new();
        for org in org_ids(state)? {
            if let Some(status) = store::read(state, &keys::org_status(&org))? {
                index.put(Entry::Status(org, Some(status)));
            }
        }
        let codes: Vec<PurposeCode> = store::read(state, keys::PURPOSE_LIST)?.unwrap_or_default();
        for code in codes {
            if purpose_exists(state, &code)? {
                index.put(Entry::Purpose(code, true));
            }
        }
        let datasets: Vec<DatasetId> = store::read(state, keys::DATASET_LIST)?.unwrap_or_default();
        for id in datasets {
            if let Some(dataset) = get_dataset(state, &id)? {
                index.put(Entry::Dataset(id, Some(dataset)));
            }
        }
        let mut pairs = BTreeSet::new();
        for n in 1..=store::last_id(state, GRANT_SEQUENCE)? {
            if let Some(grant) = get_grant(state, GrantId(n))? {
                pairs.insert((grant.grantee.clone(), grant.dataset.clone()));
                index.put(Entry::Grant(grant.id, Some(Box::new(grant))));
            }
        }
        for (grantee, dataset) in pairs {
            let key = keys::access_index(&grantee, &dataset);
            let Some(head) = store::read::<AccessHead, _>(state, &key)? else {
                continue;
            };
            for chunk in 0..head.sealed {
                let key = keys::access_chunk(&grantee, &dataset, chunk);
                if let Some(ids) = store::read(state, &key)? {
                    let (grantee, dataset) = (grantee.clone(), dataset.clone());
                    index.put(Entry::AccessChunk(grantee, dataset, chunk, Some(ids)));
                }
            }
            index.put(Entry::AccessHead(grantee, dataset, Some(head)));
        }
        Ok(index)
    }

    /// Bring the index from the state before a block to the state after it, given the
    /// block's changes. All or nothing (see the module docs).
    pub fn apply(&mut self, changes: &StateChanges) -> Result<(), ContractError> {
        let mut entries = Vec::new();
        for (key, value) in changes {
            if let Some(entry) = parse(key, value.as_deref())? {
                entries.push(entry);
            }
        }
        for entry in entries {
            self.put(entry);
        }
        Ok(())
    }

    fn put(&mut self, entry: Entry) {
        match entry {
            Entry::Status(org, status) => self.with_org(&org.0, |e| e.status = status),
            Entry::Purpose(code, exists) => with_purpose(&mut self.purposes, &code.0, |e| {
                e.exists = exists;
            }),
            Entry::Dataset(id, record) => self.with_dataset(&id.0, |e| e.record = record),
            Entry::Grant(id, grant) => self.put_grant(id, grant),
            Entry::AccessHead(grantee, dataset, head) => {
                if let Some(key) = self.pair_for(&grantee, &dataset, head.is_some()) {
                    let (sealed, open) = head.map(|h| (h.sealed, h.open)).unzip();
                    self.put_access(key, Slot::Open, open);
                    self.set_sealed(key, sealed);
                }
            }
            Entry::AccessChunk(grantee, dataset, chunk, ids) => {
                if let Some(key) = self.pair_for(&grantee, &dataset, ids.is_some()) {
                    self.put_access(key, Slot::Sealed(chunk), ids);
                }
            }
        }
    }

    /// Run `update` on the entry of organisation `id` (interned if new).
    fn with_org<R>(&mut self, id: &str, update: impl FnOnce(&mut OrgEntry) -> R) -> R {
        let new = |number| OrgEntry {
            number,
            status: None,
        };
        upsert(&mut self.orgs, id, new, update)
    }

    /// Run `update` on the entry of dataset `id` (interned if new).
    fn with_dataset<R>(&mut self, id: &str, update: impl FnOnce(&mut DatasetEntry) -> R) -> R {
        let new = |number| DatasetEntry {
            number,
            record: None,
        };
        upsert(&mut self.datasets, id, new, update)
    }

    /// Set or delete `grant/<id>`, and refresh the access lists naming it.
    fn put_grant(&mut self, id: GrantId, grant: Option<Box<Grant>>) {
        let purposes = &mut self.purposes;
        let grant = grant.map(|grant| IndexedGrant {
            terms: Terms::compile(
                &grant,
                |code| with_purpose(purposes, code, |e| e.number),
                &mut self.fields,
            ),
            record: Arc::from(grant),
        });
        let entry = self.grants.entry(id).or_default();
        match (entry.grant.is_some(), grant.is_some()) {
            (false, true) => self.grant_count += 1,
            (true, false) => self.grant_count -= 1,
            _ => {}
        }
        entry.grant = grant;
        for (key, slot) in &entry.listed_in {
            let listed = self.access.get_mut(key).and_then(|l| l.slots.get_mut(slot));
            for candidate in listed.into_iter().flat_map(|c| c.iter_mut()) {
                if candidate.id == id {
                    candidate.grant.clone_from(&entry.grant);
                }
            }
        }
        if entry.grant.is_none() && entry.listed_in.is_empty() {
            self.grants.remove(&id);
        }
    }

    /// The access table key of (grantee, dataset): interned when `create`, else only if
    /// both names are known.
    fn pair_for(&mut self, grantee: &OrgId, dataset: &DatasetId, create: bool) -> Option<u64> {
        if !create {
            return self.pair(grantee, dataset);
        }
        Some(pair_key(
            self.with_org(grantee.as_str(), |e| e.number),
            self.with_dataset(dataset.as_str(), |e| e.number),
        ))
    }

    /// Set or delete the head's sealed-chunk count of access list `key`.
    fn set_sealed(&mut self, key: u64, sealed: Option<u64>) {
        let list = self.access.entry(key).or_default();
        list.sealed = sealed;
        if list.is_empty() {
            self.access.remove(&key);
        }
    }

    /// Set or delete one chunk of access list `key`, keeping each grant's listings.
    fn put_access(&mut self, key: u64, slot: Slot, ids: Option<Vec<GrantId>>) {
        let listing = (key, slot);
        let old = self
            .access
            .get_mut(&key)
            .and_then(|list| list.slots.remove(&slot));
        for candidate in old.iter().flat_map(|c| c.iter()) {
            if let Some(entry) = self.grants.get_mut(&candidate.id) {
                entry.listed_in.retain(|l| *l != listing);
                if entry.grant.is_none() && entry.listed_in.is_empty() {
                    self.grants.remove(&candidate.id);
                }
            }
        }
        if let Some(ids) = ids {
            let candidates = ids
                .into_iter()
                .map(|id| {
                    let entry = self.grants.entry(id).or_default();
                    if !entry.listed_in.contains(&listing) {
                        entry.listed_in.push(listing);
                    }
                    Candidate {
                        id,
                        grant: entry.grant.clone(),
                    }
                })
                .collect();
            self.access
                .entry(key)
                .or_default()
                .slots
                .insert(slot, candidates);
        }
        if self.access.get(&key).is_some_and(AccessList::is_empty) {
            self.access.remove(&key);
        }
    }

    /// The access table key of (grantee, dataset), if both are interned.
    fn pair(&self, grantee: &OrgId, dataset: &DatasetId) -> Option<u64> {
        let grantee = self.orgs.get(grantee.as_str())?.number;
        let dataset = self.datasets.get(dataset.as_str())?.number;
        Some(pair_key(grantee, dataset))
    }

    /// The same answer as [`check`](crate::check) over the indexed state, from memory.
    pub fn check<F: AsRef<str>>(
        &self,
        grantee: &OrgId,
        dataset: &DatasetId,
        fields: &[F],
        purpose: &PurposeCode,
        time: Timestamp,
    ) -> Result<Decision, ContractError> {
        decide(self, grantee, dataset, fields, purpose, time)
    }

    /// How many grants it holds.
    pub fn grant_count(&self) -> usize {
        self.grant_count
    }

    /// The indexed contents in sorted order, without interned numbers: what equality compares.
    fn contents(&self) -> Contents<'_> {
        let org_names: BTreeMap<u32, &str> =
            self.orgs.iter().map(|(id, e)| (e.number, &**id)).collect();
        let dataset_names: BTreeMap<u32, &str> = self
            .datasets
            .iter()
            .map(|(id, e)| (e.number, &**id))
            .collect();
        Contents {
            statuses: self
                .orgs
                .iter()
                .filter_map(|(id, e)| Some((&**id, e.status?)))
                .collect(),
            purposes: self
                .purposes
                .iter()
                .filter(|(_, e)| e.exists)
                .map(|(code, _)| &**code)
                .collect(),
            datasets: self
                .datasets
                .iter()
                .filter_map(|(id, e)| Some((&**id, e.record.as_ref()?)))
                .collect(),
            grants: self
                .grants
                .iter()
                .filter_map(|(id, e)| Some((*id, &*e.grant.as_ref()?.record)))
                .collect(),
            access: self
                .access
                .iter()
                .map(|(key, list)| {
                    let pair = (
                        name_of(&org_names, key >> 32),
                        name_of(&dataset_names, *key),
                    );
                    let chunks = list
                        .slots
                        .iter()
                        .map(|(slot, candidates)| {
                            let listed = candidates
                                .iter()
                                .map(|c| (c.id, c.grant.as_ref().map(|g| &*g.record)))
                                .collect();
                            (*slot, listed)
                        })
                        .collect();
                    (pair, (list.sealed, chunks))
                })
                .collect(),
            grant_count: self.grant_count,
        }
    }
}

/// The name numbered by the low 32 bits of `number`.
fn name_of<'a>(names: &BTreeMap<u32, &'a str>, number: u64) -> &'a str {
    u32::try_from(number & u64::from(u32::MAX))
        .ok()
        .and_then(|n| names.get(&n).copied())
        .unwrap_or_default()
}

/// Run `update` on the entry of purpose `code` (interned if new).
fn with_purpose<R>(
    purposes: &mut FastMap<Box<str>, PurposeEntry>,
    code: &str,
    update: impl FnOnce(&mut PurposeEntry) -> R,
) -> R {
    let new = |number| PurposeEntry {
        number,
        exists: false,
    };
    upsert(purposes, code, new, update)
}

/// Run `update` on the entry of `name` in `table`, numbering and inserting the entry `new`
/// makes if absent (the name is allocated only then).
fn upsert<V, R>(
    table: &mut FastMap<Box<str>, V>,
    name: &str,
    new: impl FnOnce(u32) -> V,
    update: impl FnOnce(&mut V) -> R,
) -> R {
    if let Some(entry) = table.get_mut(name) {
        return update(entry);
    }
    let mut entry = new(next_number(table.len()));
    let result = update(&mut entry);
    table.insert(name.into(), entry);
    result
}

/// An access-list chunk's entries with the grant each holds.
type Listed<'a> = Vec<(GrantId, Option<&'a Grant>)>;

/// An access list's sealed-chunk count and chunks.
type ListedChunks<'a> = (Option<u64>, BTreeMap<Slot, Listed<'a>>);

/// [`CheckIndex`] contents in sorted order (see [`CheckIndex::contents`]).
#[derive(PartialEq)]
struct Contents<'a> {
    statuses: BTreeMap<&'a str, OrgStatus>,
    purposes: BTreeSet<&'a str>,
    datasets: BTreeMap<&'a str, &'a Dataset>,
    grants: BTreeMap<GrantId, &'a Grant>,
    /// Each list's sealed-chunk count and chunks, with the grant each entry holds (so a stale copy would
    /// show).
    access: BTreeMap<(&'a str, &'a str), ListedChunks<'a>>,
    grant_count: usize,
}

impl PartialEq for CheckIndex {
    fn eq(&self, other: &CheckIndex) -> bool {
        self.contents() == other.contents()
    }
}

impl Eq for CheckIndex {}

impl DecisionReads for CheckIndex {
    type Request = Request;
    type Candidate = Candidate;

    fn org_status(&self, org: &OrgId) -> Result<Option<OrgStatus>, ContractError> {
        Ok(self.orgs.get(org.as_str()).and_then(|e| e.status))
    }

    fn purpose_exists(&self, purpose: &PurposeCode) -> Result<bool, ContractError> {
        Ok(self
            .purposes
            .get(purpose.as_str())
            .is_some_and(|e| e.exists))
    }

    fn request(&self, fields: &[&str], purpose: &PurposeCode) -> Request {
        let numbers: Option<Vec<u32>> = fields
            .iter()
            .map(|f| self.fields.get(*f).copied())
            .collect();
        Request {
            purpose: self.purposes.get(purpose.as_str()).map(|e| e.number),
            fields: numbers.map(NumberSet::of),
        }
    }

    fn candidates(
        &self,
        grantee: &OrgId,
        dataset: &DatasetId,
    ) -> Result<Vec<Cow<'_, [Candidate]>>, ContractError> {
        let list = self
            .pair(grantee, dataset)
            .and_then(|key| self.access.get(&key));
        Ok(list
            .into_iter()
            .flat_map(AccessList::visible)
            .map(Cow::Borrowed)
            .collect())
    }

    fn evaluate<'c>(
        &'c self,
        candidate: &'c Candidate,
        request: &Request,
        fields: &[&str],
        purpose: &PurposeCode,
        time: Timestamp,
    ) -> Result<Evaluated<'c>, ContractError> {
        let Some(grant) = &candidate.grant else {
            return Err(store::missing(&keys::grant(candidate.id)));
        };
        let outcome = if grant.terms.regular {
            evaluate_terms(&grant.terms.against(request), time)
        } else {
            evaluate_grant(&grant.record, fields, purpose, time)
        };
        Ok(Evaluated {
            id: candidate.id,
            parent: grant.terms.parent,
            grant: Cow::Borrowed(&*grant.record),
            outcome,
        })
    }

    fn grant(&self, id: GrantId) -> Result<Cow<'_, Grant>, ContractError> {
        match self.grants.get(&id).and_then(|e| e.grant.as_ref()) {
            Some(grant) => Ok(Cow::Borrowed(&*grant.record)),
            None => Err(store::missing(&keys::grant(id))),
        }
    }

    fn dataset(&self, id: &DatasetId) -> Result<Option<Cow<'_, Dataset>>, ContractError> {
        Ok(self
            .datasets
            .get(id.as_str())
            .and_then(|e| e.record.as_ref())
            .map(Cow::Borrowed))
    }
}
