//! `gongzhi devnet bench`: a load generator over a fresh devnet of real node processes.
//!
//! One run: create a devnet whose genesis gives the load many signers ([`workload`]), tune
//! the nodes' block limits, start them, set up the datasets and grants the load needs (through
//! consensus, untimed), sign txs ahead, drive the load over gRPC for a warm-up and a measured
//! window ([`load`]), and report committed tx/s, submit→commit latency percentiles,
//! blocks/s and bytes/s ([`report`]).
//!
//! Invariant: every node process the run starts is stopped before [`run`] returns, whether
//! it succeeds, fails or is interrupted (and [`crate::process::NodeProcess`] kills its child
//! on drop should anything unwind).

pub mod load;
pub mod report;
pub mod steps;
pub mod workload;
pub mod yardstick;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gongzhi_ledger::Timestamp;

use crate::client::GrpcSubmitter;
use crate::network::{Devnet, DevnetOptions};
pub use report::{parse_duration, BenchReport};

/// Offered load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// As fast as the nodes accept (backing off on `RESOURCE_EXHAUSTED`).
    Max,
    /// This many txs per second, paced.
    PerSecond(u64),
}

/// Txs per submit call by default: a client with many txs to send batches them, and one call
/// for 16 txs costs the node far less than 16 calls (docs/BENCHMARKS.md, session 14).
pub const DEFAULT_SUBMIT_BATCH: usize = 16;

/// How to run a bench.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The `gongzhi` binary the nodes run.
    pub binary: PathBuf,
    /// Devnet directory (must not hold a devnet); `None`: a new temporary directory.
    pub dir: Option<PathBuf>,
    /// Keep the directory (keys, logs, chain) afterwards.
    pub keep: bool,
    /// Validators.
    pub validators: usize,
    /// Measured window.
    pub duration: Duration,
    /// Load before the window (not measured).
    pub warmup: Duration,
    /// Offered rate.
    pub rate: Rate,
    /// Extra operator keys per issuer and grantee organisation.
    pub signers_per_org: usize,
    /// Concurrent submitting tasks.
    pub concurrency: usize,
    /// Most txs per submit call at `--rate max` (1: one `SubmitTx` call per tx).
    pub submit_batch: usize,
    /// Send each signer's txs to one validator instead of spreading calls over all.
    pub route_by_signer: bool,
    /// Most txs submitted and not yet committed.
    pub max_inflight: usize,
    /// The nodes' `[consensus] max_block_txs`.
    pub max_block_txs: usize,
    /// The nodes' `[consensus] max_block_bytes`.
    pub max_block_bytes: usize,
    /// The nodes' `[consensus] min_block_interval_ms` (`None`: the node's default).
    pub min_block_interval: Option<Duration>,
    /// The nodes' `[p2p] tx_gossip_interval_ms` (`None`: the node's default).
    pub tx_gossip_interval: Option<Duration>,
    /// How long to wait after the window for its txs to commit.
    pub drain: Duration,
}

impl BenchOptions {
    /// Defaults for `binary`: 4 validators, 60 s after a 10 s warm-up, `max`.
    pub fn new(binary: PathBuf) -> BenchOptions {
        BenchOptions {
            binary,
            dir: None,
            keep: false,
            validators: 4,
            duration: Duration::from_secs(60),
            warmup: Duration::from_secs(10),
            rate: Rate::Max,
            signers_per_org: 64,
            concurrency: 256,
            submit_batch: DEFAULT_SUBMIT_BATCH,
            route_by_signer: false,
            // Past ~2,000 pending txs per block, blocks outgrow the 3 s propose timeout on 2
            // cores and rounds fail (see docs/BENCHMARKS.md); the mempool pushes back only
            // at 100,000, so the bench bounds what it keeps in flight.
            max_inflight: 2_000,
            max_block_txs: 2_000,
            // Below the 4 MiB gossip message limit, so a full block's proposal can travel.
            max_block_bytes: 3 * 1024 * 1024,
            min_block_interval: None,
            tx_gossip_interval: None,
            drain: Duration::from_secs(30),
        }
    }
}

const CHAIN_ID: &str = "gongzhi-bench";
const SEED: &str = "gongzhi-bench";

/// Rewrite a node's `config.toml` with the bench's block limits and intervals.
fn tune_config(home: &std::path::Path, options: &BenchOptions) -> Result<()> {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path)?;
    let mut config: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let millis = |d: std::time::Duration| i64::try_from(d.as_millis());
    set(
        &mut config,
        "consensus",
        "max_block_txs",
        i64::try_from(options.max_block_txs)?,
    );
    set(
        &mut config,
        "consensus",
        "max_block_bytes",
        i64::try_from(options.max_block_bytes)?,
    );
    if let Some(interval) = options.min_block_interval {
        set(
            &mut config,
            "consensus",
            "min_block_interval_ms",
            millis(interval)?,
        );
    }
    if let Some(interval) = options.tx_gossip_interval {
        set(
            &mut config,
            "p2p",
            "tx_gossip_interval_ms",
            millis(interval)?,
        );
    }
    std::fs::write(&path, toml::to_string_pretty(&config)?)?;
    Ok(())
}

/// Set `[table] key = value` in `config`, keeping the table's other entries.
fn set(config: &mut toml::Table, table: &str, key: &str, value: i64) {
    let entry = config
        .entry(table)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    if let Some(entries) = entry.as_table_mut() {
        entries.insert(key.into(), toml::Value::Integer(value));
    }
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("gongzhi-bench-{}-{nanos}", std::process::id()))
}

/// Run a bench. `progress` receives one line per phase; `interrupted` (set by a Ctrl-C
/// handler) ends the load early. Every node is stopped before this returns.
pub fn run(
    options: &BenchOptions,
    interrupted: Arc<AtomicBool>,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport> {
    if options.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let temporary = options.dir.is_none();
    let dir = options.dir.clone().unwrap_or_else(temp_dir);
    let genesis = workload::bench_genesis(
        CHAIN_ID,
        SEED,
        options.validators,
        options.signers_per_org,
        now(),
    );
    progress(&format!(
        "creating a {}-validator devnet in {}",
        options.validators,
        dir.display()
    ));
    let mut devnet = Devnet::create_with_genesis(
        &DevnetOptions {
            dir: dir.clone(),
            validators: options.validators,
            chain_id: CHAIN_ID.into(),
            seed: SEED.into(),
            binary: options.binary.clone(),
            empty_block_interval_ms: 1000,
            timeout_propose_ms: 0, // the node defaults (3 s): big blocks take time to execute
            observers: 0,
        },
        genesis,
    )?;
    for node in &devnet.record.nodes {
        tune_config(&node.home, options)?;
    }
    let speed_before = yardstick::verifies_per_second(yardstick::MEASURE_FOR);
    devnet.start_all()?;
    let pids: Vec<u32> = devnet.nodes.iter().filter_map(|n| n.pid()).collect();
    for node in &devnet.nodes {
        progress(&format!(
            "node{} pid {} api {} metrics {} log {}",
            node.index,
            node.pid().unwrap_or(0),
            node.rpc_addr,
            node.metrics_addr,
            node.log_path().display()
        ));
    }
    let result = drive(&mut devnet, options, interrupted, progress);
    progress("stopping nodes");
    let stopped = devnet.stop_all(Duration::from_secs(10));
    let speed_after = yardstick::verifies_per_second(yardstick::MEASURE_FOR);
    let outcome = result.and_then(|outcome| stopped.map(|()| outcome));
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            return Err(e.context(format!(
                "bench failed; node logs are in {}/node*/node.log",
                dir.display()
            )))
        }
    };
    if temporary && !options.keep {
        drop(devnet);
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(BenchReport {
        validators: options.validators,
        rate: options.rate,
        duration: options.duration,
        warmup: options.warmup,
        signers: workload_signers(options),
        concurrency: options.concurrency,
        submit_batch: options.submit_batch,
        route_by_signer: options.route_by_signer,
        max_block_txs: options.max_block_txs,
        min_block_interval: options.min_block_interval,
        tx_gossip_interval: options.tx_gossip_interval,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        load_average: load_average(),
        node_pids: pids,
        dir,
        machine_speed: (speed_before, speed_after),
        outcome,
    })
}

fn workload_signers(options: &BenchOptions) -> usize {
    (workload::issuer_orgs(options.validators).len() + 2) * options.signers_per_org
}

fn drive(
    devnet: &mut Devnet,
    options: &BenchOptions,
    interrupted: Arc<AtomicBool>,
    progress: &mut dyn FnMut(&str),
) -> Result<load::LoadOutcome> {
    devnet.wait_ready(Duration::from_secs(120))?;
    progress("all nodes answer; registering the bench datasets and grants (untimed)");
    let client = devnet.client(0, Duration::from_secs(10))?;
    let mut submitter = GrpcSubmitter::new(client, CHAIN_ID, devnet.operator_keys());
    let grants = workload::setup(&mut submitter, options.validators)?;
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    let mut status = devnet.client(0, Duration::from_secs(10))?;
    let tip = status.status()?;
    let mut workload = workload::Workload::new(
        CHAIN_ID,
        SEED,
        options.validators,
        options.signers_per_org,
        grants,
        Timestamp(tip.latest_block_time_ms),
    )?;
    let total = options.warmup + options.duration;
    let presign = match options.rate {
        Rate::PerSecond(rate) => (rate as f64 * total.as_secs_f64() * 1.02) as usize,
        // Enough for 6,000 tx/s; past that the workers sign as they go (on the cores the
        // nodes are measured on).
        Rate::Max => (6000.0 * total.as_secs_f64()) as usize,
    }
    .min(2_000_000);
    let signing = Instant::now();
    workload.presign(
        presign,
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    progress(&format!(
        "signed {} txs from {} signers in {:.1} s; load for {:.0} s warm-up + {:.0} s measured",
        workload.presigned_left(),
        workload.signer_count(),
        signing.elapsed().as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64()
    ));
    let plan = load::LoadPlan {
        submit_to: devnet.nodes.iter().map(|n| n.rpc_addr.clone()).collect(),
        observe: devnet.nodes[0].rpc_addr.clone(),
        from_height: tip.latest_height + 1,
        rate: options.rate,
        warmup: options.warmup,
        duration: options.duration,
        concurrency: options.concurrency,
        submit_batch: options.submit_batch,
        route_by_signer: options.route_by_signer,
        max_inflight: options.max_inflight,
        drain: options.drain,
        node_pids: devnet.nodes.iter().filter_map(|n| n.pid()).collect(),
        node_metrics: devnet
            .nodes
            .iter()
            .map(|n| n.metrics_addr.clone())
            .collect(),
        receipt_sample: 200,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(load::run(plan, workload, interrupted))?;
    let mut heights = Vec::new();
    for index in 0..devnet.nodes.len() {
        heights.push(devnet.height(index).unwrap_or(0));
    }
    progress(&format!("load done; node heights {heights:?}"));
    Ok(outcome)
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's block limits, and the block and gossip intervals only when asked for,
    /// reach the nodes' config; the rest of the config is kept.
    #[test]
    fn tune_config_writes_the_block_settings() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let home = dir.path();
        let config = home.join("config.toml");
        let read_consensus = || -> Result<toml::Table> {
            let table: toml::Table = std::fs::read_to_string(&config)?.parse()?;
            table
                .get("consensus")
                .and_then(toml::Value::as_table)
                .cloned()
                .context("no [consensus] table")
        };
        std::fs::write(
            &config,
            "[consensus]\ntimeout_propose_ms = 3000\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\n",
        )?;
        let mut options = BenchOptions::new(PathBuf::from("gongzhi"));
        tune_config(home, &options)?;
        let consensus = read_consensus()?;
        assert_eq!(
            consensus.get("max_block_txs"),
            Some(&toml::Value::Integer(2_000))
        );
        assert_eq!(
            consensus.get("timeout_propose_ms"),
            Some(&toml::Value::Integer(3_000))
        );
        assert_eq!(consensus.get("min_block_interval_ms"), None);

        options.min_block_interval = Some(Duration::from_millis(30));
        tune_config(home, &options)?;
        assert_eq!(
            read_consensus()?.get("min_block_interval_ms"),
            Some(&toml::Value::Integer(30))
        );
        options.tx_gossip_interval = Some(Duration::from_millis(20));
        tune_config(home, &options)?;
        let text = std::fs::read_to_string(home.join("config.toml"))?;
        let config: toml::Table = text.parse()?;
        let p2p = config.get("p2p").and_then(toml::Value::as_table);
        assert_eq!(
            p2p.and_then(|p2p| p2p.get("tx_gossip_interval_ms")),
            Some(&toml::Value::Integer(20))
        );
        assert!(
            p2p.and_then(|p2p| p2p.get("listen")).is_some(),
            "the rest of [p2p] is kept"
        );
        Ok(())
    }
}
