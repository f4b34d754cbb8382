//! Per-call consistency: which committed height a read is evaluated at.
//!
//! - latest (or unset): the latest committed height;
//! - at least h: the latest height once it is ≥ h, waiting for commits within the request's
//!   deadline (read-your-writes: a client that got height h back from `SubmitTx` never sees
//!   the state before h);
//! - exactly h: historic reads at h (`OutOfRange` past the tip, as nothing can be promised).
//!
//! Deadlines: a wait ends a margin before the call's deadline ([`deadline_of`]). tonic's
//! server cancels a call when its `grpc-timeout` (or `[rpc] default_deadline_ms`) runs out and
//! answers `CANCELLED`; ending our wait first makes the client get `DEADLINE_EXCEEDED` with a
//! message that says what was awaited.

use std::time::Duration;

use gongzhi_ledger::{Hash, Timestamp};
use gongzhi_proto::v1::{consistency::Requirement, Consistency, StateRef};
use tonic::Status;

use crate::run::NodeContext;
use gongzhi_ledger::store::{HistoricState, Store};

/// Run `read` on the node's store on the blocking pool: store reads must not stall the API
/// thread, which serves other connections' calls too.
pub async fn read_store<T: Send + 'static>(
    context: &NodeContext,
    read: impl FnOnce(&Store) -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    let chain = context.chain.clone();
    tokio::task::spawn_blocking(move || read(chain.store()))
        .await
        .map_err(internal)?
}

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

    /// Run `read` on the committed state this read resolved to, on the blocking pool
    /// ([`read_store`]).
    pub async fn read<T: Send + 'static>(
        &self,
        context: &NodeContext,
        read: impl FnOnce(&HistoricState<'_>) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let height = self.height;
        read_store(context, move |store| {
            let state = store.state_at(height).map_err(internal)?;
            read(&state)
        })
        .await
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

/// A storage or contract failure while reading committed state: a server fault.
pub(super) fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// Time kept back from a call's deadline to answer it: a tenth of the deadline, at least
/// [`MIN_ANSWER_MARGIN`] and at most [`MAX_ANSWER_MARGIN`], never more than half the
/// deadline. The answer must reach the client before *its* timer fires too (tonic's client
/// also gives up at the deadline, as `CANCELLED`), and timers fire up to a millisecond late.
pub fn answer_margin(deadline: Duration) -> Duration {
    (deadline / 10)
        .clamp(MIN_ANSWER_MARGIN, MAX_ANSWER_MARGIN)
        .min(deadline / 2)
}

/// Least time kept back from a call's deadline to answer it.
pub const MIN_ANSWER_MARGIN: Duration = Duration::from_millis(5);
/// Most time kept back from a call's deadline to answer it.
pub const MAX_ANSWER_MARGIN: Duration = Duration::from_millis(50);

/// How long a call may wait: its `grpc-timeout` header, capped by `default` (the server's
/// own timeout, `[rpc] default_deadline_ms`), less [`answer_margin`], so a wait that runs out
/// is answered `DEADLINE_EXCEEDED` before the transport cancels the call.
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
    let deadline = parsed.map_or(default, |d| d.min(default));
    deadline.saturating_sub(answer_margin(deadline))
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
                    "consistency.at_least_height {h} is not committed yet (latest is {}; waited {} ms, the call's deadline less a margin to answer): retry, or raise the deadline",
                    context.chain.height(),
                    deadline.as_millis(),
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(timeout: &str) -> tonic::metadata::MetadataMap {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("grpc-timeout", timeout.parse().expect("ascii"));
        metadata
    }

    const DEFAULT: Duration = Duration::from_secs(10);

    #[test]
    fn a_wait_ends_a_margin_before_the_deadline() {
        // (grpc-timeout, wait budget)
        let table = [
            ("300m", Duration::from_millis(270)),
            ("2S", Duration::from_millis(1950)),
            ("1H", DEFAULT - MAX_ANSWER_MARGIN),
            ("20m", Duration::from_millis(15)),
            ("8m", Duration::from_millis(4)),
            ("0m", Duration::ZERO),
            ("500000u", Duration::from_millis(450)),
        ];
        for (timeout, budget) in table {
            assert_eq!(
                deadline_of(&metadata(timeout), DEFAULT),
                budget,
                "{timeout}"
            );
        }
    }

    #[test]
    fn no_or_unreadable_timeout_uses_the_default_less_the_margin() {
        let none = tonic::metadata::MetadataMap::new();
        assert_eq!(deadline_of(&none, DEFAULT), DEFAULT - MAX_ANSWER_MARGIN);
        assert_eq!(
            deadline_of(&metadata("12x"), DEFAULT),
            DEFAULT - MAX_ANSWER_MARGIN
        );
    }
}
