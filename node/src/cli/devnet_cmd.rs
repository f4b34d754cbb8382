//! `gongzhi devnet …`: local networks of real node processes.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;
use gongzhi_devnet::bench::{self, BenchOptions, Rate};
use gongzhi_devnet::{Devnet, DevnetOptions};

/// Devnet operations.
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Create (or reopen) a devnet, start its nodes, seed the demo district, show live status
    /// until Ctrl-C, then stop the nodes cleanly.
    #[command(after_help = "Example:\n  gongzhi devnet up --validators 4 --dir ./.devnet --fresh")]
    Up {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Directory for keys, genesis, node homes and logs.
        #[arg(long, default_value = ".devnet")]
        dir: PathBuf,
        /// Delete the directory first and start a new chain.
        #[arg(long)]
        fresh: bool,
        /// Chain id of a new devnet.
        #[arg(long, default_value = "gongzhi-devnet")]
        chain_id: String,
        /// Also run the audit bureau's observer node (follows the chain, never votes).
        #[arg(long)]
        observer: bool,
        /// Stop after this many seconds instead of waiting for Ctrl-C.
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Load-test a fresh devnet: sign grant and civility txs from many signers, submit them to
    /// every validator over gRPC, and report committed tx/s, submit→commit latency (p50, p99),
    /// blocks/s and bytes/s as a table. Every node is stopped at the end (also on Ctrl-C).
    #[command(after_help = "Examples:\n  \
        gongzhi devnet bench --validators 4 --duration 60s --rate max\n  \
        gongzhi devnet bench --validators 4 --duration 30s --warmup 5s --rate 1000\n\n\
        The devnet lives in a temporary directory removed afterwards; pass --dir DIR --keep to \
        keep its logs and chain.")]
    Bench(BenchArgs),
}

/// `gongzhi devnet bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Measured window (e.g. 60s, 2m, 500ms).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Load before the measured window, not counted.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    warmup: Duration,
    /// Offered load: tx/s, or `max` for as fast as the nodes accept.
    #[arg(long, default_value = "max")]
    rate: Rate,
    /// Directory for the devnet (must not hold one); default: a temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the devnet directory (keys, chain, node logs) afterwards.
    #[arg(long)]
    keep: bool,
    /// Extra operator keys per issuer and grantee organisation (the load's signers).
    #[arg(long, default_value_t = 64)]
    signers_per_org: usize,
    /// Concurrent submit requests.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Most txs per submit call at `--rate max` (one `SubmitTxs` call; 1: one `SubmitTx` call
    /// per tx, at most 1,000). A call takes only the txs that may go now, never waits for more.
    #[arg(long, default_value_t = gongzhi_devnet::bench::DEFAULT_SUBMIT_BATCH)]
    submit_batch: usize,
    /// Send each signer's txs to one validator (signer number mod validators), as an agency's
    /// application sends to its own node, instead of spreading calls over all validators.
    #[arg(long)]
    route_by_signer: bool,
    /// Most txs submitted and not yet seen committed (the nodes' mempools only push back at
    /// 100,000, far past the point where blocks outgrow the propose timeout).
    #[arg(long, default_value_t = 2_000)]
    max_inflight: usize,
    /// The nodes' `[consensus] max_block_txs`.
    #[arg(long, default_value_t = 2_000)]
    max_block_txs: usize,
    /// The nodes' `[consensus] min_block_interval_ms` (e.g. 50ms; default: the node's, 100 ms):
    /// shorter makes smaller, more frequent blocks.
    #[arg(long, value_parser = parse_duration)]
    min_block_interval: Option<Duration>,
    /// The nodes' `[p2p] tx_gossip_interval_ms` (e.g. 50ms; default: the node's, 10 ms):
    /// how long a node gathers accepted txs before gossiping them as one batch.
    #[arg(long, value_parser = parse_duration)]
    tx_gossip_interval: Option<Duration>,
    /// How long to wait after the window for its txs to commit.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain: Duration,
}

fn parse_duration(text: &str) -> Result<Duration> {
    gongzhi_devnet::bench::parse_duration(text)
}

fn binary() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the gongzhi binary")
}

/// Scrape one counter from a node's metrics endpoint.
fn metric(addr: &str, name: &str) -> Option<u64> {
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix(&format!("gongzhi_{name} "))?
            .trim()
            .parse()
            .ok()
    })
}

/// Run a devnet subcommand.
pub fn run(command: DevnetCommand) -> Result<()> {
    match command {
        DevnetCommand::Up {
            validators,
            dir,
            fresh,
            chain_id,
            observer,
            duration_secs,
        } => {
            let binary = binary()?;
            if fresh && dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
            let mut devnet = if dir.join("devnet.toml").exists() {
                println!("reopening the devnet in {}", dir.display());
                Devnet::open(&dir, &binary)?
            } else {
                println!(
                    "creating a {validators}-validator devnet in {}",
                    dir.display()
                );
                Devnet::create(&DevnetOptions {
                    dir: dir.clone(),
                    validators,
                    chain_id,
                    seed: "gongzhi-devnet".into(),
                    binary: binary.clone(),
                    empty_block_interval_ms: 2000,
                    timeout_propose_ms: 1500,
                    observers: usize::from(observer),
                })?
            };
            let stop = Arc::new(AtomicBool::new(false));
            {
                let stop = stop.clone();
                ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
                    .context("cannot install the Ctrl-C handler")?;
            }
            devnet.start_all()?;
            for node in &devnet.nodes {
                println!(
                    "  node{} ({}) api {}  metrics {}  log {}",
                    node.index,
                    devnet.record.nodes[node.index].org,
                    node.rpc_addr,
                    node.metrics_addr,
                    node.log_path().display()
                );
            }
            let result = serve(&mut devnet, &stop, duration_secs);
            println!("\nstopping nodes…");
            devnet.stop_all(Duration::from_secs(10))?;
            println!(
                "stopped. Data kept in {} (reopen with the same command without --fresh).",
                dir.display()
            );
            result
        }
        DevnetCommand::Bench(args) => run_bench(args),
    }
}

fn run_bench(args: BenchArgs) -> Result<()> {
    let options = BenchOptions {
        dir: args.dir,
        keep: args.keep,
        validators: args.validators,
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        signers_per_org: args.signers_per_org,
        concurrency: args.concurrency,
        submit_batch: args.submit_batch,
        route_by_signer: args.route_by_signer,
        max_inflight: args.max_inflight,
        max_block_txs: args.max_block_txs,
        min_block_interval: args.min_block_interval,
        tx_gossip_interval: args.tx_gossip_interval,
        drain: args.drain,
        ..BenchOptions::new(binary()?)
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
    let report = bench::run(&options, interrupted, &mut |line| println!("  {line}"))?;
    println!();
    print!("{report}");
    if report.outcome.committed_txs == 0 {
        anyhow::bail!("no tx committed in the measured window; see the node logs");
    }
    Ok(())
}

fn serve(devnet: &mut Devnet, stop: &AtomicBool, duration_secs: Option<u64>) -> Result<()> {
    devnet.wait_ready(Duration::from_secs(120))?;
    println!("all nodes answer; seeding the demo district…");
    for line in devnet.seed(0)? {
        println!("  [h{:>4}] {}", line.height, line.text);
    }
    println!("live status (Ctrl-C to stop):");
    let started = Instant::now();
    let metrics_addr = devnet.nodes[0].metrics_addr.clone();
    let mut last = (
        Instant::now(),
        metric(&metrics_addr, "committed_txs_total").unwrap_or(0),
    );
    while !stop.load(Ordering::SeqCst) {
        if duration_secs.is_some_and(|d| started.elapsed() >= Duration::from_secs(d)) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        let status = devnet
            .client(0, Duration::from_secs(2))
            .and_then(|mut c| c.status());
        let committed = metric(&metrics_addr, "committed_txs_total").unwrap_or(last.1);
        let rate =
            (committed.saturating_sub(last.1)) as f64 / last.0.elapsed().as_secs_f64().max(0.001);
        last = (Instant::now(), committed);
        let heights: Vec<String> = (0..devnet.nodes.len())
            .map(|i| devnet.height(i).map_or("down".into(), |h| h.to_string()))
            .collect();
        match status {
            Ok(s) => print!(
                "\r  height {:>6}  tx/s {:>8.1}  peers {}  last block {}  nodes [{}]   ",
                s.latest_height,
                rate,
                s.peers_count,
                gongzhi_ledger::Timestamp(s.latest_block_time_ms),
                heights.join(" ")
            ),
            Err(e) => print!("\r  node0 unreachable: {e}   "),
        }
        let _ = std::io::stdout().flush();
    }
    Ok(())
}
