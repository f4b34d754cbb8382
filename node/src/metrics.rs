//! Prometheus metrics: a few atomics and a minimal HTTP endpoint serving the text format at
//! `/metrics`. Counters only go up; gauges are set by their owner (driver, mempool, network).
//! Durations are histograms with fixed buckets ([`Histogram`]): consensus steps
//! ([`ConsensusStep`]) and block execution, so an operator can see where a height's time goes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Latest committed height.
    pub height: AtomicU64,
    /// Current consensus round.
    pub round: AtomicU64,
    /// Rounds started past round 0 of their height (a proposer that was down or slow).
    pub extra_rounds: AtomicU64,
    /// Connected peers.
    pub peers: AtomicU64,
    /// Pending txs.
    pub mempool_txs: AtomicU64,
    /// Pending tx bytes.
    pub mempool_bytes: AtomicU64,
    /// Pending txs our proposals left out because an earlier nonce of their signer had not
    /// arrived (summed over proposals; a tx left out twice counts twice).
    pub nonce_gap_txs: AtomicU64,
    /// Txs committed since start.
    pub committed_txs: AtomicU64,
    /// Blocks committed since start.
    pub committed_blocks: AtomicU64,
    /// Sum of intervals between committed blocks, milliseconds.
    pub block_interval_ms_sum: AtomicU64,
    /// Equivocations seen.
    pub evidence: AtomicU64,
    /// Peers banned for sending invalid gossip.
    pub peers_banned: AtomicU64,
    /// 1 while catching up by block sync.
    pub syncing: AtomicU64,
    /// Check requests served.
    pub checks: AtomicU64,
    /// Time spent in each consensus step, indexed by [`ConsensusStep::index`].
    pub steps: [Histogram; ConsensusStep::ALL.len()],
    /// Time to execute a block: building our proposal, or checking a peer's.
    pub execution: [Histogram; Execution::ALL.len()],
}

/// A phase of a height as the driver sees it, for the `gongzhi_consensus_step_seconds`
/// histogram. A round change ends the current phase and starts the next round's `Propose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsensusStep {
    /// Height started → our prevote: getting (or building) the proposal and executing it.
    Propose,
    /// Our prevote → our precommit: waiting for a prevote quorum.
    Prevote,
    /// Our precommit → decision: waiting for a precommit quorum.
    Precommit,
    /// Decision → block and certificate durably committed.
    Commit,
    /// Committed → next height started: `min_block_interval_ms`, or waiting for txs.
    Wait,
}

impl ConsensusStep {
    /// Every step, in the order of a height.
    pub const ALL: [ConsensusStep; 5] = [
        ConsensusStep::Propose,
        ConsensusStep::Prevote,
        ConsensusStep::Precommit,
        ConsensusStep::Commit,
        ConsensusStep::Wait,
    ];

    /// Position in [`ConsensusStep::ALL`] and in [`Metrics::steps`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `step` label.
    pub fn label(self) -> &'static str {
        match self {
            ConsensusStep::Propose => "propose",
            ConsensusStep::Prevote => "prevote",
            ConsensusStep::Precommit => "precommit",
            ConsensusStep::Commit => "commit",
            ConsensusStep::Wait => "wait",
        }
    }
}

impl From<gongzhi_consensus::Step> for ConsensusStep {
    fn from(step: gongzhi_consensus::Step) -> Self {
        match step {
            gongzhi_consensus::Step::Propose => ConsensusStep::Propose,
            gongzhi_consensus::Step::Prevote => ConsensusStep::Prevote,
            gongzhi_consensus::Step::Precommit => ConsensusStep::Precommit,
            gongzhi_consensus::Step::Commit => ConsensusStep::Commit,
        }
    }
}

/// Which block execution a [`Metrics::execution`] histogram times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// Our own proposal, built from the mempool.
    Build,
    /// A proposal (or decided block) from another validator.
    Verify,
}

impl Execution {
    /// Both kinds, in the order they are rendered.
    pub const ALL: [Execution; 2] = [Execution::Build, Execution::Verify];

    /// Position in [`Execution::ALL`] and in [`Metrics::execution`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Execution::Build => "build",
            Execution::Verify => "verify",
        }
    }
}

/// Append histogram family `gongzhi_{name}` (HELP, TYPE, then each series under `label`).
fn histogram_family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (&'static str, &'a Histogram)>,
) {
    let _ = writeln!(
        out,
        "# HELP gongzhi_{name} {help}\n# TYPE gongzhi_{name} histogram"
    );
    for (value, histogram) in series {
        histogram.render(out, name, (label, value));
    }
}

/// Upper bounds of the duration buckets, seconds: 1 ms to 10 s, roughly ×2.5 apart.
const BUCKETS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A Prometheus histogram of durations: a count per bucket (not cumulative; rendering adds
/// them up), the total count and the sum in microseconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Record one duration.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(i) = BUCKETS_SECONDS.iter().position(|&le| seconds <= le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of the durations recorded.
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_micros.load(Ordering::Relaxed))
    }

    /// Append the `_bucket`, `_sum` and `_count` lines of `name` with label `label="value"`.
    fn render(&self, out: &mut String, name: &str, label: (&str, &str)) {
        let (key, value) = label;
        let mut cumulative = 0;
        for (le, bucket) in BUCKETS_SECONDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gongzhi_{name}_bucket{{{key}=\"{value}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(
            out,
            "gongzhi_{name}_bucket{{{key}=\"{value}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "gongzhi_{name}_sum{{{key}=\"{value}\"}} {}",
            self.sum().as_secs_f64()
        );
        let _ = writeln!(out, "gongzhi_{name}_count{{{key}=\"{value}\"}} {count}");
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            height: AtomicU64::new(0),
            round: AtomicU64::new(0),
            extra_rounds: AtomicU64::new(0),
            peers: AtomicU64::new(0),
            mempool_txs: AtomicU64::new(0),
            mempool_bytes: AtomicU64::new(0),
            nonce_gap_txs: AtomicU64::new(0),
            committed_txs: AtomicU64::new(0),
            committed_blocks: AtomicU64::new(0),
            block_interval_ms_sum: AtomicU64::new(0),
            evidence: AtomicU64::new(0),
            peers_banned: AtomicU64::new(0),
            syncing: AtomicU64::new(0),
            checks: AtomicU64::new(0),
            steps: Default::default(),
            execution: Default::default(),
        }
    }
}

impl Metrics {
    /// Record the latest height.
    pub fn set_height(&self, height: u64) {
        self.height.store(height, Ordering::Relaxed);
    }

    /// Count `held_back` pending txs a proposal left out for a nonce gap.
    pub fn add_nonce_gap_txs(&self, held_back: usize) {
        self.nonce_gap_txs
            .fetch_add(held_back as u64, Ordering::Relaxed);
    }

    /// Record the round the current height is in; a round past 0 also counts in
    /// `extra_rounds`. Called once per round entered.
    pub fn set_round(&self, round: u32) {
        self.round.store(u64::from(round), Ordering::Relaxed);
        if round > 0 {
            self.extra_rounds.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Record the mempool size.
    pub fn set_mempool(&self, txs: usize, bytes: usize) {
        self.mempool_txs.store(txs as u64, Ordering::Relaxed);
        self.mempool_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    /// Record the number of peers.
    pub fn set_peers(&self, peers: usize) {
        self.peers.store(peers as u64, Ordering::Relaxed);
    }

    /// Record the time one consensus step took.
    pub fn observe_step(&self, step: ConsensusStep, duration: Duration) {
        self.steps[step.index()].observe(duration);
    }

    /// Record the time one block execution took.
    pub fn observe_execution(&self, kind: Execution, duration: Duration) {
        self.execution[kind.index()].observe(duration);
    }

    /// Connected peers.
    pub fn peers(&self) -> usize {
        self.peers.load(Ordering::Relaxed) as usize
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP gongzhi_{name} {help}\n# TYPE gongzhi_{name} {kind}\ngongzhi_{name} {value}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "height",
            "gauge",
            "Latest committed block height.",
            load(&self.height),
        );
        metric(
            "round",
            "gauge",
            "Current consensus round.",
            load(&self.round),
        );
        metric(
            "extra_rounds_total",
            "counter",
            "Rounds started past round 0 of their height: a proposer was down, slow or faulty.",
            load(&self.extra_rounds),
        );
        metric("peers", "gauge", "Connected peers.", load(&self.peers));
        metric(
            "mempool_txs",
            "gauge",
            "Transactions waiting in the mempool.",
            load(&self.mempool_txs),
        );
        metric(
            "mempool_bytes",
            "gauge",
            "Bytes waiting in the mempool.",
            load(&self.mempool_bytes),
        );
        metric(
            "mempool_nonce_gap_txs_total",
            "counter",
            "Pending txs our proposals left out because an earlier nonce of their signer had not arrived yet (each waits another block), summed over proposals.",
            load(&self.nonce_gap_txs),
        );
        metric(
            "committed_txs_total",
            "counter",
            "Transactions committed since start.",
            load(&self.committed_txs),
        );
        metric(
            "committed_blocks_total",
            "counter",
            "Blocks committed since start.",
            load(&self.committed_blocks),
        );
        metric(
            "block_interval_milliseconds_sum",
            "counter",
            "Sum of intervals between committed blocks (divide by committed_blocks_total).",
            load(&self.block_interval_ms_sum),
        );
        metric(
            "evidence_total",
            "counter",
            "Equivocations (double votes) observed.",
            load(&self.evidence),
        );
        metric(
            "peers_banned_total",
            "counter",
            "Peers disconnected and refused for a while for sending invalid gossip (see [p2p] ban_after_invalid).",
            load(&self.peers_banned),
        );
        metric(
            "syncing",
            "gauge",
            "1 while catching up by block sync.",
            load(&self.syncing),
        );
        metric(
            "checks_total",
            "counter",
            "Authorisation checks served.",
            load(&self.checks),
        );
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since the node started.",
            self.started.elapsed().as_secs(),
        );
        histogram_family(
            &mut out,
            "consensus_step_seconds",
            "Time a height spends in each step: propose (until our prevote), prevote (until our precommit), precommit (until decided), commit (until stored), wait (until the next height starts).",
            "step",
            ConsensusStep::ALL.map(|step| (step.label(), &self.steps[step.index()])),
        );
        histogram_family(
            &mut out,
            "block_execution_seconds",
            "Time to execute a block: build (our proposal) or verify (a peer's).",
            "kind",
            Execution::ALL.map(|kind| (kind.label(), &self.execution[kind.index()])),
        );
        out
    }

    /// Serve `/metrics` on `listen` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listen: &str) -> Result<()> {
        let listener = TcpListener::bind(listen).await.with_context(|| {
            format!("cannot listen for metrics on {listen} (in use? change [metrics] listen)")
        })?;
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let metrics = self.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let response = if request.starts_with("GET /metrics") {
                        let body = metrics.render();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.set_height(42);
        let text = m.render();
        assert!(text.contains("# TYPE gongzhi_height gauge\ngongzhi_height 42\n"));
        assert!(text.contains("gongzhi_committed_txs_total 0"));
        m.add_nonce_gap_txs(3);
        assert!(
            m.render()
                .contains("# TYPE gongzhi_mempool_nonce_gap_txs_total counter\ngongzhi_mempool_nonce_gap_txs_total 3\n"),
            "the nonce-gap counter renders"
        );
    }

    #[test]
    fn rounds_past_the_first_are_counted() {
        let m = Metrics::default();
        m.set_round(0);
        m.set_round(1);
        m.set_round(2);
        m.set_round(0);
        let text = m.render();
        assert!(text.contains("\ngongzhi_round 0\n"), "{text}");
        assert!(text.contains("\ngongzhi_extra_rounds_total 2\n"), "{text}");
    }

    #[test]
    fn histograms_count_into_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_step(ConsensusStep::Commit, Duration::from_millis(30));
        m.observe_step(ConsensusStep::Commit, Duration::from_millis(3));
        m.observe_step(ConsensusStep::Commit, Duration::from_secs(20));
        m.observe_execution(Execution::Verify, Duration::from_micros(400));
        let text = m.render();
        for line in [
            "# TYPE gongzhi_consensus_step_seconds histogram",
            "gongzhi_consensus_step_seconds_bucket{step=\"commit\",le=\"0.001\"} 0",
            "gongzhi_consensus_step_seconds_bucket{step=\"commit\",le=\"0.005\"} 1",
            "gongzhi_consensus_step_seconds_bucket{step=\"commit\",le=\"0.05\"} 2",
            "gongzhi_consensus_step_seconds_bucket{step=\"commit\",le=\"10\"} 2",
            "gongzhi_consensus_step_seconds_bucket{step=\"commit\",le=\"+Inf\"} 3",
            "gongzhi_consensus_step_seconds_sum{step=\"commit\"} 20.033",
            "gongzhi_consensus_step_seconds_count{step=\"commit\"} 3",
            "gongzhi_consensus_step_seconds_count{step=\"wait\"} 0",
            "gongzhi_block_execution_seconds_bucket{kind=\"verify\",le=\"0.001\"} 1",
            "gongzhi_block_execution_seconds_count{kind=\"build\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }
}
