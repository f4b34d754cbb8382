//! Contract benchmarks (signatures excluded: txs are signed up front, execution does not
//! verify them).
//!
//! - `execute/grant_credit_mix`: one block of 1,000 txs — 40% IssueGrant, 20% RecordUse,
//!   30% Award, 10% Redeem — on a state holding 100,000 grants; throughput in tx/s.
//! - `check/100k_grants`: `check` decisions on that state (MemoryState), cycling through
//!   1,024 queries: 75% that allow, 25% that deny (purpose not covered / no grant).
//!
//! - `check/100k_grants_index`: the same queries answered by a [`CheckIndex`] of that state
//!   (built once, timed separately with `index/build_100k_grants`; `index/apply_1000tx_block`
//!   times bringing it up to date with the execution benchmark's block).
//!
//! - `baseline/memory_state_get`: one `MemoryState::get` of a random grant key on that state, to
//!   normalise the figures above when the machine is shared (check ≈ reads × this + decoding).
//!
//! - `long_list/*`: one pair already holding 5,000 grants (per-case grants pile up): a block
//!   of 100 more IssueGrant to it, and the check index applying one of them.
//!
//! Run: `cargo bench -p gongzhi-contracts --bench contracts`

#![allow(clippy::unwrap_used, clippy::panic)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gongzhi_contracts::call::Call;
use gongzhi_contracts::governance::Parameters;
use gongzhi_contracts::grants::lifecycle::{NewGrant, UseRecord};
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{
    check, execute_block, genesis_changes, query, BlockContext, CheckIndex, DatasetId, Genesis,
    GenesisOrg, GenesisPurpose, GenesisReason, GrantId, OrgId, PurposeCode, ReasonCode, ResidentId,
};
use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::{Keypair, LedgerError, MemoryState, PublicKey, StateReader, Timestamp, Tx};

/// Counts reads, to report reads per decision and per tx.
struct Counting<'a> {
    inner: &'a MemoryState,
    reads: Cell<u64>,
}

impl StateReader for Counting<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.reads.set(self.reads.get() + 1);
        StateReader::get(self.inner, key)
    }
}
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHAIN: &str = "gongzhi-bench";
const T0: u64 = 1_767_225_600_000;
const GRANTEES: usize = 1_000;
const OWNERS: usize = 10;
const DATASETS: usize = 100;
const GRANTS: usize = 100_000;
const FIELDS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const PURPOSES: [&str; 4] = ["elderly-care", "emergency", "subsidy", "statistics"];

struct Bench {
    state: MemoryState,
    height: u64,
    time: u64,
    keys: BTreeMap<String, Keypair>,
    nonces: BTreeMap<PublicKey, u64>,
}

fn grantee(i: usize) -> String {
    format!("grantee-{i:04}")
}
fn owner(i: usize) -> String {
    format!("owner-{i:02}")
}
fn dataset(i: usize) -> DatasetId {
    DatasetId(format!("dataset-{i:03}"))
}

impl Bench {
    fn new() -> Bench {
        let mut keys = BTreeMap::new();
        let mut orgs = Vec::new();
        let mut add = |id: String, roles: &[&str], seed: u64, validator: bool| {
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&seed.to_le_bytes());
            let key = Keypair::from_secret(secret);
            secret[8] = 1;
            orgs.push(GenesisOrg {
                id: id.clone(),
                kind: "city-department".into(),
                name: id.clone(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                operator_keys: vec![key.public().to_hex()],
                node_keys: Vec::new(),
                validator_key: validator.then(|| Keypair::from_secret(secret).public().to_hex()),
                power: validator.then_some(1),
                issuer_quota: None,
            });
            keys.insert(id, key);
        };
        for i in 0..OWNERS {
            add(
                owner(i),
                &["validator", "member", "issuer"],
                i as u64 + 1,
                true,
            );
        }
        for i in 0..GRANTEES {
            add(grantee(i), &["member"], 1_000 + i as u64, false);
        }
        add("service-point".into(), &["service-point"], 9_999, false);
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            genesis_time: T0,
            parameters: Parameters {
                default_issuer_quota: u64::MAX / 2,
                ..Default::default()
            },
            organisations: orgs,
            purposes: PURPOSES
                .iter()
                .map(|c| GenesisPurpose {
                    code: c.to_string(),
                    label: c.to_string(),
                })
                .collect(),
            reasons: vec![GenesisReason {
                code: "volunteering".into(),
                label: "志愿服务".into(),
                max_points: 20,
            }],
        };
        let mut state = MemoryState::new();
        apply_changes(&mut state, &genesis_changes(&genesis).unwrap());
        Bench {
            state,
            height: 0,
            time: T0,
            keys,
            nonces: BTreeMap::new(),
        }
    }

    fn tx(&mut self, signer: &str, call: &Call) -> Tx {
        let key = &self.keys[signer];
        let nonce = self.nonces.entry(key.public()).or_insert(0);
        *nonce += 1;
        call.sign(key, CHAIN, *nonce)
    }

    fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: CHAIN.into(),
            height: self.height + 1,
            time: Timestamp(self.time + 1000),
        }
    }

    fn commit(&mut self, txs: &[Tx]) {
        let ctx = self.ctx();
        let outcome = execute_block(&self.state, &ctx, txs).unwrap();
        let failed = outcome.receipts.iter().filter(|r| !r.is_success()).count();
        assert_eq!(
            failed,
            0,
            "setup tx failed: {:?}",
            outcome.receipts.iter().find(|r| !r.is_success())
        );
        apply_changes(&mut self.state, &outcome.changes);
        self.height = ctx.height;
        self.time = ctx.time.millis();
    }
}

fn issue(grantee_: usize, dataset_: usize, rng: &mut ChaCha8Rng) -> NewGrant {
    let mut fields: Vec<String> = FIELDS
        .iter()
        .filter(|_| rng.gen_bool(0.6))
        .map(|f| f.to_string())
        .collect();
    if fields.is_empty() {
        fields.push("a".into());
    }
    NewGrant {
        grantee: OrgId(grantee(grantee_)),
        dataset: dataset(dataset_),
        fields,
        purposes: vec![PurposeCode(PURPOSES[rng.gen_range(0..3)].into())],
        valid_from: Timestamp(T0),
        valid_until: Timestamp(T0 + 365 * 24 * 3600 * 1000),
        terms: GrantTerms {
            max_uses: Some(1_000_000),
            ..Default::default()
        },
        parent: None,
    }
}

/// Registering dataset `d` (owned by `owner(d % OWNERS)`), every field internal.
fn register_dataset(d: usize) -> Call {
    Call::RegisterDataset {
        id: dataset(d),
        name: format!("数据集 {d}"),
        fields: FIELDS
            .iter()
            .map(|f| FieldSpec {
                name: f.to_string(),
                sensitivity: Sensitivity::Internal,
            })
            .collect(),
    }
}

/// The 100k-grant state, and the (grantee, dataset) pairs that hold a grant.
fn setup() -> (Bench, Vec<(usize, usize, GrantId)>) {
    let mut b = Bench::new();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let txs: Vec<Tx> = (0..DATASETS)
        .map(|d| b.tx(&owner(d % OWNERS), &register_dataset(d)))
        .collect();
    b.commit(&txs);
    let mut pairs = Vec::with_capacity(GRANTS);
    for chunk in 0..(GRANTS / 10_000) {
        let mut txs = Vec::with_capacity(10_000);
        for i in 0..10_000 {
            let n = chunk * 10_000 + i;
            let (g, d) = (rng.gen_range(0..GRANTEES), rng.gen_range(0..DATASETS));
            txs.push(b.tx(&owner(d % OWNERS), &Call::IssueGrant(issue(g, d, &mut rng))));
            pairs.push((g, d, GrantId(n as u64 + 1)));
        }
        b.commit(&txs);
    }
    // Residents with balances for redemptions.
    let txs: Vec<Tx> = (0..100u8)
        .map(|r| {
            let call = Call::Award {
                resident: ResidentId([r; 32]),
                reason: ReasonCode("volunteering".into()),
                points: 20,
            };
            b.tx(&owner(0), &call)
        })
        .collect();
    b.commit(&txs);
    (b, pairs)
}

fn benches(c: &mut Criterion) {
    let (mut b, pairs) = setup();
    let grant_count =
        query::grants_by_dataset(&b.state, &dataset(0), gongzhi_contracts::Page::first(1))
            .unwrap()
            .total;
    eprintln!(
        "state: {} keys, {GRANTS} grants ({grant_count} on dataset-000)",
        b.state.len()
    );

    // --- execution: one 1,000-tx block, grant/credit mix, signed up front ---
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut txs = Vec::with_capacity(1000);
    for i in 0..1000 {
        let tx = match i % 10 {
            0..=3 => {
                let (g, d) = (rng.gen_range(0..GRANTEES), rng.gen_range(0..DATASETS));
                let call = Call::IssueGrant(issue(g, d, &mut rng));
                b.tx(&owner(d % OWNERS), &call)
            }
            4 | 5 => {
                let (g, _, id) = pairs[rng.gen_range(0..pairs.len())];
                let grant = query::get_grant(&b.state, id).unwrap().unwrap();
                let call = Call::RecordUse(UseRecord {
                    grant: id,
                    fields: vec![grant.fields[0].clone()],
                    purpose: grant.purposes[0].clone(),
                    reference: None,
                });
                b.tx(&grantee(g), &call)
            }
            6..=8 => {
                let call = Call::Award {
                    resident: ResidentId([rng.gen_range(0..=255u8); 32]),
                    reason: ReasonCode("volunteering".into()),
                    points: 5,
                };
                b.tx(&owner(rng.gen_range(0..OWNERS)), &call)
            }
            _ => {
                let call = Call::Redeem {
                    resident: ResidentId([rng.gen_range(0..100u8); 32]),
                    points: 1,
                    item: "rice".into(),
                };
                b.tx("service-point", &call)
            }
        };
        txs.push(tx);
    }
    let ctx = b.ctx();
    let outcome = execute_block(&b.state, &ctx, &txs).unwrap();
    let failed = outcome.receipts.iter().filter(|r| !r.is_success()).count();
    assert_eq!(
        failed,
        0,
        "{:?}",
        outcome.receipts.iter().find(|r| !r.is_success())
    );
    let counting = Counting {
        inner: &b.state,
        reads: Cell::new(0),
    };
    execute_block(&counting, &ctx, &txs).unwrap();
    eprintln!(
        "execution: {} base-state reads per tx",
        counting.reads.get() as f64 / txs.len() as f64
    );
    let mut group = c.benchmark_group("execute");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.sample_size(20);
    group.bench_function("grant_credit_mix_1000tx_block", |bench| {
        bench.iter(|| execute_block(black_box(&b.state), &ctx, black_box(&txs)).unwrap())
    });
    group.finish();

    // --- decisions ---
    let now = Timestamp(b.time);
    let mut queries = Vec::with_capacity(1024);
    let mut allowed = 0;
    for i in 0..1024 {
        let (g, d, id) = pairs[rng.gen_range(0..pairs.len())];
        let grant = query::get_grant(&b.state, id).unwrap().unwrap();
        let (grantee_, purpose) = if i % 4 == 3 {
            // Deny: another grantee (usually no grant) or an uncovered purpose.
            if i % 8 == 3 {
                (
                    OrgId(grantee((g + 1) % GRANTEES)),
                    grant.purposes[0].clone(),
                )
            } else {
                (grant.grantee.clone(), PurposeCode("statistics".into()))
            }
        } else {
            (grant.grantee.clone(), grant.purposes[0].clone())
        };
        let fields: Vec<String> = grant.fields.iter().take(2).cloned().collect();
        let q = (grantee_, dataset(d), fields, purpose);
        if check(&b.state, &q.0, &q.1, &q.2, &q.3, now)
            .unwrap()
            .is_allowed()
        {
            allowed += 1;
        }
        queries.push(q);
    }
    eprintln!("check queries: {allowed}/1024 allowed");
    let counting = Counting {
        inner: &b.state,
        reads: Cell::new(0),
    };
    for q in &queries {
        check(&counting, &q.0, &q.1, &q.2, &q.3, now).unwrap();
    }
    eprintln!(
        "check: {} reads per decision",
        counting.reads.get() as f64 / queries.len() as f64
    );
    let mut group = c.benchmark_group("check");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("100k_grants_memory_state", |bench| {
        bench.iter(|| {
            let q = &queries[i % queries.len()];
            i += 1;
            check(black_box(&b.state), &q.0, &q.1, &q.2, &q.3, now).unwrap()
        })
    });
    let index = CheckIndex::build(&b.state).unwrap();
    for q in &queries {
        assert_eq!(
            check(&b.state, &q.0, &q.1, &q.2, &q.3, now).unwrap(),
            index.check(&q.0, &q.1, &q.2, &q.3, now).unwrap()
        );
    }
    let mut i = 0usize;
    group.bench_function("100k_grants_index", |bench| {
        bench.iter(|| {
            let q = &queries[i % queries.len()];
            i += 1;
            black_box(&index)
                .check(&q.0, &q.1, &q.2, &q.3, now)
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    group.bench_function("build_100k_grants", |bench| {
        bench.iter(|| CheckIndex::build(black_box(&b.state)).unwrap())
    });
    bench_apply(&mut group, "apply_1000tx_block", &index, &outcome.changes);
    group.finish();

    // Random grant keys (not adjacent ones, which would stay in cache).
    let grant_keys: Vec<Vec<u8>> = (0..1024)
        .map(|_| gongzhi_contracts::keys::grant(pairs[rng.gen_range(0..pairs.len())].2))
        .collect();
    let mut group = c.benchmark_group("baseline");
    let mut j = 0usize;
    group.bench_function("memory_state_get", |bench| {
        bench.iter(|| {
            j += 1;
            StateReader::get(black_box(&b.state), &grant_keys[j % grant_keys.len()]).unwrap()
        })
    });
    group.finish();
}

/// Times `CheckIndex::apply` of `changes` to a fresh copy of `index`.
fn bench_apply(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    index: &CheckIndex,
    changes: &gongzhi_ledger::StateChanges,
) {
    group.bench_function(name, |bench| {
        bench.iter_batched(
            || index.clone(),
            |mut index| {
                index.apply(black_box(changes)).unwrap();
                index
            },
            criterion::BatchSize::LargeInput,
        )
    });
}

/// Grants already held by the one (grantee, dataset) pair of the long-list benches.
const LONG_LIST: usize = 5_000;

/// Issuing grants to a pair that already holds [`LONG_LIST`] of them: what one grant costs
/// execution and the check index once a pair's history is long (per-case grants).
fn long_access_list(c: &mut Criterion) {
    let mut b = Bench::new();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let tx = b.tx(&owner(0), &register_dataset(0));
    b.commit(&[tx]);
    for _ in 0..LONG_LIST / 1_000 {
        let txs: Vec<Tx> = (0..1_000)
            .map(|_| {
                let call = Call::IssueGrant(issue(0, 0, &mut rng));
                b.tx(&owner(0), &call)
            })
            .collect();
        b.commit(&txs);
    }
    let txs: Vec<Tx> = (0..100)
        .map(|_| {
            let call = Call::IssueGrant(issue(0, 0, &mut rng));
            b.tx(&owner(0), &call)
        })
        .collect();
    let ctx = b.ctx();
    let outcome = execute_block(&b.state, &ctx, &txs).unwrap();
    assert!(outcome.receipts.iter().all(|r| r.is_success()));
    let access_bytes: usize = outcome
        .changes
        .iter()
        .filter(|(k, _)| k.starts_with(b"access/"))
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
        .sum();
    eprintln!(
        "long list: the block's final access-index writes hold {access_bytes} bytes \
         ({} grants already on the pair)",
        LONG_LIST
    );
    let mut group = c.benchmark_group("long_list");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.sample_size(20);
    group.bench_function("issue_100_grants_to_a_pair_holding_5000", |bench| {
        bench.iter(|| execute_block(black_box(&b.state), &ctx, black_box(&txs)).unwrap())
    });
    // The index follows block by block; per-tx blocks show what one grant costs it.
    let index = CheckIndex::build(&b.state).unwrap();
    let one = execute_block(&b.state, &ctx, &txs[..1]).unwrap();
    group.throughput(Throughput::Elements(1));
    bench_apply(
        &mut group,
        "index_apply_one_grant_to_a_pair_holding_5000",
        &index,
        &one.changes,
    );
    group.finish();
}

criterion_group!(contracts, benches, long_access_list);
criterion_main!(contracts);
