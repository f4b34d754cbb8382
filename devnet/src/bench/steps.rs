//! The nodes' own account of where a height's time goes: the bench reads every node's
//! `gongzhi_consensus_step_seconds` and `gongzhi_block_execution_seconds` histograms (their
//! `_sum` and `_count` lines) from its metrics endpoint at the start and at the end of the
//! measured window, and reports each step's mean over the window, all nodes together.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Histograms whose `_sum` and `_count` the bench reads, with the label that tells their
/// series apart.
const HISTOGRAMS: [(&str, &str); 2] = [
    ("gongzhi_consensus_step_seconds", "step"),
    ("gongzhi_block_execution_seconds", "kind"),
];

/// Steps of a height, in the order the report shows them (the nodes' `step` labels).
pub const STEPS: [&str; 5] = ["propose", "prevote", "precommit", "commit", "wait"];

/// Block executions, in the order the report shows them (the nodes' `kind` labels).
pub const EXECUTIONS: [&str; 2] = ["build", "verify"];

/// Summed seconds and counts per (histogram, label value), over one or more nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepTimes {
    totals: BTreeMap<(String, String), (f64, u64)>,
}

impl StepTimes {
    /// Read the histograms out of a Prometheus text exposition; other lines are skipped.
    pub fn parse(text: &str) -> StepTimes {
        let mut times = StepTimes::default();
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            for (name, label) in HISTOGRAMS {
                let Some(rest) = series.strip_prefix(name) else {
                    continue;
                };
                let (is_sum, labels) =
                    match (rest.strip_prefix("_sum"), rest.strip_prefix("_count")) {
                        (Some(labels), _) => (true, labels),
                        (_, Some(labels)) => (false, labels),
                        _ => continue,
                    };
                let prefix = format!("{{{label}=\"");
                let Some(label_value) = labels
                    .strip_prefix(prefix.as_str())
                    .and_then(|l| l.strip_suffix("\"}"))
                else {
                    continue;
                };
                let Ok(number) = value.parse::<f64>() else {
                    continue;
                };
                let entry = times
                    .totals
                    .entry((name.to_string(), label_value.to_string()))
                    .or_default();
                if is_sum {
                    entry.0 += number;
                } else {
                    entry.1 += number as u64;
                }
            }
        }
        times
    }

    /// These totals plus `other`'s (another node's).
    pub fn add(&mut self, other: &StepTimes) {
        for (key, (seconds, count)) in &other.totals {
            let entry = self.totals.entry(key.clone()).or_default();
            entry.0 += seconds;
            entry.1 += count;
        }
    }

    /// What was recorded between `earlier` and these totals.
    pub fn since(&self, earlier: &StepTimes) -> StepTimes {
        let mut totals = BTreeMap::new();
        for (key, (seconds, count)) in &self.totals {
            let (s0, c0) = earlier.totals.get(key).copied().unwrap_or_default();
            totals.insert(key.clone(), (seconds - s0, count.saturating_sub(c0)));
        }
        StepTimes { totals }
    }

    fn mean(&self, histogram: &str, label_value: &str) -> Option<Duration> {
        let (seconds, count) = self
            .totals
            .get(&(histogram.to_string(), label_value.to_string()))
            .copied()?;
        (count > 0).then(|| Duration::from_secs_f64((seconds / count as f64).max(0.0)))
    }

    /// Mean time of consensus step `step` (one of [`STEPS`]).
    pub fn step_mean(&self, step: &str) -> Option<Duration> {
        self.mean(HISTOGRAMS[0].0, step)
    }

    /// Mean time of block execution `kind` (one of [`EXECUTIONS`]).
    pub fn execution_mean(&self, kind: &str) -> Option<Duration> {
        self.mean(HISTOGRAMS[1].0, kind)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.totals.values().all(|(_, count)| *count == 0)
    }
}

/// The summed step times of the nodes whose metrics listen at `addrs` (`host:port`). A node
/// that does not answer is left out: the report then covers the others.
pub async fn snapshot(addrs: &[String]) -> StepTimes {
    let mut total = StepTimes::default();
    for addr in addrs {
        if let Ok(text) = scrape(addr).await {
            total.add(&StepTimes::parse(&text));
        }
    }
    total
}

/// `GET /metrics` from `addr`, with a 5 s deadline.
async fn scrape(addr: &str) -> Result<String> {
    let fetch = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to the metrics endpoint {addr}"))?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response).into_owned();
        if !text.starts_with("HTTP/1.1 200") {
            bail!("metrics endpoint {addr} answered {:?}", text.lines().next());
        }
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .with_context(|| format!("metrics endpoint {addr} did not answer within 5 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "\
# TYPE gongzhi_consensus_step_seconds histogram
gongzhi_consensus_step_seconds_bucket{step=\"propose\",le=\"0.1\"} 3
gongzhi_consensus_step_seconds_sum{step=\"propose\"} 0.6
gongzhi_consensus_step_seconds_count{step=\"propose\"} 4
gongzhi_consensus_step_seconds_sum{step=\"wait\"} 0.2
gongzhi_consensus_step_seconds_count{step=\"wait\"} 2
gongzhi_block_execution_seconds_sum{kind=\"verify\"} 0.09
gongzhi_block_execution_seconds_count{kind=\"verify\"} 3
gongzhi_height 12
";

    #[test]
    fn means_over_nodes_and_a_window() {
        let earlier = StepTimes::parse(NODE);
        assert_eq!(
            earlier.step_mean("propose"),
            Some(Duration::from_millis(150))
        );
        assert_eq!(earlier.step_mean("commit"), None, "never recorded");
        let mut later = StepTimes::parse(NODE);
        later.add(&StepTimes::parse(
            &NODE
                .replace("} 0.6", "} 1.4")
                .replace("\"propose\"} 4", "\"propose\"} 8"),
        ));
        // Two nodes: propose 0.6 + 1.4 s over 4 + 8; minus the first reading: 1.4 s over 8.
        let window = later.since(&earlier);
        assert_eq!(
            window.step_mean("propose"),
            Some(Duration::from_millis(175))
        );
        assert_eq!(window.step_mean("wait"), Some(Duration::from_millis(100)));
        let verify = window.execution_mean("verify").expect("verify recorded");
        assert!((verify.as_secs_f64() - 0.03).abs() < 1e-9, "{verify:?}");
        assert!(!window.is_empty());
        assert!(earlier.since(&earlier).is_empty());
    }
}
