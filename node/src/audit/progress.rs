//! Progress lines on stderr for long exports and replays: at most one line every two seconds,
//! with blocks done, txs done and the current rate. Silent when disabled (tests, `--quiet`).

use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(2);

/// A throttled progress printer.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    label: &'static str,
    total_blocks: u64,
    started: Instant,
    last_print: Instant,
}

impl Progress {
    /// A printer that prints when `enabled`.
    pub fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            label: "",
            total_blocks: 0,
            started: now,
            last_print: now,
        }
    }

    /// A printer that never prints.
    pub fn silent() -> Progress {
        Progress::new(false)
    }

    /// Begin a phase over `total_blocks` (0 if unknown).
    pub fn start(&mut self, label: &'static str, total_blocks: u64) {
        self.label = label;
        self.total_blocks = total_blocks;
        self.started = Instant::now();
        self.last_print = self.started;
    }

    /// Report that `blocks` blocks holding `txs` txs are done.
    pub fn tick(&mut self, blocks: u64, txs: u64) {
        if !self.enabled || self.last_print.elapsed() < INTERVAL {
            return;
        }
        self.last_print = Instant::now();
        self.print(blocks, txs);
    }

    /// Print the final line of the phase.
    pub fn finish(&mut self, blocks: u64, txs: u64) {
        if self.enabled {
            self.print(blocks, txs);
        }
    }

    fn print(&self, blocks: u64, txs: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let of = if self.total_blocks > 0 {
            format!(
                "/{} ({:.0} %)",
                self.total_blocks,
                blocks as f64 * 100.0 / self.total_blocks as f64
            )
        } else {
            String::new()
        };
        eprintln!(
            "[{}] block {blocks}{of}, {txs} txs, {:.0} txs/s, {:.1} s",
            self.label,
            txs as f64 / secs,
            secs
        );
    }
}
