//! Auditor tooling: export a chain to a portable file, replay it from genesis verifying every
//! signature, certificate, receipt and state root, and report what it contains.
//!
//! - [`format`]: the export file (gzip stream of length-prefixed canonical records);
//! - [`export`]: `gongzhi audit export`, streaming a stopped node's store into a file;
//! - [`remote`]: the same from a running node over gRPC (`--node`);
//! - [`verify`]: the state-free checks, run in parallel on every core;
//! - [`replay`]: the sequential checks and re-execution, block after block;
//! - [`root_stage`]: state roots into a temporary store, on their own thread, one block behind;
//! - [`error`]: [`ReplayError`], one variant per discrepancy, naming height and tx;
//! - [`report`], [`html`]: the audit report (JSON, text table, self-contained HTML);
//! - [`fixture`]: an in-process chain with real signatures and certificates (tests, demos);
//! - [`bench`]: `gongzhi audit bench`, replay speed next to the batch-verify rate.
//!
//! Invariants: an export or a replay holds a bounded number of blocks in memory, never the
//! chain; a replay trusts nothing from the file that a signature or a recomputation has not
//! confirmed, and stops at the first discrepancy in chain order.

pub mod bench;
pub mod error;
pub mod export;
pub mod fixture;
pub mod format;
pub mod html;
pub mod progress;
pub mod remote;
pub mod replay;
pub mod report;
pub mod root_stage;
pub mod verify;

pub use error::ReplayError;
pub use export::{export_home, export_store, ExportError, ExportSummary};
pub use format::{AuditBlock, ExportReader, ExportWriter, FormatError};
pub use replay::{replay_file, ReplayOptions, ReplaySummary};
pub use report::{AuditReport, ReportBuilder};
