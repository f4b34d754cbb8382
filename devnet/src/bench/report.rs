//! The bench's result table, and parsing of its command-line values (`60s`, `max`).
//!
//! The table is Markdown so a run can be pasted into `docs/BENCHMARKS.md` as it is; its row
//! names are stable (tests and scripts read them).

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::load::LoadOutcome;
use super::steps;
use super::Rate;

/// Everything a bench run reports.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Validators in the devnet.
    pub validators: usize,
    /// Offered rate.
    pub rate: Rate,
    /// Measured window asked for.
    pub duration: Duration,
    /// Warm-up before it.
    pub warmup: Duration,
    /// Signing keys used by the load.
    pub signers: usize,
    /// Concurrent submitting tasks.
    pub concurrency: usize,
    /// Most txs per submit call (1: `SubmitTx`, else `SubmitTxs`).
    pub submit_batch: usize,
    /// Whether each signer's txs went to one validator.
    pub route_by_signer: bool,
    /// Most txs per block in the nodes' config.
    pub max_block_txs: usize,
    /// The nodes' minimum time between blocks, if the bench set it.
    pub min_block_interval: Option<std::time::Duration>,
    /// The nodes' tx gossip batch interval, if the bench set it.
    pub tx_gossip_interval: Option<std::time::Duration>,
    /// CPUs of the machine.
    pub cpus: usize,
    /// 1-minute load average at the end.
    pub load_average: Option<f64>,
    /// Node process ids (all stopped when the report is made).
    pub node_pids: Vec<u32>,
    /// The devnet directory (kept or removed).
    pub dir: std::path::PathBuf,
    /// ed25519 checks per second on one core just before the nodes started and just after
    /// they stopped ([`super::yardstick`]).
    pub machine_speed: (Option<f64>, Option<f64>),
    /// What was measured.
    pub outcome: LoadOutcome,
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".to_string(), |d| format!("{} ms", d.as_millis()))
}

/// Milliseconds with one decimal, without the unit (the row names it), or `n/a`.
fn milliseconds(d: Option<Duration>) -> String {
    d.map_or_else(
        || "n/a".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e3),
    )
}

impl BenchReport {
    /// Seconds the window lasted (the asked duration unless interrupted).
    pub fn window_secs(&self) -> f64 {
        let secs = if self.outcome.interrupted {
            self.outcome.window.as_secs_f64()
        } else {
            self.duration.as_secs_f64()
        };
        secs.max(0.001)
    }

    /// Committed txs per second in the window.
    pub fn tx_per_sec(&self) -> f64 {
        self.outcome.committed_txs as f64 / self.window_secs()
    }

    /// Median submit→commit latency.
    pub fn p50(&self) -> Option<Duration> {
        percentile(&self.outcome.latencies, 0.50)
    }

    /// 99th-percentile submit→commit latency.
    pub fn p99(&self) -> Option<Duration> {
        percentile(&self.outcome.latencies, 0.99)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcome;
        let secs = self.window_secs();
        let rate = match self.rate {
            Rate::Max => "max".to_string(),
            Rate::PerSecond(r) => format!("{r} tx/s"),
        };
        writeln!(
            f,
            "gongzhi devnet bench: {} validators, offered rate {rate}, {:.0} s measured after {:.0} s warm-up, {} signers, {} submitters, {}, max_block_txs {}{}{}{}",
            self.validators,
            secs,
            self.warmup.as_secs_f64(),
            self.signers,
            self.concurrency,
            match (self.rate, self.submit_batch, self.route_by_signer) {
                (Rate::Max, batch, by_signer) if batch > 1 => format!(
                    "up to {batch} txs per SubmitTxs call{}",
                    if by_signer { ", each signer to one validator" } else { "" }
                ),
                (_, _, true) => "one tx per SubmitTx call, each signer to one validator".to_string(),
                _ => "one tx per SubmitTx call".to_string(),
            },
            self.max_block_txs,
            match self.min_block_interval {
                Some(interval) => format!(", min_block_interval_ms {}", interval.as_millis()),
                None => String::new(),
            },
            match self.tx_gossip_interval {
                Some(interval) => format!(", tx_gossip_interval_ms {}", interval.as_millis()),
                None => String::new(),
            },
            if o.interrupted { " (interrupted)" } else { "" },
        )?;
        writeln!(f)?;
        let window = o.window.as_secs_f64().max(0.001);
        let window_txs = (o.committed_txs as f64).max(1.0);
        let mut rows: Vec<(&str, String)> = vec![
            ("committed txs", thousands(o.committed_txs)),
            ("committed tx/s", format!("{:.1}", self.tx_per_sec())),
            ("submit→commit p50", millis(self.p50())),
            ("submit→commit p99", millis(self.p99())),
            ("submit→commit max", millis(o.latencies.last().copied())),
            ("latency samples", thousands(o.latencies.len() as u64)),
            ("blocks", thousands(o.committed_blocks)),
            (
                "blocks/s",
                format!("{:.2}", o.committed_blocks as f64 / secs),
            ),
            (
                "bytes/s",
                thousands((o.committed_bytes as f64 / secs) as u64),
            ),
            (
                "txs per block (mean / max)",
                format!(
                    "{:.0} / {}",
                    o.committed_txs as f64 / (o.committed_blocks.max(1)) as f64,
                    o.largest_block
                ),
            ),
            ("submitted txs", thousands(o.submitted)),
            (
                "backpressure (RESOURCE_EXHAUSTED)",
                thousands(o.backpressure),
            ),
            (
                "rejected",
                if o.rejected.is_empty() {
                    "0".to_string()
                } else {
                    o.rejected
                        .iter()
                        .map(|(code, n)| format!("{n} {code}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
            ("not committed after drain", thousands(o.uncommitted)),
            (
                "receipts sampled (ok / failed)",
                format!(
                    "{} / {}",
                    o.receipts_ok,
                    o.receipt_failures.values().sum::<u64>()
                ),
            ),
            (
                "node CPU (cores busy, all nodes)",
                format!("{:.2}", o.nodes.cpu_secs() / window),
            ),
            (
                "node CPU per tx, user / system (all nodes)",
                format!(
                    "{:.0} / {:.0} µs",
                    o.nodes.user_secs * 1e6 / window_txs,
                    o.nodes.system_secs * 1e6 / window_txs
                ),
            ),
            (
                "node page faults per tx (all nodes)",
                format!("{:.2}", o.nodes.minor_faults as f64 / window_txs),
            ),
            (
                "consensus step mean, ms (propose / prevote / precommit / commit / wait)",
                {
                    let means: Vec<String> = steps::STEPS
                        .iter()
                        .map(|step| milliseconds(o.steps.step_mean(step)))
                        .collect();
                    means.join(" / ")
                },
            ),
            ("block execution mean, ms (build / verify)", {
                let means: Vec<String> = steps::EXECUTIONS
                    .iter()
                    .map(|kind| milliseconds(o.steps.execution_mean(kind)))
                    .collect();
                means.join(" / ")
            }),
            (
                "bench CPU (cores busy)",
                format!("{:.2}", o.bench.cpu_secs() / window),
            ),
            (
                "machine speed, ed25519 checks/s on one core (before / after)",
                {
                    let (before, after) = self.machine_speed;
                    let show = |rate: Option<f64>| {
                        rate.map_or_else(|| "n/a".to_string(), |r| thousands(r.round() as u64))
                    };
                    format!("{} / {}", show(before), show(after))
                },
            ),
            (
                "machine",
                format!(
                    "{} CPUs, load average {}",
                    self.cpus,
                    self.load_average
                        .map_or("n/a".to_string(), |l| format!("{l:.2}"))
                ),
            ),
        ];
        if !o.receipt_failures.is_empty() {
            rows.push((
                "receipt failures",
                o.receipt_failures
                    .iter()
                    .map(|(name, n)| format!("{n} {name}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        writeln!(f, "| {:width$} | value |", "metric")?;
        writeln!(f, "|{}|-------|", "-".repeat(width + 2))?;
        for (key, value) in rows {
            let pad = width - key.chars().count();
            writeln!(f, "| {key}{} | {value} |", " ".repeat(pad))?;
        }
        for (code, message) in &o.rejection_examples {
            writeln!(f, "\nfirst {code} refusal: {message}")?;
        }
        Ok(())
    }
}

/// Parse a duration such as `60s`, `500ms`, `2m` or `90` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration; write e.g. 60s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        other => bail!("unknown duration unit {other:?} in {text:?}; use ms, s or m"),
    };
    if !secs.is_finite() || secs < 0.0 {
        bail!("{text:?} is not a duration");
    }
    Ok(Duration::from_secs_f64(secs))
}

impl std::str::FromStr for Rate {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Rate> {
        if text.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        match text.trim().parse::<u64>() {
            Ok(rate) if rate > 0 => Ok(Rate::PerSecond(rate)),
            _ => bail!("{text:?} is not a rate; write a number of tx/s (e.g. 2000) or max"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_rates() {
        assert_eq!(parse_duration("60s").ok(), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5").ok(), Some(Duration::from_secs(5)));
        assert!(parse_duration("5h").is_err());
        assert!(matches!("max".parse::<Rate>(), Ok(Rate::Max)));
        assert!(matches!("250".parse::<Rate>(), Ok(Rate::PerSecond(250))));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.5), None);
    }
}
