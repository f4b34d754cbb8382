//! `WatchGrants`: grant changes derived from committed blocks, resumable without gaps or
//! repeats.
//!
//! Events of block `h` come from its successful txs, in tx order: an issued, approved or
//! delegated grant is CREATED (its id is in the receipt's output), a co-approval is
//! CO_APPROVED, a usage receipt is USED, a revocation is REVOKED for the grant and for every
//! descendant the cascade revoked in the same block. The grant sent is its record after block
//! `h` (several changes to one grant in one block all show the state after the block).
//!
//! Resume tokens are `<height>.<n>`: "the first `n` events of block `height` (before filters)
//! were delivered". Events are a deterministic function of the committed block, so a stream
//! restarted from a token continues with exactly the next event. A PROGRESS message, sent
//! when the stream has caught up and delivered nothing since its last message, carries
//! `<height+1>.0`.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use gongzhi_contracts::grants::Grant as GrantRecord;
use gongzhi_contracts::{query, Call, CallOutput, GrantId};
use gongzhi_ledger::{Canonical, Hash, Outcome, StateReader, Timestamp};
use gongzhi_proto::v1::{
    watch_grants_request, GrantEventKind, WatchGrantsRequest, WatchGrantsResponse,
};
use tonic::Status;

use super::grant_message;
use crate::run::NodeContext;

/// The stream type of `WatchGrants`.
pub type GrantStream = Pin<Box<dyn Stream<Item = Result<WatchGrantsResponse, Status>> + Send>>;

/// One grant change.
struct GrantEvent {
    kind: GrantEventKind,
    tx_hash: Hash,
    grant: GrantRecord,
}

/// A block's grant changes.
struct BlockEvents {
    hash: Hash,
    time: Timestamp,
    events: Vec<GrantEvent>,
}

/// Filters of a watch; empty strings match everything.
#[derive(Debug, Clone)]
struct Filters {
    grantee: String,
    grantor: String,
    dataset: String,
}

impl Filters {
    fn matches(&self, grant: &GrantRecord) -> bool {
        (self.grantee.is_empty() || grant.grantee.as_str() == self.grantee)
            && (self.grantor.is_empty() || grant.grantor.as_str() == self.grantor)
            && (self.dataset.is_empty() || grant.dataset.as_str() == self.dataset)
    }
}

fn parse_token(token: &str) -> Option<(u64, u64)> {
    let (height, delivered) = token.split_once('.')?;
    Some((height.parse().ok()?, delivered.parse().ok()?))
}

/// Validate the request and start streaming.
pub fn start(context: NodeContext, request: WatchGrantsRequest) -> Result<GrantStream, Status> {
    let (mut next, mut skip) = match request.start {
        Some(watch_grants_request::Start::FromHeight(h)) => (h.max(1), 0),
        Some(watch_grants_request::Start::ResumeToken(token)) => {
            parse_token(&token).ok_or_else(|| {
                Status::invalid_argument(
                    "resume_token is not a token this server issued; pass resume_token unchanged",
                )
            })?
        }
        None => (context.chain.height() + 1, 0),
    };
    let filters = Filters {
        grantee: request.grantee_org_id,
        grantor: request.grantor_org_id,
        dataset: request.dataset_id,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut commits = context.driver.commits.subscribe();
        let mut quiet_since: Option<u64> = None; // last block processed without a message
        loop {
            while next <= context.chain.height() {
                let chain = context.chain.clone();
                let height = next;
                let block =
                    match tokio::task::spawn_blocking(move || block_events(&chain, height)).await {
                        Ok(Ok(block)) => block,
                        Ok(Err(e)) => {
                            let _ = tx.send(Err(Status::internal(e))).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                            return;
                        }
                    };
                let mut sent = false;
                for (i, event) in block.events.iter().enumerate().skip(skip as usize) {
                    if !filters.matches(&event.grant) {
                        continue;
                    }
                    let message = WatchGrantsResponse {
                        kind: event.kind as i32,
                        height,
                        block_hash: block.hash.0.to_vec(),
                        block_time_ms: block.time.millis(),
                        tx_hash: event.tx_hash.0.to_vec(),
                        grant: Some(grant_message(&event.grant, block.time)),
                        resume_token: format!("{height}.{}", i + 1),
                    };
                    if tx.send(Ok(message)).await.is_err() {
                        return; // the client went away
                    }
                    sent = true;
                }
                quiet_since = if sent { None } else { Some(height) };
                next += 1;
                skip = 0;
            }
            if let Some(height) = quiet_since.take() {
                let progress = progress(&context, height);
                if tx.send(progress).await.is_err() {
                    return;
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), commits.recv()).await;
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn progress(context: &NodeContext, height: u64) -> Result<WatchGrantsResponse, Status> {
    let block = context
        .chain
        .store()
        .block(height)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(WatchGrantsResponse {
        kind: GrantEventKind::Progress as i32,
        height,
        block_hash: block.hash().0.to_vec(),
        block_time_ms: block.header.time.millis(),
        tx_hash: Vec::new(),
        grant: None,
        resume_token: format!("{}.0", height + 1),
    })
}

/// Descendants of `root` that the revocation in this block revoked by cascade.
fn cascade<S: StateReader + ?Sized>(
    state: &S,
    root: GrantId,
    time: Timestamp,
) -> Result<Vec<GrantRecord>, String> {
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(id) = queue.pop() {
        let children = query::grant_children(state, id).map_err(|e| e.to_string())?;
        for child in children {
            let Some(grant) = query::get_grant(state, child).map_err(|e| e.to_string())? else {
                continue;
            };
            let revoked_here = grant
                .revoked
                .as_ref()
                .is_some_and(|r| r.cascaded_from == Some(root) && r.time == time);
            if revoked_here {
                queue.push(child);
                out.push(grant);
            }
        }
    }
    out.sort_by_key(|g| g.id);
    Ok(out)
}

/// The grant changes of committed block `height`.
fn block_events(chain: &crate::chain::Chain, height: u64) -> Result<BlockEvents, String> {
    let store = chain.store();
    let block = store.block(height).map_err(|e| e.to_string())?;
    let receipts = store.receipts(height).map_err(|e| e.to_string())?;
    let state = store.state_at(height).map_err(|e| e.to_string())?;
    let time = block.header.time;
    let grant = |id: GrantId| -> Result<GrantRecord, String> {
        query::get_grant(&state, id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{id} changed in block {height} but is missing"))
    };
    let mut events = Vec::new();
    for (tx, receipt) in block.txs.iter().zip(&receipts) {
        let Outcome::Success { data } = &receipt.outcome else {
            continue;
        };
        let Ok(call) = Call::decode(&tx.body.call) else {
            continue;
        };
        let output = CallOutput::from_data(data).ok();
        let tx_hash = receipt.tx_hash;
        let mut push = |kind, grant: GrantRecord| {
            events.push(GrantEvent {
                kind,
                tx_hash,
                grant,
            })
        };
        match call {
            Call::ApproveRequest { .. } | Call::IssueGrant(_) | Call::DelegateGrant(_) => {
                if let Some(CallOutput::Grant(id)) = output {
                    push(GrantEventKind::Created, grant(id)?);
                }
            }
            Call::CoApproveGrant(id) => push(GrantEventKind::CoApproved, grant(id)?),
            Call::RecordUse(used) => push(GrantEventKind::Used, grant(used.grant)?),
            Call::RevokeGrant { grant: id, .. } => {
                push(GrantEventKind::Revoked, grant(id)?);
                for descendant in cascade(&state, id, time)? {
                    push(GrantEventKind::Revoked, descendant);
                }
            }
            _ => {}
        }
    }
    Ok(BlockEvents {
        hash: block.hash(),
        time,
        events,
    })
}
