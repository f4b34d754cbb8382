//! [`CheckIndex`]: the decision's inputs decoded and held in memory, for fast checks at the
//! latest committed height.
//!
//! The index mirrors exactly the five key families [`check`](crate::check) reads:
//! `org-status/<org>`, `purpose/<code>` (presence only), `dataset/<id>`, `grant/<id>` and
//! `access/<grantee>/<dataset>`, each decoded once. [`CheckIndex::check`] runs the same
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
//! - a state key that no decision can read is never needed: slug ids contain no `/`, so the
//!   `access/<grantee>/<dataset>` key splits at its first `/` after the prefix.
//!
//! Determinism: the index never writes state and is not used by execution, so it may use
//! `HashMap`/`HashSet` — for point lookups only; nothing iterates them into a result.
//! Historic checks and decision receipts keep using [`check`](crate::check) over the store.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use gongzhi_ledger::{StateChanges, StateReader, Timestamp};
use serde::de::DeserializeOwned;

use crate::decision::{decide, Decision, DecisionReads};
use crate::error::ContractError;
use crate::governance::{org_ids, purpose_exists, OrgStatus};
use crate::grants::lifecycle::GRANT_SEQUENCE;
use crate::grants::{get_dataset, get_grant, Dataset, Grant};
use crate::keys::{self, prefix};
use crate::store;
use crate::types::{DatasetId, GrantId, OrgId, PurposeCode};

/// The decision's inputs for one state, decoded. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckIndex {
    statuses: HashMap<OrgId, OrgStatus>,
    purposes: HashSet<PurposeCode>,
    datasets: HashMap<DatasetId, Dataset>,
    grants: HashMap<GrantId, Box<Grant>>,
    access: HashMap<OrgId, HashMap<DatasetId, Vec<GrantId>>>,
}

/// One changed key of a family the index mirrors, decoded (`None`: deleted).
enum Entry {
    Status(OrgId, Option<OrgStatus>),
    Purpose(PurposeCode, bool),
    Dataset(DatasetId, Option<Dataset>),
    Grant(GrantId, Option<Box<Grant>>),
    Access(OrgId, DatasetId, Option<Vec<GrantId>>),
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
    if let Some(rest) = id_after(key, prefix::ACCESS).and_then(text) {
        if let Some((grantee, dataset)) = rest.split_once('/') {
            return Ok(Some(Entry::Access(
                OrgId(grantee.to_string()),
                DatasetId(dataset.to_string()),
                decoded(key, value)?,
            )));
        }
    }
    Ok(None)
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
    /// written, every access entry lists grants of its pair).
    pub fn build<S: StateReader + ?Sized>(state: &S) -> Result<CheckIndex, ContractError> {
        let mut index = CheckIndex::new();
        for org in org_ids(state)? {
            if let Some(status) = store::read(state, &keys::org_status(&org))? {
                index.statuses.insert(org, status);
            }
        }
        let codes: Vec<PurposeCode> = store::read(state, keys::PURPOSE_LIST)?.unwrap_or_default();
        for code in codes {
            if purpose_exists(state, &code)? {
                index.purposes.insert(code);
            }
        }
        let datasets: Vec<DatasetId> = store::read(state, keys::DATASET_LIST)?.unwrap_or_default();
        for id in datasets {
            if let Some(dataset) = get_dataset(state, &id)? {
                index.datasets.insert(id, dataset);
            }
        }
        let mut pairs = BTreeSet::new();
        for n in 1..=store::last_id(state, GRANT_SEQUENCE)? {
            if let Some(grant) = get_grant(state, GrantId(n))? {
                pairs.insert((grant.grantee.clone(), grant.dataset.clone()));
                index.grants.insert(grant.id, Box::new(grant));
            }
        }
        for (grantee, dataset) in pairs {
            let key = keys::access_index(&grantee, &dataset);
            if let Some(ids) = store::read::<Vec<GrantId>, _>(state, &key)? {
                index.put(Entry::Access(grantee, dataset, Some(ids)));
            }
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
            Entry::Status(org, Some(status)) => {
                self.statuses.insert(org, status);
            }
            Entry::Status(org, None) => {
                self.statuses.remove(&org);
            }
            Entry::Purpose(code, true) => {
                self.purposes.insert(code);
            }
            Entry::Purpose(code, false) => {
                self.purposes.remove(&code);
            }
            Entry::Dataset(id, Some(dataset)) => {
                self.datasets.insert(id, dataset);
            }
            Entry::Dataset(id, None) => {
                self.datasets.remove(&id);
            }
            Entry::Grant(id, Some(grant)) => {
                self.grants.insert(id, grant);
            }
            Entry::Grant(id, None) => {
                self.grants.remove(&id);
            }
            Entry::Access(grantee, dataset, Some(ids)) => {
                self.access.entry(grantee).or_default().insert(dataset, ids);
            }
            Entry::Access(grantee, dataset, None) => {
                if let Some(by_dataset) = self.access.get_mut(&grantee) {
                    by_dataset.remove(&dataset);
                    if by_dataset.is_empty() {
                        self.access.remove(&grantee);
                    }
                }
            }
        }
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
        self.grants.len()
    }
}

impl DecisionReads for CheckIndex {
    fn org_status(&self, org: &OrgId) -> Result<Option<OrgStatus>, ContractError> {
        Ok(self.statuses.get(org).copied())
    }

    fn purpose_exists(&self, purpose: &PurposeCode) -> Result<bool, ContractError> {
        Ok(self.purposes.contains(purpose))
    }

    fn candidates(
        &self,
        grantee: &OrgId,
        dataset: &DatasetId,
    ) -> Result<Cow<'_, [GrantId]>, ContractError> {
        let ids = self
            .access
            .get(grantee)
            .and_then(|by_dataset| by_dataset.get(dataset));
        Ok(Cow::Borrowed(ids.map_or(&[], Vec::as_slice)))
    }

    fn grant(&self, id: GrantId) -> Result<Cow<'_, Grant>, ContractError> {
        match self.grants.get(&id) {
            Some(grant) => Ok(Cow::Borrowed(&**grant)),
            None => Err(store::missing(&keys::grant(id))),
        }
    }

    fn dataset(&self, id: &DatasetId) -> Result<Option<Cow<'_, Dataset>>, ContractError> {
        Ok(self.datasets.get(id).map(Cow::Borrowed))
    }
}
