//! Per-call consistency: which committed height a read is evaluated at.
//!
//! - latest (or unset): the latest committed height;
//! - at least h: the latest height once it is ≥ h, waiting for commits within the request's
//!   deadline (read-your-writes: a client that got height h back from `SubmitTx` never sees
//!   the state before h);
//! - exactly h: historic reads at h (`OutOfRange` past the tip, as nothing can be promised).

use std::time::Duration;

use gongzhi_ledger::{Hash, Timestamp};
use gongzhi_proto::v1::{consistency::Requirement, Consistency, StateRef};
use tonic::Status;

use crate::run::NodeContext;

/// The state a read was evaluated at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedState {
    /// Height.
    pub height: u64,
    /// Block hash at that height (genesis hash at 0).
    pub block_hash: Hash,
    /// Block time.
    pub block_time: Timestamp,
    /// State root after that block.
    pub state_root: Hash,
}

impl ResolvedState {
    /// As the API's `StateRef`.
    pub fn to_proto(self) -> StateRef {
        StateRef {
            height: self.height,
            block_hash: self.block_hash.0.to_vec(),
            block_time_ms: self.block_time.millis(),
            state_root: self.state_root.0.to_vec(),
        }
    }
}

fn describe(context: &NodeContext, height: u64) -> Result<ResolvedState, Status> {
    let store = context.chain.store();
    let state_root = store.state_root(height).map_err(internal)?;
    let (block_hash, block_time) = if height == 0 {
        (
            store.genesis_hash().map_err(internal)?,
            context.chain.latest_time().map_err(internal)?,
        )
    } else {
        let block = store.block(height).map_err(internal)?;
        (block.hash(), block.header.time)
    };
    Ok(ResolvedState {
        height,
        block_hash,
        block_time,
        state_root,
    })
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// The request's deadline: its `grpc-timeout` header, capped by the configured default.
pub fn deadline_of(metadata: &tonic::metadata::MetadataMap, default: Duration) -> Duration {
    let parsed = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|text| {
            let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
            let value: u64 = digits.parse().ok()?;
            Some(match unit {
                "H" => Duration::from_secs(value.saturating_mul(3600)),
                "M" => Duration::from_secs(value.saturating_mul(60)),
                "S" => Duration::from_secs(value),
                "m" => Duration::from_millis(value),
                "u" => Duration::from_micros(value),
                "n" => Duration::from_nanos(value),
                _ => return None,
            })
        });
    parsed.map_or(default, |d| d.min(default))
}

/// Resolve a request's consistency to a committed height, waiting for "at least h" up to
/// `deadline` (then `DeadlineExceeded`).
pub async fn resolve_height(
    context: &NodeContext,
    consistency: Option<&Consistency>,
    deadline: Duration,
) -> Result<ResolvedState, Status> {
    let requirement = consistency.and_then(|c| c.requirement);
    match requirement {
        None | Some(Requirement::Latest(_)) => describe(context, context.chain.height()),
        Some(Requirement::ExactHeight(h)) => {
            let latest = context.chain.height();
            if h > latest {
                return Err(Status::out_of_range(format!(
                    "consistency.exact_height {h} is not committed yet (latest is {latest}); use at_least_height to wait for it"
                )));
            }
            describe(context, h)
        }
        Some(Requirement::AtLeastHeight(h)) => {
            let mut commits = context.driver.commits.subscribe();
            let wait = async {
                loop {
                    let latest = context.chain.height();
                    if latest >= h {
                        return latest;
                    }
                    // Wait for the next commit; re-check at least once a second in case of lag.
                    let _ = tokio::time::timeout(Duration::from_secs(1), commits.recv()).await;
                }
            };
            match tokio::time::timeout(deadline, wait).await {
                Ok(latest) => describe(context, latest),
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "height {h} was not committed within {} ms (latest is {}); retry or raise the deadline",
                    deadline.as_millis(),
                    context.chain.height()
                ))),
            }
        }
    }
}
