//! `gongzhi audit bench`: how fast a replay verifies a large chain, next to how fast this
//! machine batch-verifies ed25519 signatures on the same cores.
//!
//! The chain is real: a genesis of validators, dataset owners, grantees and issuers; txs are
//! signed grant issues and civility awards (half each), executed by the node's [`Chain`]
//! into blocks with signed commit certificates, exported with [`export_store`] and replayed with
//! [`replay_file`]. Signature checking is the only cost that should show: the figure of merit is
//! replay txs/s divided by the batch-verify rate measured in the same run on the same threads
//! (the mean of a measurement just before the replay and one just after, so that the machine's
//! speed drifting during the run moves both sides).
//! That yardstick is the stock one, ed25519-dalek's `verify_batch`; the replay checks with
//! Gongzhi's verifier (the same equation, each signer's terms added up first), whose rate on
//! the same batches is reported beside it, with the replay's ratio to it.
//!
//! [`Chain`]: crate::chain::Chain

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gongzhi_contracts::grants::lifecycle::NewGrant;
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{
    Call, DatasetId, Genesis, GenesisOrg, GenesisPurpose, GenesisReason, OrgId, PurposeCode,
    ReasonCode,
};
use gongzhi_ledger::crypto::{signing_message, verify_batch, SignedMessage};
use gongzhi_ledger::{Keypair, Timestamp, Tx};

use super::export::export_store;
use super::fixture::{operator_key, resident, validator_key, FixtureChain, GENESIS_TIME};
use super::progress::Progress;
use super::replay::{replay_file, NoObserver, ReplayOptions, ReplaySummary};

const OWNERS: usize = 8;
const GRANTEES: usize = 8;
const ISSUERS: usize = 8;
const DATASETS_PER_OWNER: usize = 25;
const RESIDENTS: u32 = 10_000;

/// What to build and measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Txs in the chain (besides the dataset registrations).
    pub txs: u64,
    /// Txs per block.
    pub block_txs: usize,
    /// Threads (0 = one per core).
    pub threads: usize,
    /// Working directory (a temp dir when `None`); deleted afterwards unless `keep`.
    pub dir: Option<PathBuf>,
    /// Keep the chain and the export.
    pub keep: bool,
    /// Print progress lines.
    pub progress: bool,
}

/// Figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// Threads (cores) used for verification.
    pub threads: usize,
    /// Txs in the chain.
    pub txs: u64,
    /// Blocks in the chain.
    pub blocks: u64,
    /// Seconds to build (sign, execute, commit) the chain.
    pub build_seconds: f64,
    /// Seconds to export it.
    pub export_seconds: f64,
    /// Export size in bytes.
    pub export_bytes: u64,
    /// Stock ed25519 batch verification (ed25519-dalek's) on `threads` threads, signatures
    /// per second: the yardstick. The mean of the two measurements, just before and just after
    /// the replay, so that a change of the machine's speed during the run (a VM's neighbours)
    /// moves the yardstick with the replay rather than only one of them.
    pub batch_verify_per_second: f64,
    /// The stock rate measured just before the replay.
    pub batch_verify_before: f64,
    /// The stock rate measured just after the replay.
    pub batch_verify_after: f64,
    /// The same on one thread.
    pub batch_verify_per_second_one_thread: f64,
    /// Gongzhi's batch verification (the replay's) of the same batches on `threads` threads.
    pub own_verify_per_second: f64,
    /// The replay.
    pub replay: ReplaySummary,
    /// Replay signatures/s over the stock batch-verify rate.
    pub ratio: f64,
    /// Replay signatures/s over Gongzhi's own batch-verify rate.
    pub ratio_to_own_verifier: f64,
}

/// The bench genesis: 4 validators, 8 dataset owners, 8 grantees, 8 issuers with no quota limit.
pub fn bench_genesis() -> Genesis {
    let mut organisations = Vec::new();
    let mut org =
        |id: String, kind: &str, roles: &[&str], power: Option<u64>, quota: Option<u64>| {
            organisations.push(GenesisOrg {
                name: format!("{id} (bench)"),
                kind: kind.into(),
                roles: roles.iter().map(|r| (*r).to_string()).collect(),
                operator_keys: vec![operator_key(&id).public().to_hex()],
                node_keys: Vec::new(),
                validator_key: power.map(|_| validator_key(&id).public().to_hex()),
                power,
                issuer_quota: quota,
                id,
            });
        };
    for i in 0..4 {
        org(
            format!("validator-{i}"),
            "street-office",
            &["validator", "member"],
            Some(1),
            None,
        );
    }
    for i in 0..OWNERS {
        org(
            format!("owner-{i}"),
            "city-department",
            &["member"],
            None,
            None,
        );
    }
    for i in 0..GRANTEES {
        org(
            format!("grantee-{i}"),
            "city-department",
            &["member"],
            None,
            None,
        );
    }
    for i in 0..ISSUERS {
        org(
            format!("issuer-{i}"),
            "street-office",
            &["member", "issuer"],
            None,
            Some(u64::MAX / 4),
        );
    }
    Genesis {
        chain_id: "gongzhi-audit-bench".into(),
        genesis_time: GENESIS_TIME,
        parameters: Default::default(),
        organisations,
        purposes: vec![GenesisPurpose {
            code: "statistics".into(),
            label: "Community governance statistics (社区治理统计)".into(),
        }],
        reasons: vec![GenesisReason {
            code: "volunteering".into(),
            label: "Volunteering (志愿服务)".into(),
            max_points: 20,
        }],
    }
}

fn dataset(owner: usize, n: usize) -> DatasetId {
    DatasetId(format!("owner-{owner}-data-{n}"))
}

/// The i-th synthetic call and its signer: even i a grant, odd i an award.
fn synthetic_call(i: u64, now: Timestamp) -> (String, Call) {
    let lane = (i / 2) as usize;
    if i & 1 == 0 {
        let owner = lane % OWNERS;
        let call = Call::IssueGrant(NewGrant {
            grantee: OrgId(format!("grantee-{}", (lane / OWNERS) % GRANTEES)),
            dataset: dataset(owner, (lane / (OWNERS * GRANTEES)) % DATASETS_PER_OWNER),
            fields: vec!["score".into()],
            purposes: vec![PurposeCode("statistics".into())],
            valid_from: now,
            valid_until: now.plus_millis(365 * 24 * 3_600_000),
            terms: GrantTerms::default(),
            parent: None,
        });
        (format!("owner-{owner}"), call)
    } else {
        let call = Call::Award {
            resident: resident((lane as u32) % RESIDENTS),
            reason: ReasonCode("volunteering".into()),
            points: 1 + (i % 5),
        };
        (format!("issuer-{}", lane % ISSUERS), call)
    }
}

/// Sign `calls` (with nonces already assigned) on `threads` threads, keeping their order.
fn sign_parallel(chain_id: &str, calls: Vec<(Keypair, u64, Call)>, threads: usize) -> Vec<Tx> {
    let chunk = calls.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = calls
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(k, n, c)| c.sign(k, chain_id, *n))
                        .collect::<Vec<Tx>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Build the synthetic chain in `data_dir`.
fn build_chain(data_dir: &Path, options: &BenchOptions, threads: usize) -> Result<FixtureChain> {
    let genesis = bench_genesis();
    let keys = (0..4)
        .map(|i| validator_key(&format!("validator-{i}")))
        .collect();
    let mut chain = FixtureChain::with_validator_keys(data_dir, genesis, keys)?;
    chain.block_interval_ms = 1000;
    let mut registrations = Vec::new();
    for owner in 0..OWNERS {
        for n in 0..DATASETS_PER_OWNER {
            let call = Call::RegisterDataset {
                id: dataset(owner, n),
                name: format!("Dataset {n} of owner {owner}"),
                fields: vec![FieldSpec {
                    name: "score".into(),
                    sensitivity: Sensitivity::Public,
                }],
            };
            registrations.push(chain.tx(&format!("owner-{owner}"), &call));
        }
    }
    chain.commit_block(registrations)?;
    let mut progress = Progress::new(options.progress);
    progress.start("build", options.txs.div_ceil(options.block_txs as u64));
    let chain_id = chain.genesis().chain_id.clone();
    let mut done = 0u64;
    let mut blocks = 0u64;
    while done < options.txs {
        let count = (options.txs - done).min(options.block_txs as u64);
        let now = chain.now();
        let calls: Vec<(Keypair, u64, Call)> = (done..done + count)
            .map(|i| {
                let (org, call) = synthetic_call(i, now);
                let key = operator_key(&org);
                let nonce = chain.reserve_nonce(&key);
                (key, nonce, call)
            })
            .collect();
        let txs = sign_parallel(&chain_id, calls, threads);
        let committed = chain.commit_block(txs)?;
        if let Some((index, receipt)) = committed
            .receipts
            .iter()
            .enumerate()
            .find(|(_, r)| !r.is_success())
        {
            anyhow::bail!(
                "bench tx #{index} of block {} failed: {receipt:?}",
                committed.block.header.height
            );
        }
        done += count;
        blocks += 1;
        progress.tick(blocks, done);
    }
    progress.finish(blocks, done);
    Ok(chain)
}

/// Which batch verification [`batch_verify_rate`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    /// ed25519-dalek's `verify_batch`, keys decompressed beforehand: this machine's stock
    /// ed25519 batch-verification rate, the yardstick.
    Stock,
    /// Gongzhi's [`verify_batch`], which the replay uses: dalek's equation with each signer's
    /// terms added up first (`gongzhi_ledger::ed25519_batch`).
    Gongzhi,
}

/// ed25519 batch verification rate (signatures/s) with `verifier` on `threads` threads, in
/// batches of `batch` tx-sized messages signed by 64 keys, over about `duration`.
pub fn batch_verify_rate(
    verifier: Verifier,
    threads: usize,
    batch: usize,
    duration: Duration,
) -> f64 {
    let keys: Vec<Keypair> = (0..64u8)
        .map(|i| Keypair::from_secret([i.wrapping_add(1); 32]))
        .collect();
    let items: Vec<SignedMessage> = (0..batch)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let body: Vec<u8> = (0..160).map(|b| (b as usize ^ i) as u8).collect();
            SignedMessage {
                signer: key.public(),
                message: signing_message("gongzhi-audit-bench", "gongzhi/tx/v1", &body),
                signature: key.sign("gongzhi-audit-bench", "gongzhi/tx/v1", &body),
            }
        })
        .collect();
    let messages: Vec<&[u8]> = items.iter().map(|item| item.message.as_slice()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = items
        .iter()
        .map(|item| ed25519_dalek::Signature::from_bytes(&item.signature.0))
        .collect();
    let stock_keys: Vec<ed25519_dalek::VerifyingKey> = items
        .iter()
        .filter_map(|item| ed25519_dalek::VerifyingKey::from_bytes(&item.signer.0).ok())
        .collect();
    let check = || match verifier {
        Verifier::Stock => ed25519_dalek::verify_batch(&messages, &signatures, &stock_keys).is_ok(),
        Verifier::Gongzhi => verify_batch(&items).is_ok(),
    };
    let started = Instant::now();
    let verified: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let check = &check;
                scope.spawn(move || {
                    let mut count = 0u64;
                    while started.elapsed() < duration {
                        if check() {
                            count += batch as u64;
                        }
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    verified as f64 / started.elapsed().as_secs_f64()
}

/// Build, export and replay a synthetic chain; measure the batch-verify rate alongside.
pub fn run(options: &BenchOptions) -> Result<BenchResult> {
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("gongzhi-audit-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(&dir, options, threads);
    if !options.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(dir: &Path, options: &BenchOptions, threads: usize) -> Result<BenchResult> {
    let started = Instant::now();
    let chain = build_chain(&dir.join("chain"), options, threads)?;
    let build_seconds = started.elapsed().as_secs_f64();
    let blocks = chain.chain().height();
    let out = dir.join("chain.gzaudit");
    let export = export_store(
        chain.chain().store(),
        chain.genesis(),
        Path::new("<bench genesis>"),
        &out,
        &mut Progress::new(options.progress),
    )?;
    drop(chain);
    let batch = options.block_txs.max(64);
    let one = batch_verify_rate(Verifier::Stock, 1, batch, Duration::from_secs(3));
    let ours = batch_verify_rate(Verifier::Gongzhi, threads, batch, Duration::from_secs(3));
    let before = batch_verify_rate(Verifier::Stock, threads, batch, Duration::from_secs(3));
    let replay = replay_file(
        &out,
        &ReplayOptions {
            threads,
            progress: options.progress,
            trusted_genesis: None,
        },
        &mut NoObserver,
    )?;
    let after = batch_verify_rate(Verifier::Stock, threads, batch, Duration::from_secs(3));
    let all = (before + after) / 2.0;
    let replay_rate = replay.signatures as f64 / replay.seconds.max(1e-9);
    let ratio = replay_rate / all.max(1e-9);
    let ratio_to_own_verifier = replay_rate / ours.max(1e-9);
    Ok(BenchResult {
        threads,
        txs: replay.txs,
        blocks,
        build_seconds,
        export_seconds: export.seconds,
        export_bytes: export.bytes,
        batch_verify_per_second: all,
        batch_verify_before: before,
        batch_verify_after: after,
        batch_verify_per_second_one_thread: one,
        own_verify_per_second: ours,
        replay,
        ratio,
        ratio_to_own_verifier,
    })
}

impl BenchResult {
    /// The figures as a text table.
    pub fn to_table(&self) -> String {
        let r = &self.replay;
        format!(
            "audit bench: {} txs in {} blocks, {} threads\n\
             \x20 build (sign, execute, commit)   {:>10.1} s\n\
             \x20 export                          {:>10.1} s  {:.1} MB\n\
             \x20 ed25519 batch verify, 1 thread  {:>10.0} sig/s  (ed25519-dalek's verify_batch)\n\
             \x20 ed25519 batch verify, {} threads {:>10.0} sig/s  (ed25519-dalek's verify_batch; \
             {:.0} before the replay, {:.0} after)\n\
             \x20 same batches, gongzhi verifier {:>10.0} sig/s  (terms per signer added up)\n\
             \x20 replay                          {:>10.1} s  {:.0} txs/s, {:.0} sig/s\n\
             \x20 replay / batch-verify rate      {:>10.1} %  ({:.1} % of gongzhi's verifier)\n\
             \x20 executor (sequential): execution {:.1} s, state root {:.1} s, waiting for checks {:.1} s\n",
            self.txs,
            self.blocks,
            self.threads,
            self.build_seconds,
            self.export_seconds,
            self.export_bytes as f64 / 1e6,
            self.batch_verify_per_second_one_thread,
            self.threads,
            self.batch_verify_per_second,
            self.batch_verify_before,
            self.batch_verify_after,
            self.own_verify_per_second,
            r.seconds,
            r.txs_per_second,
            r.signatures as f64 / r.seconds.max(1e-9),
            self.ratio * 100.0,
            self.ratio_to_own_verifier * 100.0,
            r.executor.execution,
            r.executor.state_root,
            r.executor.waiting_for_checks
        )
    }
}
