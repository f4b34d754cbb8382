//! Property tests of [`CheckIndex`]: on random states and requests, `index.check` answers
//! exactly as `check` over the state (decision, reasons, explanations, allowing grants, and
//! corrupt-state errors), both for an index built from the state and for one kept up to date
//! by `apply` through random change sets; and the index after `apply` equals the index
//! rebuilt from the changed state.
//!
//! States are synthetic (written key by key) so that they reach corners real txs reach only
//! rarely: long delegation chains, exhausted ancestors, suspended and removed grantees,
//! purposes removed from the taxonomy, grants awaiting co-approval, missing grants, grants
//! listed under another pair's access key, and irregular grants (fields out of order,
//! repeated purposes). The index's own layout is exercised too: equality independent of the
//! order names were interned in, and more names than its bitsets hold.

#![allow(clippy::unwrap_used, clippy::panic)]

use gongzhi_contracts::governance::OrgStatus;
use gongzhi_contracts::grants::{AccessHead, Dataset, FieldSpec, Grant, Revocation, Sensitivity};
use gongzhi_contracts::{check, keys, CheckIndex, DatasetId, GrantId, OrgId, PurposeCode};
use gongzhi_ledger::codec::to_bytes;
use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::{MemoryState, StateChanges, Timestamp};
use proptest::prelude::*;

const ORGS: [&str; 5] = ["org-a", "org-b", "org-c", "org-d", "ghost"];
const DATASETS: [&str; 3] = ["ds-x", "ds-y", "nope"];
const FIELDS: [&str; 5] = ["age", "district", "name", "score", "shoe-size"];
const PURPOSES: [&str; 4] = ["care", "emergency", "stats", "astrology"];
const STATUSES: [Option<OrgStatus>; 6] = [
    None,
    Some(OrgStatus::Active),
    Some(OrgStatus::Active),
    Some(OrgStatus::Active),
    Some(OrgStatus::Suspended),
    Some(OrgStatus::Removed),
];

/// A random grant: (grantee, dataset, field mask, purpose mask, flags, time window, uses).
type GrantSpec = (usize, usize, u8, u8, u8, (u8, u8), (u8, u8));

fn pick(all: &[&str], mask: u8) -> Vec<String> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn grant(id: u64, spec: &GrantSpec) -> Grant {
    let (grantee, ds, fields, purposes, flags, (from, len), (uses, max)) = *spec;
    let mut grant = Grant {
        id: GrantId(id),
        grantor: OrgId("owner".into()),
        grantee: OrgId(ORGS[grantee % 4].into()),
        dataset: DatasetId(DATASETS[ds % 2].into()),
        // The last field is never in a dataset: grants only cover real fields.
        fields: pick(&FIELDS[..4], fields.max(1)),
        purposes: pick(&PURPOSES[..3], purposes.max(1))
            .into_iter()
            .map(PurposeCode)
            .collect(),
        valid_from: Timestamp(u64::from(from % 8)),
        valid_until: Timestamp(u64::from(from % 8) + 1 + u64::from(len % 8)),
        max_uses: (flags & 1 != 0).then_some(u64::from(max % 4) + 1),
        uses: u64::from(uses % 6),
        delegation_depth: 1,
        co_approver: (flags & 2 != 0).then(|| OrgId("org-d".into())),
        co_approved: flags & 6 != 2,
        consent_hash: None,
        // Delegated from an earlier grant (parents always have lower ids).
        parent: (flags & 8 != 0 && id > 1).then(|| GrantId(1 + u64::from(flags >> 4) % (id - 1))),
        revoked: (flags & 0x80 != 0 && flags & 0x10 != 0).then(|| Revocation {
            by: OrgId("owner".into()),
            time: Timestamp(1),
            reason: "test".into(),
            cascaded_from: None,
        }),
        created: Timestamp(0),
    };
    // Irregular grants (no contract writes them): fields out of order, a purpose repeated.
    // The index must answer as the binary searches of `check` do even then.
    if max & 0x80 != 0 {
        grant.fields.reverse();
    }
    if let Some(first) = grant.purposes.first().filter(|_| max & 0x40 != 0) {
        grant.purposes.push(first.clone());
    }
    grant
}

fn put<T: serde::Serialize>(changes: &mut StateChanges, key: Vec<u8>, value: &T) {
    changes.insert(key, Some(to_bytes(value)));
}

/// The value at `key` after `changes` over `state`, decoded.
fn current<T: serde::de::DeserializeOwned>(
    state: &MemoryState,
    changes: &StateChanges,
    key: &[u8],
) -> Option<T> {
    let bytes = match changes.get(key) {
        Some(value) => value.clone(),
        None => state.get(key).cloned(),
    };
    bytes.map(|b| gongzhi_ledger::codec::from_bytes(&b, "value").unwrap())
}

/// Append `id` to the access index of `grantee` on `dataset` (sealing the open chunk when
/// full, as the contracts do) unless a chunk the head reaches lists it already.
fn list_access(
    state: &MemoryState,
    changes: &mut StateChanges,
    grantee: &OrgId,
    dataset: &DatasetId,
    id: GrantId,
) {
    let key = keys::access_index(grantee, dataset);
    let mut head: AccessHead = current(state, changes, &key).unwrap_or_default();
    let sealed = (0..head.sealed).any(|chunk| {
        let key = keys::access_chunk(grantee, dataset, chunk);
        current::<Vec<GrantId>>(state, changes, &key).is_some_and(|ids| ids.contains(&id))
    });
    if sealed || head.open.contains(&id) {
        return;
    }
    head.open.push(id);
    if head.open.len() == keys::CHUNK {
        let chunk = keys::access_chunk(grantee, dataset, head.sealed);
        put(changes, chunk, &std::mem::take(&mut head.open));
        head.sealed += 1;
    }
    put(changes, key, &head);
}

/// The changes that write grant `id` and list it in its access index (as in `state`).
fn write_grant(state: &MemoryState, changes: &mut StateChanges, g: &Grant) {
    put(changes, keys::grant(g.id), g);
    list_access(state, changes, &g.grantee, &g.dataset, g.id);
    put(
        changes,
        keys::counter("grant"),
        &g.id.0.max(counter(state, changes)),
    );
}

fn counter(state: &MemoryState, changes: &StateChanges) -> u64 {
    current(state, changes, &keys::counter("grant")).unwrap_or(0)
}

fn genesis_state(statuses: &[u8], purposes: u8, grants: &[GrantSpec]) -> MemoryState {
    let mut state = MemoryState::new();
    let mut changes = StateChanges::new();
    let orgs: Vec<OrgId> = ORGS[..4].iter().map(|o| OrgId(o.to_string())).collect();
    for (org, s) in orgs.iter().zip(statuses) {
        if let Some(status) = STATUSES[*s as usize % STATUSES.len()] {
            put(&mut changes, keys::org_status(org), &status);
        }
    }
    put(&mut changes, keys::ORG_LIST.to_vec(), &orgs);
    let codes: Vec<PurposeCode> = pick(&PURPOSES[..3], purposes | 1)
        .into_iter()
        .map(PurposeCode)
        .collect();
    for code in &codes {
        put(&mut changes, keys::purpose(code), &code.0);
    }
    put(&mut changes, keys::PURPOSE_LIST.to_vec(), &codes);
    let ids: Vec<DatasetId> = DATASETS[..2]
        .iter()
        .map(|d| DatasetId(d.to_string()))
        .collect();
    for id in &ids {
        let dataset = Dataset {
            id: id.clone(),
            owner: OrgId("owner".into()),
            name: id.0.clone(),
            fields: FIELDS[..4]
                .iter()
                .map(|f| FieldSpec {
                    name: f.to_string(),
                    sensitivity: Sensitivity::Internal,
                })
                .collect(),
        };
        put(&mut changes, keys::dataset(id), &dataset);
    }
    put(&mut changes, keys::DATASET_LIST.to_vec(), &ids);
    apply_changes(&mut state, &changes);
    let mut changes = StateChanges::new();
    for (i, spec) in grants.iter().enumerate() {
        write_grant(&state, &mut changes, &grant(i as u64 + 1, spec));
    }
    apply_changes(&mut state, &changes);
    state
}

/// A random change set: (kind, a, b, grant spec).
type Change = (u8, u8, u8, GrantSpec);

fn change_set(state: &MemoryState, ops: &[Change]) -> StateChanges {
    let mut changes = StateChanges::new();
    for (kind, a, b, spec) in ops {
        let org = OrgId(ORGS[*a as usize % 4].into());
        let code = PurposeCode(PURPOSES[*a as usize % 3].into());
        let last = counter(state, &changes);
        let existing = GrantId(u64::from(*a) % last.max(1) + 1);
        match kind % 7 {
            0 => match STATUSES[*b as usize % STATUSES.len()] {
                Some(status) => put(&mut changes, keys::org_status(&org), &status),
                None => {
                    changes.insert(keys::org_status(&org), None);
                }
            },
            1 => {
                changes.insert(keys::purpose(&code), None);
            }
            2 => put(&mut changes, keys::purpose(&code), &code.0),
            // A new grant, or an existing grant's terms (uses, revocation, co-approval) changed.
            3 => write_grant(state, &mut changes, &grant(last + 1, spec)),
            4 if last > 0 => {
                let mut g = grant(existing.0, spec);
                g.parent = g.parent.filter(|p| p.0 < existing.0);
                put(&mut changes, keys::grant(existing), &g);
                list_access(state, &mut changes, &g.grantee, &g.dataset, existing);
            }
            // Corrupt the state: a grant an access index refers to disappears.
            5 if *b == 0 && last > 0 => {
                changes.insert(keys::grant(existing), None);
            }
            // An access index loses its head (all of it disappears) or its first sealed chunk.
            6 => {
                let dataset = DatasetId(DATASETS[*b as usize % 2].into());
                let key = match b & 2 {
                    0 => keys::access_index(&org, &dataset),
                    _ => keys::access_chunk(&org, &dataset, 0),
                };
                changes.insert(key, None);
            }
            _ => {
                // Keys the index ignores.
                put(&mut changes, keys::counter("record"), &u64::from(*b));
            }
        }
    }
    changes
}

type Request = (usize, usize, u8, usize, u8);

fn assert_same(state: &MemoryState, index: &CheckIndex, requests: &[Request]) {
    for &(o, d, fields, p, t) in requests {
        let grantee = OrgId(ORGS[o % ORGS.len()].into());
        let dataset = DatasetId(DATASETS[d % DATASETS.len()].into());
        let fields = pick(&FIELDS, fields % 32);
        let purpose = PurposeCode(PURPOSES[p % PURPOSES.len()].into());
        let time = Timestamp(u64::from(t % 18));
        let want = check(state, &grantee, &dataset, &fields, &purpose, time);
        let got = index.check(&grantee, &dataset, &fields, &purpose, time);
        match (want, got) {
            (Ok(want), Ok(got)) => {
                assert_eq!(want, got, "{grantee} {dataset} {fields:?} {purpose}")
            }
            (Err(want), Err(got)) => assert_eq!(want.to_string(), got.to_string()),
            (want, got) => panic!("state: {want:?}, index: {got:?}"),
        }
    }
}

fn grant_spec() -> impl Strategy<Value = GrantSpec> {
    (
        0usize..4,
        0usize..2,
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        (any::<u8>(), any::<u8>()),
        (any::<u8>(), any::<u8>()),
    )
}

fn request() -> impl Strategy<Value = Request> {
    (0usize..5, 0usize..3, any::<u8>(), 0usize..4, any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn index_answers_as_check(
        statuses in prop::collection::vec(any::<u8>(), 4),
        purposes in any::<u8>(),
        grants in prop::collection::vec(grant_spec(), 0..24),
        blocks in prop::collection::vec(
            prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), grant_spec()), 0..8),
            0..5,
        ),
        requests in prop::collection::vec(request(), 1..40),
    ) {
        let mut state = genesis_state(&statuses, purposes, &grants);
        let mut index = CheckIndex::build(&state).unwrap();
        let entries = CheckIndex::from_entries(state.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
        prop_assert_eq!(&index, &entries);
        // Names are numbered in the order they come in; equality must not depend on it.
        let reversed =
            CheckIndex::from_entries(state.iter().rev().map(|(k, v)| (&k[..], &v[..]))).unwrap();
        prop_assert_eq!(&index, &reversed);
        prop_assert_eq!(index.grant_count(), grants.len());
        assert_same(&state, &index, &requests);
        for ops in &blocks {
            let changes = change_set(&state, ops);
            index.apply(&changes).unwrap();
            apply_changes(&mut state, &changes);
            let rebuilt =
                CheckIndex::from_entries(state.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
            prop_assert_eq!(&index, &rebuilt);
            assert_same(&state, &index, &requests);
        }
    }
}

#[test]
fn apply_is_all_or_nothing() {
    let state = genesis_state(&[0, 1, 2, 3], 0xff, &[(0, 0, 3, 1, 0, (0, 7), (0, 0))]);
    let mut index = CheckIndex::build(&state).unwrap();
    let before = index.clone();
    let mut changes = StateChanges::new();
    put(
        &mut changes,
        keys::org_status(&OrgId("org-a".into())),
        &OrgStatus::Removed,
    );
    changes.insert(keys::grant(GrantId(1)), Some(vec![0xff; 3]));
    let err = index.apply(&changes).unwrap_err();
    assert!(err.to_string().contains("corrupt state"), "{err}");
    assert_eq!(index, before);
}

#[test]
fn genesis_changes_applied_to_an_empty_index() {
    let state = genesis_state(&[0, 3, 4, 1], 0b101, &[(1, 1, 0xf, 0xf, 0, (0, 7), (0, 0))]);
    let changes: StateChanges = state
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let mut index = CheckIndex::new();
    index.apply(&changes).unwrap();
    assert_eq!(index, CheckIndex::build(&state).unwrap());
}

/// More than 64 field names and purposes: the index's sets hold numbers from 64 up outside
/// their bitset; answers must not change.
#[test]
fn names_beyond_the_bitset() {
    use rand::{Rng, SeedableRng};
    let fields: Vec<String> = (0..90).map(|i| format!("f{i:02}")).collect();
    let purposes: Vec<PurposeCode> = (0..80).map(|i| PurposeCode(format!("p{i:02}"))).collect();
    let org = OrgId("org-a".into());
    let ds = DatasetId("ds-x".into());
    let mut changes = StateChanges::new();
    put(&mut changes, keys::org_status(&org), &OrgStatus::Active);
    put(&mut changes, keys::ORG_LIST.to_vec(), &vec![org.clone()]);
    for code in &purposes {
        put(&mut changes, keys::purpose(code), &code.0);
    }
    put(&mut changes, keys::PURPOSE_LIST.to_vec(), &purposes);
    let dataset = Dataset {
        id: ds.clone(),
        owner: OrgId("owner".into()),
        name: "x".into(),
        fields: fields
            .iter()
            .map(|f| FieldSpec {
                name: f.clone(),
                sensitivity: Sensitivity::Internal,
            })
            .collect(),
    };
    put(&mut changes, keys::dataset(&ds), &dataset);
    put(&mut changes, keys::DATASET_LIST.to_vec(), &vec![ds.clone()]);
    let mut state = MemoryState::new();
    apply_changes(&mut state, &changes);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut changes = StateChanges::new();
    for id in 1..=40u64 {
        let mut g = grant(id, &(0, 0, 1, 1, 0, (0, 7), (0, 0)));
        g.grantee = org.clone();
        g.dataset = ds.clone();
        g.fields = fields
            .iter()
            .filter(|_| rng.gen_bool(0.7))
            .cloned()
            .collect();
        g.purposes = purposes
            .iter()
            .filter(|_| rng.gen_bool(0.3))
            .cloned()
            .collect();
        write_grant(&state, &mut changes, &g);
        apply_changes(&mut state, &changes);
        changes.clear();
    }
    let index = CheckIndex::build(&state).unwrap();
    let mut allowed = 0;
    for _ in 0..2_000 {
        let n = rng.gen_range(1..4);
        let asked: Vec<String> = (0..n)
            .map(|_| fields[rng.gen_range(0..fields.len())].clone())
            .collect();
        let purpose = &purposes[rng.gen_range(0..purposes.len())];
        let time = Timestamp(rng.gen_range(0..10));
        let want = check(&state, &org, &ds, &asked, purpose, time).unwrap();
        let got = index.check(&org, &ds, &asked, purpose, time).unwrap();
        assert_eq!(want, got, "{asked:?} {purpose}");
        allowed += usize::from(want.is_allowed());
    }
    assert!(allowed > 100, "the requests should reach allows: {allowed}");
}

/// The node builds the index on a blocking thread and shares it between request handlers.
#[test]
fn index_is_send_and_sync() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<CheckIndex>();
}

/// Applies `changes` to both `index` and `state`, then checks the index equals the one
/// rebuilt from the state and answers `requests` as `check` does.
fn apply_and_compare(
    index: &mut CheckIndex,
    state: &mut MemoryState,
    changes: &StateChanges,
    requests: &[Request],
) {
    index.apply(changes).unwrap();
    apply_changes(state, changes);
    let rebuilt = CheckIndex::from_entries(state.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
    assert_eq!(*index, rebuilt);
    assert_same(state, index, requests);
}

/// One pair holding several chunks of grants: the index answers as `check` before and after a
/// block that fills the open chunk, seals it and opens the next one, and the block wrote only
/// the head and the newly sealed chunk.
#[test]
fn long_access_lists_span_chunks() {
    let per_chunk = keys::CHUNK;
    // Varied terms (fields, purposes, flags, windows, uses), all for org-a on ds-x.
    let spec = |i: usize| -> GrantSpec {
        let i8 = i as u8;
        (
            0,
            0,
            i8.wrapping_mul(7),
            i8.wrapping_mul(3),
            i8 & 0x07,
            (i8, i8 >> 2),
            (i8, i8 >> 1),
        )
    };
    let first: Vec<GrantSpec> = (0..2 * per_chunk + 5).map(spec).collect();
    let mut state = genesis_state(&[1, 1, 1, 1], 0xff, &first);
    let grantee = OrgId("org-a".into());
    let dataset = DatasetId("ds-x".into());
    let ids = gongzhi_contracts::query::access_list(&state, &grantee, &dataset).unwrap();
    assert_eq!(ids.len(), first.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let mut index = CheckIndex::build(&state).unwrap();
    let requests: Vec<Request> = (0..64u8)
        .map(|i| (0, 0, i.wrapping_mul(5), usize::from(i % 4), i))
        .collect();
    assert_same(&state, &index, &requests);

    let mut changes = StateChanges::new();
    let last = counter(&state, &changes);
    for n in 0..per_chunk as u64 {
        write_grant(
            &state,
            &mut changes,
            &grant(last + 1 + n, &spec(n as usize + 3)),
        );
    }
    let access_keys: Vec<&Vec<u8>> = changes
        .keys()
        .filter(|k| k.starts_with(b"access/"))
        .collect();
    assert_eq!(
        access_keys,
        vec![
            &keys::access_index(&grantee, &dataset),
            &keys::access_chunk(&grantee, &dataset, 2),
        ]
    );
    apply_and_compare(&mut index, &mut state, &changes, &requests);
    let count = gongzhi_contracts::query::access_list(&state, &grantee, &dataset)
        .unwrap()
        .len();
    assert_eq!(count, 3 * per_chunk + 5);

    // Corrupt states: a sealed chunk goes missing (its grants are no longer candidates), then
    // the head (the chunks it counted are no longer read at all).
    for key in [
        keys::access_chunk(&grantee, &dataset, 1),
        keys::access_index(&grantee, &dataset),
    ] {
        let changes: StateChanges = [(key, None)].into_iter().collect();
        apply_and_compare(&mut index, &mut state, &changes, &requests);
    }
    let left = gongzhi_contracts::query::access_list(&state, &grantee, &dataset).unwrap();
    assert!(left.is_empty(), "{left:?}");
}
