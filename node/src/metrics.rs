//! Prometheus metrics: a few atomics and a minimal HTTP endpoint serving the text format at
//! `/metrics`. Counters only go up; gauges are set by their owner (driver, mempool, network).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
    /// Connected peers.
    pub peers: AtomicU64,
    /// Pending txs.
    pub mempool_txs: AtomicU64,
    /// Pending tx bytes.
    pub mempool_bytes: AtomicU64,
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
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            height: AtomicU64::new(0),
            round: AtomicU64::new(0),
            peers: AtomicU64::new(0),
            mempool_txs: AtomicU64::new(0),
            mempool_bytes: AtomicU64::new(0),
            committed_txs: AtomicU64::new(0),
            committed_blocks: AtomicU64::new(0),
            block_interval_ms_sum: AtomicU64::new(0),
            evidence: AtomicU64::new(0),
            peers_banned: AtomicU64::new(0),
            syncing: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Record the latest height.
    pub fn set_height(&self, height: u64) {
        self.height.store(height, Ordering::Relaxed);
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
    }
}
