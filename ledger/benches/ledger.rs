//! Ledger benchmarks: ed25519 tx signature verification (one at a time and in batches),
//! durable block commits of 1k and 10k txs (each tx writing 2 state keys), and the replay's
//! in-memory [`RootTree`] applying 5,000-key blocks to a tree of 500,000 keys.
//!
//! Run without rebuilding RocksDB in another profile (see docs/BENCHMARKS.md, "Ledger"):
//! `cargo bench --profile release -p gongzhi-ledger --bench ledger`.
//!
//! Block commits are split in the two steps a node runs: `prepare` (the Jellyfish-Merkle update
//! computed in memory) and `commit` (block checks + one fsynced RocksDB batch). Tx signing and
//! block assembly happen outside the timed part.

use std::time::{Duration, Instant};

use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};

use gongzhi_ledger::crypto::Keypair;
use gongzhi_ledger::store::testkit::{init_test_genesis, TestChain};
use gongzhi_ledger::store::RootTree;
use gongzhi_ledger::tx::verify_txs;
use gongzhi_ledger::StateChanges;
use gongzhi_ledger::{Store, Tx};

const CHAIN: &str = "gongzhi-bench";

/// `n` txs from 64 distinct signers with ~100-byte calls.
fn signed_txs(n: usize) -> Vec<Tx> {
    let keys: Vec<Keypair> = (0..64u8).map(|i| Keypair::from_secret([i; 32])).collect();
    (0..n)
        .map(|i| {
            Tx::sign(
                &keys[i % keys.len()],
                CHAIN,
                i as u64 + 1,
                vec![(i % 251) as u8; 100],
            )
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("tx_signature");
    let txs = signed_txs(1024);
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_single", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % txs.len();
            black_box(txs[i].verify(CHAIN)).is_ok()
        })
    });
    for n in [64usize, 1024] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("verify_batch", n),
            &txs[..n],
            |b, batch| b.iter(|| black_box(verify_txs(CHAIN, batch)).is_ok()),
        );
    }
    group.finish();
}

/// Time `prepare` or `commit` of successive blocks on one growing store.
fn block_step(txs_per_block: usize, time_prepare: bool, iters: u64) -> Duration {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let store = match Store::open(dir.path()) {
        Ok(store) => store,
        Err(e) => panic!("open: {e}"),
    };
    if let Err(e) = init_test_genesis(&store) {
        panic!("genesis: {e}");
    }
    let mut chain = TestChain::new(txs_per_block, 2, 10_000_000);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let height = chain.height() + 1;
        let changes = chain.changes(height);
        let txs = chain.txs(height);
        let started = Instant::now();
        let prepared = match store.prepare(&changes) {
            Ok(p) => p,
            Err(e) => panic!("prepare: {e}"),
        };
        if time_prepare {
            total += started.elapsed();
        }
        let built = chain.next_block_with_txs(txs, prepared.root());
        let started = Instant::now();
        if let Err(e) = store.commit(&built.block, &built.certificate, &built.receipts, prepared) {
            panic!("commit: {e}");
        }
        if !time_prepare {
            total += started.elapsed();
        }
    }
    total
}

fn block_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("block");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for txs in [1_000usize, 10_000] {
        group.throughput(Throughput::Elements(txs as u64));
        group.bench_function(BenchmarkId::new("prepare", txs), |b| {
            b.iter_custom(|iters| block_step(txs, true, iters))
        });
        group.bench_function(BenchmarkId::new("commit", txs), |b| {
            b.iter_custom(|iters| block_step(txs, false, iters))
        });
    }
    group.finish();
}

/// 5,000 keys of ~40 bytes with ~60-byte values, the `block`-th batch of a key space.
fn root_tree_block(block: u64) -> StateChanges {
    (0..5_000u64)
        .map(|i| {
            let n = block * 5_000 + i;
            let key = format!("bench/list/owner-{}/{n:016x}", n % 97).into_bytes();
            (key, Some(vec![(n % 251) as u8; 60]))
        })
        .collect()
}

fn root_tree(c: &mut Criterion) {
    let mut group = c.benchmark_group("root_tree");
    group.sample_size(20);
    group.throughput(Throughput::Elements(5_000));
    let mut tree = RootTree::new();
    for block in 0..100 {
        tree.apply(&root_tree_block(block));
    }
    // Overwrite existing keys (the tree keeps its size), one block per iteration.
    let blocks: Vec<StateChanges> = (0..100).map(root_tree_block).collect();
    let mut next = 0;
    group.bench_function("apply_5000_keys_to_500k", |b| {
        b.iter(|| {
            next = (next + 1) % blocks.len();
            black_box(tree.apply(&blocks[next]))
        })
    });
    group.finish();
}

criterion_group!(benches, signatures, block_commit, root_tree);
criterion_main!(benches);
