//! `gongzhi audit …`: export a chain, replay it from genesis, report on it, benchmark replay.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Subcommand};
use gongzhi_ledger::Hash;

use crate::audit::bench::{self, BenchOptions};
use crate::audit::progress::Progress;
use crate::audit::remote::export_node;
use crate::audit::{export_home, html, replay_file, ReplayOptions, ReportBuilder};

/// A file deleted when dropped (the export fetched for `replay --node`).
#[derive(Debug)]
struct TemporaryFile(PathBuf);

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Auditor operations.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the whole chain (genesis, blocks, certificates, receipts) to one compressed file.
    #[command(
        group(ArgGroup::new("source").required(true).args(["node", "home"])),
        after_help = "Examples:\n  gongzhi audit export --home ./node0 --out xicheng-1.gzaudit   # the node must be stopped\n  \
            gongzhi audit export --node 127.0.0.1:26657 --genesis genesis.toml --out xicheng-1.gzaudit\n\n\
            The file format is described in docs/EXPORT_FORMAT.md."
    )]
    Export {
        /// gRPC address of a running node (needs --genesis).
        #[arg(long, requires = "genesis")]
        node: Option<String>,
        /// The chain's genesis file (with --node: the API does not serve it).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Home directory of a stopped node (opens its block store directly).
        #[arg(long)]
        home: Option<PathBuf>,
        /// File to write.
        #[arg(long)]
        out: PathBuf,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
    },
    /// Verify an export from genesis: hash links, certificates, every signature, re-execution.
    #[command(
        group(ArgGroup::new("source").required(true).args(["file", "node"])),
        after_help = "Examples:\n  gongzhi audit replay xicheng-1.gzaudit --html report.html --json report.json\n  \
            gongzhi audit replay xicheng-1.gzaudit --genesis-hash 5f1c…   # refuse any other chain\n  \
            gongzhi audit replay --node 127.0.0.1:26657 --genesis genesis.toml\n\n\
            Exit status 0 means every block verified; otherwise the first discrepancy is printed\n\
            with its height and tx index."
    )]
    Replay {
        /// An export file written by `gongzhi audit export`.
        file: Option<PathBuf>,
        /// gRPC address of a running node to replay from (needs --genesis).
        #[arg(long, requires = "genesis")]
        node: Option<String>,
        /// The chain's genesis file (with --node).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Checking threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// The genesis hash you trust (hex); an export of any other genesis is refused.
        #[arg(long)]
        genesis_hash: Option<String>,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the report as a self-contained HTML page here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// With --node: directory for the temporary export file (default: the system temp dir).
        /// The replayed state itself is kept in memory.
        #[arg(long)]
        scratch_dir: Option<PathBuf>,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
    },
    /// Build a synthetic chain of signed grant and award txs, export and replay it, and print
    /// the replay rate next to this machine's ed25519 batch-verification rate.
    #[command(after_help = "Example:\n  gongzhi audit bench --txs 1000000")]
    Bench {
        /// Txs in the chain.
        #[arg(long, default_value_t = 100_000)]
        txs: u64,
        /// Txs per block.
        #[arg(long, default_value_t = 1000)]
        block_txs: usize,
        /// Threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Working directory (default: a temp dir, deleted afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the chain and export in --dir.
        #[arg(long)]
        keep: bool,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a decision receipt offline against the chain's genesis (same as the top-level
    /// `gongzhi verify-receipt`): Merkle proofs, header, commit certificate, and the decision
    /// re-evaluated from the proven entries.
    #[command(
        after_help = "Example:\n  gongzhi audit verify-receipt decision.gzr --genesis genesis.toml"
    )]
    VerifyReceipt(super::check_cmd::VerifyReceiptArgs),
}

/// Run an audit subcommand.
pub fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Export {
            node,
            genesis,
            home,
            out,
            quiet,
        } => {
            let mut progress = Progress::new(!quiet);
            let summary = match (node, genesis, home) {
                (Some(addr), Some(genesis), _) => {
                    export_node(&addr, &genesis, &out, &mut progress)?
                }
                (_, _, Some(home)) => export_home(&home, &out, &mut progress)?,
                _ => bail!("give --home DIR (stopped node) or --node ADDR --genesis FILE"),
            };
            println!(
                "exported {} blocks ({} txs) to {} ({:.1} MB) in {:.1} s; last block {}",
                summary.blocks,
                summary.txs,
                out.display(),
                summary.bytes as f64 / 1e6,
                summary.seconds,
                summary.last_block_hash
            );
            Ok(())
        }
        AuditCommand::Replay {
            file,
            node,
            genesis,
            threads,
            genesis_hash,
            json,
            html: html_out,
            scratch_dir,
            quiet,
        } => {
            // From a node: export to a temporary file first (streamed, bounded memory), then
            // replay that file like any other.
            let mut temporary = None;
            let file = match (file, node, genesis) {
                (Some(file), _, _) => file,
                (None, Some(addr), Some(genesis)) => {
                    let dir = scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
                    let path = dir.join(format!("gongzhi-replay-{}.gzaudit", std::process::id()));
                    export_node(&addr, &genesis, &path, &mut Progress::new(!quiet))?;
                    temporary = Some(TemporaryFile(path.clone()));
                    path
                }
                _ => bail!("give an export FILE, or --node ADDR --genesis FILE"),
            };
            let trusted_genesis = genesis_hash
                .map(|h| Hash::from_hex(&h).context("--genesis-hash must be 64 hex characters"))
                .transpose()?;
            let options = ReplayOptions {
                threads,
                progress: !quiet,
                trusted_genesis,
            };
            let mut builder = ReportBuilder::new();
            let summary = match replay_file(&file, &options, &mut builder) {
                Ok(summary) => summary,
                Err(e) => bail!("replay of {} FAILED: {e}", file.display()),
            };
            let report = builder.finish(summary);
            print!("{}", report.to_table());
            if let Some(path) = json {
                std::fs::write(&path, report.to_json())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("JSON report: {}", path.display());
            }
            if let Some(path) = html_out {
                std::fs::write(&path, html::render(&report))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("HTML report: {}", path.display());
            }
            println!("OK: every block verified from genesis.");
            drop(temporary);
            Ok(())
        }
        AuditCommand::VerifyReceipt(args) => super::check_cmd::run_verify_receipt(args),
        AuditCommand::Bench {
            txs,
            block_txs,
            threads,
            dir,
            keep,
            json,
        } => {
            if block_txs == 0 {
                bail!("--block-txs must be at least 1");
            }
            let result = bench::run(&BenchOptions {
                txs,
                block_txs,
                threads,
                dir,
                keep,
                progress: true,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print!("{}", result.to_table());
            }
            Ok(())
        }
    }
}
