//! The timed part of the bench: submit signed txs to every validator over gRPC and observe
//! their commits on one node's block stream.
//!
//! - Workers take the next tx of the [`Workload`], pace themselves for a fixed rate (tx `i` is
//!   due at `start + i / rate`) or go as fast as the nodes accept, and submit without waiting,
//!   rotating over the validators. `RESOURCE_EXHAUSTED` (mempool full) is backpressure: counted,
//!   backed off, and the same tx retried on the next node — never dropped while the run lasts,
//!   since a lost nonce would stall its signer.
//! - At most `max_inflight` txs are submitted and not yet seen committed; a worker waits for a
//!   commit before it submits more.
//! - The observer reads `StreamBlocks` from one node: a tx's latency is the time from its first
//!   submit attempt to the arrival of the block that holds it. Blocks, txs and bytes count when
//!   their block arrives inside the measured window; latencies count for txs first submitted
//!   inside it. After the window the observer waits (up to `drain`) for those txs to commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use gongzhi_ledger::{Block, Canonical, Hash};
use gongzhi_proto::v1::ledger_client::LedgerClient;
use gongzhi_proto::v1::{
    GetReceiptRequest, StreamBlocksRequest, SubmitTxRequest, SubmitTxsRequest,
};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::steps::{self, StepTimes};
use super::workload::{SignedTx, Workload};
use super::Rate;

/// How to drive the load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// gRPC addresses (`127.0.0.1:port`) to submit to, round-robin.
    pub submit_to: Vec<String>,
    /// gRPC address of the node whose commits are observed.
    pub observe: String,
    /// First height to observe.
    pub from_height: u64,
    /// Offered rate.
    pub rate: Rate,
    /// Load before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Concurrent submitting tasks.
    pub concurrency: usize,
    /// Most txs one submitting task sends in one `SubmitTxs` call (1: one `SubmitTx` call
    /// per tx). Only at `--rate max`; a fixed rate sends each tx when it is due.
    pub submit_batch: usize,
    /// Each signer's txs go to one validator (its number mod the validators), as an agency's
    /// application sends to its own node; otherwise each call goes to the next validator.
    pub route_by_signer: bool,
    /// Most txs submitted and not yet seen committed.
    pub max_inflight: usize,
    /// How long to wait after the window for its txs to commit.
    pub drain: Duration,
    /// Node processes whose CPU time is measured over the window.
    pub node_pids: Vec<u32>,
    /// Metrics addresses (`127.0.0.1:port`) of the nodes, for their consensus step times.
    pub node_metrics: Vec<String>,
    /// Committed txs whose receipts are read back to count failures.
    pub receipt_sample: usize,
}

/// What the load measured.
#[derive(Debug, Clone, Default)]
pub struct LoadOutcome {
    /// Length of the measured window as run (shorter when interrupted).
    pub window: Duration,
    /// Txs first submitted in the window.
    pub submitted: u64,
    /// Submit attempts answered `RESOURCE_EXHAUSTED` in the window.
    pub backpressure: u64,
    /// Txs refused for another reason in the window, by gRPC code.
    pub rejected: BTreeMap<String, u64>,
    /// One refusal message per code, to show.
    pub rejection_examples: BTreeMap<String, String>,
    /// Txs in blocks that arrived in the window.
    pub committed_txs: u64,
    /// Blocks that arrived in the window.
    pub committed_blocks: u64,
    /// Canonical bytes of those blocks.
    pub committed_bytes: u64,
    /// Largest block (txs) in the window.
    pub largest_block: u64,
    /// Submit→commit latencies of txs first submitted in the window, sorted.
    pub latencies: Vec<Duration>,
    /// Txs first submitted in the window and not seen committed by the end of the drain.
    pub uncommitted: u64,
    /// Receipts read back: (successes, failures by error name).
    pub receipts_ok: u64,
    /// Failed receipts in the sample, by error name.
    pub receipt_failures: BTreeMap<String, u64>,
    /// What all node processes used in the window, summed.
    pub nodes: ProcessUsage,
    /// What the bench process used in the window.
    pub bench: ProcessUsage,
    /// The nodes' consensus step and block execution times in the window, all nodes summed.
    pub steps: StepTimes,
    /// Whether the run was interrupted (Ctrl-C).
    pub interrupted: bool,
}

struct Shared {
    workload: Mutex<Workload>,
    /// First submit attempt of every tx not yet seen committed.
    pending: Mutex<HashMap<Hash, Instant>>,
    inflight: Semaphore,
    submit_batch: usize,
    route_by_signer: bool,
    ticket: AtomicU64,
    submitted: AtomicU64,
    backpressure: AtomicU64,
    rejected: Mutex<BTreeMap<String, (u64, String)>>,
    rate: Rate,
    start: Instant,
    window_start: Instant,
    window_end: Instant,
    interrupted: Arc<AtomicBool>,
}

impl Shared {
    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.window_end
    }

    fn stopping(&self) -> bool {
        Instant::now() >= self.window_end || self.interrupted.load(Ordering::SeqCst)
    }

    fn forget(&self, hash: &Hash) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(hash);
        self.inflight.add_permits(1);
    }
}

async fn connect(addr: &str) -> Result<LedgerClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to the node API at {addr}"))?;
    Ok(LedgerClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024))
}

async fn submit_worker(shared: Arc<Shared>, clients: Vec<LedgerClient<Channel>>, first: usize) {
    let mut node = first % clients.len();
    while !shared.stopping() {
        let mut take = 1;
        if let Rate::PerSecond(rate) = shared.rate {
            let ticket = shared.ticket.fetch_add(1, Ordering::Relaxed);
            let due = shared.start + Duration::from_secs_f64(ticket as f64 / rate as f64);
            if due >= shared.window_end {
                break;
            }
            tokio::time::sleep_until(due).await;
        }
        let permit = tokio::select! {
            permit = shared.inflight.acquire() => permit,
            () = tokio::time::sleep_until(shared.window_end) => break,
        };
        match permit {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
        if shared.rate == Rate::Max {
            // Fill the call with what may be submitted now; never wait to fill it.
            while take < shared.submit_batch {
                match shared.inflight.try_acquire() {
                    Ok(permit) => permit.forget(),
                    Err(_) => break,
                }
                take += 1;
            }
        }
        let txs: Vec<SignedTx> = {
            let mut workload = shared
                .workload
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (0..take).map(|_| workload.next_tx()).collect()
        };
        let first_attempt = Instant::now();
        {
            let mut pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for tx in &txs {
                pending.insert(tx.hash, first_attempt);
            }
        }
        let counted = shared.in_window(first_attempt);
        if counted {
            shared
                .submitted
                .fetch_add(txs.len() as u64, Ordering::Relaxed);
        }
        if shared.route_by_signer {
            let mut by_node: BTreeMap<usize, Vec<SignedTx>> = BTreeMap::new();
            for tx in txs {
                by_node
                    .entry(tx.signer % clients.len())
                    .or_default()
                    .push(tx);
            }
            for (target, group) in by_node {
                submit_until_answered(&shared, &clients, || target, group, counted).await;
            }
        } else {
            let next_node = || {
                let this = node;
                node = (node + 1) % clients.len();
                this
            };
            submit_until_answered(&shared, &clients, next_node, txs, counted).await;
        }
    }
}

/// Submit `txs`, each call to the node `pick` names, until each is admitted, refused for
/// good, or the run stops: a tx refused with `RESOURCE_EXHAUSTED` or `UNAVAILABLE` is retried
/// after a backoff.
async fn submit_until_answered(
    shared: &Shared,
    clients: &[LedgerClient<Channel>],
    mut pick: impl FnMut() -> usize,
    txs: Vec<SignedTx>,
    counted: bool,
) {
    let mut waiting = txs;
    let mut attempt = 0u32;
    while !waiting.is_empty() {
        let verdicts = submit(&clients[pick()], &waiting, shared.submit_batch > 1).await;
        let mut retry = Vec::new();
        for (tx, verdict) in waiting.into_iter().zip(verdicts) {
            let Err(status) = verdict else {
                continue;
            };
            let retryable = matches!(
                status.code(),
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable
            );
            if status.code() == tonic::Code::ResourceExhausted && shared.in_window(Instant::now()) {
                shared.backpressure.fetch_add(1, Ordering::Relaxed);
            }
            if retryable
                && !shared.interrupted.load(Ordering::SeqCst)
                && !shared.inflight.is_closed()
            {
                retry.push(tx);
                continue;
            }
            if status.code() == tonic::Code::AlreadyExists {
                continue; // already pending there (gossip was faster): it will commit
            }
            if counted {
                let mut rejected = shared
                    .rejected
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let entry = rejected
                    .entry(format!("{:?}", status.code()))
                    .or_insert((0, status.message().to_string()));
                entry.0 += 1;
            }
            shared.forget(&tx.hash);
        }
        waiting = retry;
        if !waiting.is_empty() {
            attempt += 1;
            let backoff = Duration::from_millis((5u64 << attempt.min(6)).min(250));
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Submit `txs` to one node and return each one's verdict, in order: one `SubmitTxs` call
/// when `batched`, else one `SubmitTx` call per tx. A failed call fails each of its txs.
async fn submit(
    client: &LedgerClient<Channel>,
    txs: &[SignedTx],
    batched: bool,
) -> Vec<Result<(), tonic::Status>> {
    if !batched {
        let mut verdicts = Vec::with_capacity(txs.len());
        for tx in txs {
            let request = SubmitTxRequest {
                tx: tx.bytes.clone(),
                wait_for_commit: false,
            };
            verdicts.push(client.clone().submit_tx(request).await.map(|_| ()));
        }
        return verdicts;
    }
    let request = SubmitTxsRequest {
        txs: txs.iter().map(|tx| tx.bytes.clone()).collect(),
    };
    match client.clone().submit_txs(request).await {
        Ok(response) => {
            let results = response.into_inner().results;
            (0..txs.len())
                .map(|i| match results.get(i) {
                    Some(result) if result.code == tonic::Code::Ok as i32 => Ok(()),
                    Some(result) => Err(tonic::Status::new(
                        tonic::Code::from_i32(result.code),
                        result.message.clone(),
                    )),
                    None => Err(tonic::Status::internal("the node returned too few results")),
                })
                .collect()
        }
        Err(status) => txs.iter().map(|_| Err(status.clone())).collect(),
    }
}

/// A block as it arrived, with its arrival time.
struct Arrival {
    at: Instant,
    bytes: Vec<u8>,
}

/// Forward `StreamBlocks` from `from_height` into a channel, stamping arrival times.
async fn stream_blocks(
    mut client: LedgerClient<Channel>,
    from_height: u64,
    arrivals: mpsc::UnboundedSender<Result<Arrival>>,
) {
    let stream = client
        .stream_blocks(StreamBlocksRequest { from_height })
        .await;
    let mut stream = match stream {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = arrivals.send(Err(anyhow::anyhow!("StreamBlocks: {status}")));
            return;
        }
    };
    loop {
        let item = match stream.message().await {
            Ok(Some(response)) => match response.block {
                Some(block) => Ok(Arrival {
                    at: Instant::now(),
                    bytes: block.block,
                }),
                None => Err(anyhow::anyhow!("StreamBlocks sent an empty message")),
            },
            Ok(None) => Err(anyhow::anyhow!("the node closed the block stream")),
            Err(status) => Err(anyhow::anyhow!("StreamBlocks: {status}")),
        };
        let failed = item.is_err();
        if arrivals.send(item).is_err() || failed {
            return;
        }
    }
}

/// Match arriving blocks with submitted txs until the window's txs are all committed, the
/// drain deadline passes or the run is interrupted. Returns the committed hashes sampled.
async fn observe(
    shared: &Shared,
    mut arrivals: mpsc::UnboundedReceiver<Result<Arrival>>,
    drain: Duration,
    sample: usize,
    outcome: &mut LoadOutcome,
) -> Result<Vec<Hash>> {
    let deadline = shared.window_end + drain;
    let mut sampled = Vec::new();
    loop {
        if shared.interrupted.load(Ordering::SeqCst) || Instant::now() >= deadline {
            break;
        }
        if Instant::now() >= shared.window_end {
            let waiting = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .any(|at| shared.in_window(*at));
            if !waiting {
                break;
            }
        }
        let arrival = match tokio::time::timeout(Duration::from_millis(200), arrivals.recv()).await
        {
            Err(_) => continue,
            Ok(None) => anyhow::bail!("the block stream ended"),
            Ok(Some(arrival)) => arrival?,
        };
        let block = Block::decode(&arrival.bytes).context("StreamBlocks sent a bad block")?;
        let in_window = shared.in_window(arrival.at);
        if in_window {
            outcome.committed_blocks += 1;
            outcome.committed_txs += block.txs.len() as u64;
            outcome.committed_bytes += arrival.bytes.len() as u64;
            outcome.largest_block = outcome.largest_block.max(block.txs.len() as u64);
        }
        let hashes: Vec<Hash> = block.txs.iter().map(gongzhi_ledger::Tx::hash).collect();
        let mut ours = 0usize;
        {
            let mut pending = shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for hash in hashes {
                let Some(sent) = pending.remove(&hash) else {
                    continue;
                };
                ours += 1;
                if shared.in_window(sent) {
                    outcome
                        .latencies
                        .push(arrival.at.saturating_duration_since(sent));
                }
                if in_window && sampled.len() < sample {
                    sampled.push(hash);
                }
            }
        }
        shared.inflight.add_permits(ours);
    }
    outcome.uncommitted = shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .filter(|at| shared.in_window(**at))
        .count() as u64;
    Ok(sampled)
}

/// What a process has used so far, from `/proc/<pid>/stat`: CPU seconds in user and kernel
/// mode, and minor page faults (first touches of memory the kernel must find and zero).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// CPU seconds in user mode.
    pub user_secs: f64,
    /// CPU seconds in the kernel on the process's behalf.
    pub system_secs: f64,
    /// Minor page faults.
    pub minor_faults: u64,
}

impl ProcessUsage {
    /// The usage of process `pid` (`None`: this process); `None` if it has gone or there is no
    /// `/proc`.
    pub fn of(pid: Option<u32>) -> Option<ProcessUsage> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_string(),
        };
        ProcessUsage::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// Parse the text of a `/proc/<pid>/stat` file.
    fn parse(text: &str) -> Option<ProcessUsage> {
        // Fields after the command name (which may hold spaces) start at field 3 (state).
        let rest = text.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let minor_faults: u64 = fields.get(7)?.parse().ok()?;
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        // Linux reports clock ticks of USER_HZ, 100 on every architecture we run on.
        Some(ProcessUsage {
            user_secs: utime / 100.0,
            system_secs: stime / 100.0,
            minor_faults,
        })
    }

    /// User plus system CPU seconds.
    pub fn cpu_secs(&self) -> f64 {
        self.user_secs + self.system_secs
    }

    fn sum(usages: impl IntoIterator<Item = ProcessUsage>) -> ProcessUsage {
        usages
            .into_iter()
            .fold(ProcessUsage::default(), |total, u| ProcessUsage {
                user_secs: total.user_secs + u.user_secs,
                system_secs: total.system_secs + u.system_secs,
                minor_faults: total.minor_faults.saturating_add(u.minor_faults),
            })
    }

    /// What was used between `earlier` and this reading.
    fn since(&self, earlier: &ProcessUsage) -> ProcessUsage {
        ProcessUsage {
            user_secs: self.user_secs - earlier.user_secs,
            system_secs: self.system_secs - earlier.system_secs,
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}

/// The summed usage of the node processes, and the bench's own.
fn usage_snapshot(pids: &[u32]) -> (ProcessUsage, ProcessUsage) {
    let nodes = ProcessUsage::sum(pids.iter().filter_map(|p| ProcessUsage::of(Some(*p))));
    (nodes, ProcessUsage::of(None).unwrap_or_default())
}

/// Run the load described by `plan` and measure it.
pub async fn run(
    plan: LoadPlan,
    workload: Workload,
    interrupted: Arc<AtomicBool>,
) -> Result<LoadOutcome> {
    let mut clients = Vec::new();
    for addr in &plan.submit_to {
        clients.push(connect(addr).await?);
    }
    let observer = connect(&plan.observe).await?;
    let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
    let stream_task = tokio::spawn(stream_blocks(
        observer.clone(),
        plan.from_height,
        arrivals_tx,
    ));
    let start = Instant::now();
    let shared = Arc::new(Shared {
        workload: Mutex::new(workload),
        pending: Mutex::new(HashMap::new()),
        inflight: Semaphore::new(plan.max_inflight.max(1)),
        submit_batch: plan.submit_batch.clamp(1, gongzhi_proto::MAX_SUBMIT_TXS),
        route_by_signer: plan.route_by_signer,
        ticket: AtomicU64::new(0),
        submitted: AtomicU64::new(0),
        backpressure: AtomicU64::new(0),
        rejected: Mutex::new(BTreeMap::new()),
        rate: plan.rate,
        start,
        window_start: start + plan.warmup,
        window_end: start + plan.warmup + plan.duration,
        interrupted: interrupted.clone(),
    });
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|i| tokio::spawn(submit_worker(shared.clone(), clients.clone(), i)))
        .collect();
    let cpu_task = {
        let (window_start, window_end) = (shared.window_start, shared.window_end);
        let pids = plan.node_pids.clone();
        let metrics = plan.node_metrics.clone();
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_start).await;
            let (nodes0, bench0) = usage_snapshot(&pids);
            let steps0 = steps::snapshot(&metrics).await;
            let began = Instant::now();
            while Instant::now() < window_end && !interrupted.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (nodes1, bench1) = usage_snapshot(&pids);
            let steps1 = steps::snapshot(&metrics).await;
            (
                nodes1.since(&nodes0),
                bench1.since(&bench0),
                steps1.since(&steps0),
                began.elapsed(),
            )
        })
    };
    let mut outcome = LoadOutcome::default();
    let observed = observe(
        &shared,
        arrivals,
        plan.drain,
        plan.receipt_sample,
        &mut outcome,
    )
    .await;
    interrupted_or_done(&shared);
    for worker in workers {
        let _ = worker.await;
    }
    stream_task.abort();
    let sampled = observed?;
    let (nodes, bench, steps, window) = cpu_task.await.unwrap_or_default();
    outcome.nodes = nodes;
    outcome.bench = bench;
    outcome.steps = steps;
    outcome.window = window;
    outcome.interrupted = interrupted.load(Ordering::SeqCst);
    outcome.submitted = shared.submitted.load(Ordering::Relaxed);
    outcome.backpressure = shared.backpressure.load(Ordering::Relaxed);
    for (code, (count, message)) in shared
        .rejected
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        outcome.rejected.insert(code.clone(), *count);
        outcome
            .rejection_examples
            .insert(code.clone(), message.clone());
    }
    outcome.latencies.sort();
    let mut reader = observer;
    for hash in sampled {
        let request = GetReceiptRequest {
            tx_hash: hash.0.to_vec(),
        };
        let receipt = reader
            .get_receipt(request)
            .await
            .map_err(|status| anyhow::anyhow!("GetReceipt({hash}): {status}"))?
            .into_inner()
            .receipt
            .context("GetReceipt returned no receipt")?;
        if receipt.success {
            outcome.receipts_ok += 1;
        } else {
            *outcome
                .receipt_failures
                .entry(receipt.error_name)
                .or_insert(0) += 1;
        }
    }
    Ok(outcome)
}

/// After the observer returns, make sure no worker waits on the in-flight limit.
fn interrupted_or_done(shared: &Shared) {
    shared.inflight.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_usage_reads_faults_and_cpu_past_a_command_name_with_spaces() {
        // A real line's layout; the command name holds a space and a parenthesis.
        let line = "12208 (gongzhi (x) 1) R 12205 12205 9759 0 -1 4194304 4100 7 0 0 250 130 0 0 \
                    20 0 1 0 6316276 3133440 394 18446744073709551615";
        let usage = ProcessUsage::parse(line).expect("a stat line");
        assert_eq!(usage.minor_faults, 4100);
        assert_eq!(usage.user_secs, 2.5);
        assert_eq!(usage.system_secs, 1.3);
        assert!(ProcessUsage::parse("12208 (cut short) R 1 2").is_none());

        let mine = ProcessUsage::of(None).expect("this process's /proc entry");
        assert!(mine.minor_faults > 0, "a running test has touched memory");
        assert_eq!(mine.since(&mine).minor_faults, 0);
    }
}
