//! `gongzhi.v1.Authorization`: Check, BatchCheck, ListGrants, WatchGrants, ExplainDenial.
//!
//! Checks read committed state only and never go through consensus. Where a check is
//! evaluated:
//! - latest (or unset), no receipt: the [`LatestIndex`] — the decision's inputs decoded in
//!   memory ([`CheckIndex`]) — when it is at the chain's latest height; otherwise the store;
//! - at least `h`: the index when it is at `h` or above; otherwise wait for `h` (within the
//!   call's deadline) and read the store at the latest height. Never a state below `h`, so a
//!   client that passes the height `SubmitTx` returned never sees the earlier decision;
//! - exactly `h`: `check` over `store.state_at(h)`;
//! - with a receipt: always the store at the resolved height, through a recording reader.
//!
//! Time: validity windows are evaluated at the node's clock, never earlier than the evaluated
//! block's time; the answer reports that moment and the latest block's time.
//!
//! The index follows commits: for each new block it applies the block's state changes with
//! [`CheckIndex::apply`]. It takes them from memory when the chain still holds them
//! ([`Chain::committed_changes`]: the changes held for height h are exactly those committed
//! at h, the same `StateChanges` execution produced). Block state changes are not stored, so
//! when the height is no longer held (after a restart, or a follower far behind) it
//! re-executes the block's txs over the state before it (deterministic, the same work a
//! validator does) and checks the receipts against the header. Either way the index gets the
//! same changes; a failure or mismatch rebuilds the index from the latest state. Grant events
//! for `WatchGrants` are in `watch` below.
//!
//! [`Chain::committed_changes`]: crate::chain::Chain::committed_changes

use std::fmt::Write as _;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use gongzhi_contracts::decision::evaluate_grant;
use gongzhi_contracts::grants::Grant as GrantRecord;
use gongzhi_contracts::{
    check, query, CheckIndex, ContractError, DatasetId, Decision, OrgId, Page, PurposeCode,
};
use gongzhi_ledger::codec::to_bytes;
use gongzhi_ledger::{Block, Hash, LedgerError, StateChanges, StateReader, Timestamp};
use gongzhi_proto::v1::authorization_server::Authorization;
use gongzhi_proto::v1::{
    consistency::Requirement, list_grants_request, BatchCheckRequest, BatchCheckResponse,
    CheckRequest, CheckResponse, Consistency, DecisionReceipt as ReceiptMessage, DenialReason,
    ExplainDenialRequest, ExplainDenialResponse, Grant, GrantEvaluation, GrantRevocation,
    GrantStatus, ListGrantsRequest, ListGrantsResponse, WatchGrantsRequest,
};
use tonic::{Request, Response, Status};

use super::consistency::{deadline_of, internal, resolve_height, ResolvedState};
use super::receipt::{build_receipt, CheckQuestion, HandoverIndex};
use super::registry::{id_field, require_synced, PageCursor};
mod watch;
use crate::run::NodeContext;
use watch::GrantStream;

/// Most items in one `BatchCheck`.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Most fields in one question.
pub const MAX_FIELDS: usize = 256;

/// The index at one committed height.
#[derive(Debug)]
struct Indexed {
    index: CheckIndex,
    state: ResolvedState,
}

/// A [`CheckIndex`] of the latest committed state, kept up to date by a follower task.
#[derive(Debug, Default)]
pub struct LatestIndex {
    current: RwLock<Option<Indexed>>,
}

impl LatestIndex {
    /// Build the index from the latest state and follow commits until the process ends.
    pub fn spawn(context: NodeContext) -> Arc<LatestIndex> {
        let latest = Arc::new(LatestIndex::default());
        let follower = latest.clone();
        tokio::spawn(async move { follower.follow(context).await });
        latest
    }

    /// Height the index is at, if built.
    pub fn height(&self) -> Option<u64> {
        self.read(|indexed| indexed.state.height)
    }

    fn read<T>(&self, f: impl FnOnce(&Indexed) -> T) -> Option<T> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(f)
    }

    fn set(&self, indexed: Indexed) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(indexed);
    }

    async fn follow(&self, context: NodeContext) {
        let mut commits = context.driver.commits.subscribe();
        loop {
            if let Err(e) = self.catch_up(&context).await {
                tracing::warn!(error = %e, "check index: rebuilding from the latest state");
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let waited = tokio::time::timeout(Duration::from_secs(1), commits.recv()).await;
            if let Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) = waited {
                return;
            }
        }
    }

    /// Build (if needed) and apply blocks up to the chain's height.
    async fn catch_up(&self, context: &NodeContext) -> Result<(), String> {
        let store = context.chain.store().clone();
        if self.height().is_none() {
            let built =
                tokio::task::spawn_blocking(move || -> Result<(u64, CheckIndex), String> {
                    let state = store.latest_state().map_err(|e| e.to_string())?;
                    let index = CheckIndex::build(&state).map_err(|e| e.to_string())?;
                    Ok((state.height(), index))
                })
                .await
                .map_err(|e| e.to_string())??;
            let state = describe(context, built.0).await?;
            self.set(Indexed {
                index: built.1,
                state,
            });
        }
        while let Some(height) = self.height().filter(|h| *h < context.chain.height()) {
            let next = height + 1;
            let chain = context.chain.clone();
            let (changes, source) =
                tokio::task::spawn_blocking(move || block_changes(&chain, next))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            if source == ChangesSource::Reexecuted {
                tracing::debug!(
                    height = next,
                    "check index: block changes no longer held; re-executed the block"
                );
            }
            let state = describe(context, next).await?;
            let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
            let indexed = guard.as_mut().ok_or("index vanished")?;
            indexed.index.apply(&changes).map_err(|e| e.to_string())?;
            indexed.state = state;
        }
        Ok(())
    }
}

/// Where the follower got a block's state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangesSource {
    /// Held in memory by the chain since it committed the block.
    Committed,
    /// Re-executed over the state before the block.
    Reexecuted,
}

/// Why a committed block's state changes could not be had.
#[derive(Debug, thiserror::Error)]
enum BlockChangesError {
    #[error("height 0 is the genesis state: it has no block to re-execute")]
    Genesis,
    #[error("cannot read block {height} or the state before it: {source}")]
    Store { height: u64, source: LedgerError },
    #[error("re-executing block {height} failed: {source}")]
    Execution { height: u64, source: ContractError },
    #[error(
        "re-executing block {height} gave receipts root {found}, but its header has {expected}"
    )]
    ReceiptsMismatch {
        height: u64,
        expected: Hash,
        found: Hash,
    },
}

/// The state changes of committed block `height`: the ones the chain committed, if it still
/// holds them; otherwise by re-executing the block.
fn block_changes(
    chain: &crate::chain::Chain,
    height: u64,
) -> Result<(Arc<StateChanges>, ChangesSource), BlockChangesError> {
    if let Some(changes) = chain.committed_changes(height) {
        return Ok((changes, ChangesSource::Committed));
    }
    let changes = reexecuted_changes(chain, height)?;
    Ok((Arc::new(changes), ChangesSource::Reexecuted))
}

/// The state changes of committed block `height`, by re-executing it on the state before it;
/// refused if the receipts differ from its header's.
fn reexecuted_changes(
    chain: &crate::chain::Chain,
    height: u64,
) -> Result<StateChanges, BlockChangesError> {
    let parent = height.checked_sub(1).ok_or(BlockChangesError::Genesis)?;
    let store = chain.store();
    let read = |source| BlockChangesError::Store { height, source };
    let block: Block = store.block(height).map_err(read)?;
    let before = store.state_at(parent).map_err(read)?;
    let ctx = gongzhi_contracts::BlockContext {
        chain_id: chain.chain_id().to_string(),
        height,
        time: block.header.time,
    };
    let outcome = gongzhi_contracts::execute_block(&before, &ctx, &block.txs)
        .map_err(|source| BlockChangesError::Execution { height, source })?;
    let found = Block::compute_receipts_root(&outcome.receipts);
    if found != block.header.receipts_root {
        return Err(BlockChangesError::ReceiptsMismatch {
            height,
            expected: block.header.receipts_root,
            found,
        });
    }
    Ok(outcome.changes)
}

async fn describe(context: &NodeContext, height: u64) -> Result<ResolvedState, String> {
    let exact = Consistency {
        requirement: Some(Requirement::ExactHeight(height)),
    };
    resolve_height(context, Some(&exact), Duration::from_secs(1))
        .await
        .map_err(|s| s.message().to_string())
}

/// The Authorization service.
#[derive(Debug, Clone)]
pub struct AuthorizationService {
    context: NodeContext,
    latest: Arc<LatestIndex>,
    handovers: Arc<HandoverIndex>,
}

/// Where a question sits in its request, to name its fields in errors.
#[derive(Debug, Clone, Copy)]
enum At {
    /// The request is the question (`Check`, `ExplainDenial`).
    Request,
    /// `items[i]` of a `BatchCheck`.
    Item(usize),
}

impl At {
    /// The full name of `field` (e.g. `items[3].dataset_id`).
    fn name(self, field: &str) -> String {
        match self {
            At::Request => field.to_string(),
            At::Item(i) => format!("items[{i}].{field}"),
        }
    }
}

/// `id_field`'s rule, with the field's name formatted only when the id is invalid: a valid
/// question allocates nothing to be validated.
fn require_id(value: &str, name: impl FnOnce() -> String) -> Result<(), Status> {
    match id_field(value, "") {
        Ok(_) => Ok(()),
        Err(_) => id_field(value, &name()).map(|_| ()),
    }
}

/// Validate one question, taking its strings (no copies).
fn question(
    grantee: String,
    dataset: String,
    fields: Vec<String>,
    purpose: String,
    at: At,
) -> Result<CheckQuestion, Status> {
    require_id(&grantee, || at.name("grantee_org_id"))?;
    require_id(&dataset, || at.name("dataset_id"))?;
    require_id(&purpose, || at.name("purpose_code"))?;
    if fields.len() > MAX_FIELDS {
        return Err(Status::resource_exhausted(format!(
            "{} has {} entries; at most {MAX_FIELDS} per question",
            at.name("fields"),
            fields.len()
        )));
    }
    for (i, field) in fields.iter().enumerate() {
        require_id(field, || at.name(&format!("fields[{i}]")))?;
    }
    Ok(CheckQuestion {
        grantee: OrgId(grantee),
        dataset: DatasetId(dataset),
        fields,
        purpose: PurposeCode(purpose),
    })
}

/// The API reason for a decision.
fn reason_of(decision: &Decision) -> DenialReason {
    match decision.deny_reason() {
        None => DenialReason::Unspecified,
        Some(reason) => {
            DenialReason::try_from(reason.code() as i32).unwrap_or(DenialReason::Unspecified)
        }
    }
}

fn answer(
    decision: &Decision,
    state: &ResolvedState,
    time: Timestamp,
    latest_block_time: Timestamp,
) -> CheckResponse {
    let reason = reason_of(decision);
    let (allowed, grant_ids, message) = match decision {
        Decision::Allow { grants } => {
            let mut message = String::with_capacity(12 + 24 * grants.len());
            message.push_str("allowed by ");
            for (i, grant) in grants.iter().enumerate() {
                if i > 0 {
                    message.push_str(", ");
                }
                let _ = write!(message, "{grant}");
            }
            (true, grants.iter().map(|g| g.0).collect(), message)
        }
        Decision::Deny(denial) => (
            false,
            denial.grant.iter().map(|g| g.0).collect(),
            denial.explanation.clone(),
        ),
    };
    CheckResponse {
        decision: if allowed {
            gongzhi_proto::v1::Decision::Allow
        } else {
            gongzhi_proto::v1::Decision::Deny
        } as i32,
        reason: reason as i32,
        reason_name: reason.stable_name().to_string(),
        message,
        grant_ids,
        evaluated_height: state.height,
        evaluated_block_hash: state.block_hash.0.to_vec(),
        state_root: state.state_root.0.to_vec(),
        evaluation_time_ms: time.millis(),
        latest_block_time_ms: latest_block_time.millis(),
        receipt: None,
    }
}

impl AuthorizationService {
    /// Serve from `context`, answering latest-height checks from `latest`.
    pub fn new(context: NodeContext, latest: Arc<LatestIndex>) -> AuthorizationService {
        AuthorizationService {
            context,
            latest,
            handovers: Arc::new(HandoverIndex::default()),
        }
    }

    /// How long a call may wait for a height: its deadline less the answering margin.
    fn deadline(&self, metadata: &tonic::metadata::MetadataMap) -> Duration {
        deadline_of(
            metadata,
            Duration::from_millis(self.context.config.rpc.default_deadline_ms),
        )
    }

    /// Answer from the index if it satisfies the consistency without waiting.
    fn answer_from_index(
        &self,
        consistency: Option<&Consistency>,
        questions: &[CheckQuestion],
    ) -> Option<Result<Vec<CheckResponse>, Status>> {
        let latest_block_time = self.context.driver.status.borrow().block_time;
        let chain_height = self.context.chain.height();
        let guard = self
            .latest
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let indexed = guard.as_ref()?;
        let height = indexed.state.height;
        let usable = match consistency.and_then(|c| c.requirement) {
            None | Some(Requirement::Latest(_)) => height == chain_height,
            Some(Requirement::AtLeastHeight(h)) => height >= h,
            Some(Requirement::ExactHeight(h)) => height == h,
        };
        if !usable {
            return None;
        }
        let time = crate::driver::now().max(indexed.state.block_time);
        let mut out = Vec::with_capacity(questions.len());
        for q in questions {
            match indexed
                .index
                .check(&q.grantee, &q.dataset, &q.fields, &q.purpose, time)
            {
                Ok(decision) => out.push(answer(
                    &decision,
                    &indexed.state,
                    time,
                    latest_block_time.max(indexed.state.block_time),
                )),
                Err(e) => return Some(Err(internal(e))),
            }
        }
        Some(Ok(out))
    }

    /// Evaluate questions against one committed state chosen by `consistency`.
    async fn evaluate(
        &self,
        questions: &[CheckQuestion],
        consistency: Option<&Consistency>,
        deadline: Duration,
        want_receipt: bool,
    ) -> Result<Vec<CheckResponse>, Status> {
        require_synced(&self.context)?;
        if !want_receipt {
            if let Some(result) = self.answer_from_index(consistency, questions) {
                return result;
            }
        }
        let state = resolve_height(&self.context, consistency, deadline).await?;
        if !want_receipt {
            let exact = Consistency {
                requirement: Some(Requirement::ExactHeight(state.height)),
            };
            if let Some(result) = self.answer_from_index(Some(&exact), questions) {
                return result;
            }
        }
        let time = crate::driver::now().max(state.block_time);
        let latest_block_time = self
            .context
            .driver
            .status
            .borrow()
            .block_time
            .max(state.block_time);
        if want_receipt && state.height == 0 {
            return Err(Status::failed_precondition(
                "no block is committed yet, so there is no certificate to put in a receipt; retry after height 1",
            ));
        }
        let context = self.context.clone();
        let handovers = self.handovers.clone();
        let questions = questions.to_vec();
        tokio::task::spawn_blocking(move || {
            let store = context.chain.store();
            let mut out = Vec::with_capacity(questions.len());
            for q in &questions {
                if want_receipt {
                    let (decision, receipt) =
                        build_receipt(&context.chain, &handovers, q, time, state.height)
                            .map_err(Status::internal)?;
                    let mut response = answer(&decision, &state, time, latest_block_time);
                    let canonical = gongzhi_ledger::Canonical::encode(&receipt);
                    response.receipt = Some(ReceiptMessage {
                        receipt_hash: receipt.hash().0.to_vec(),
                        canonical,
                        height: state.height,
                        block_hash: state.block_hash.0.to_vec(),
                        state_root: state.state_root.0.to_vec(),
                        evaluation_time_ms: time.millis(),
                    });
                    out.push(response);
                } else {
                    let view = store.state_at(state.height).map_err(internal)?;
                    let decision =
                        check(&view, &q.grantee, &q.dataset, &q.fields, &q.purpose, time)
                            .map_err(internal)?;
                    out.push(answer(&decision, &state, time, latest_block_time));
                }
            }
            Ok(out)
        })
        .await
        .map_err(internal)?
    }
}

/// The status of a grant at `time`.
pub fn grant_status(grant: &GrantRecord, time: Timestamp) -> GrantStatus {
    if grant.revoked.is_some() {
        GrantStatus::Revoked
    } else if time >= grant.valid_until {
        GrantStatus::Expired
    } else if time < grant.valid_from {
        GrantStatus::NotYetValid
    } else if grant.max_uses.is_some_and(|max| grant.uses >= max) {
        GrantStatus::UsesExhausted
    } else if !grant.co_approved {
        GrantStatus::AwaitingCoApproval
    } else {
        GrantStatus::Active
    }
}

/// A grant as the API shows it, with its status at `time`.
pub fn grant_message(grant: &GrantRecord, time: Timestamp) -> Grant {
    Grant {
        grant_id: grant.id.0,
        grantor_org_id: grant.grantor.to_string(),
        grantee_org_id: grant.grantee.to_string(),
        dataset_id: grant.dataset.to_string(),
        fields: grant.fields.clone(),
        purpose_codes: grant.purposes.iter().map(ToString::to_string).collect(),
        valid_from_ms: grant.valid_from.millis(),
        valid_until_ms: grant.valid_until.millis(),
        max_uses: grant.max_uses,
        uses: grant.uses,
        delegation_depth: u32::from(grant.delegation_depth),
        parent_grant_id: grant.parent.map_or(0, |p| p.0),
        co_approver_org_id: grant
            .co_approver
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        co_approved: grant.co_approved,
        consent_receipt_hash: grant.consent_hash.map(|h| h.0.to_vec()).unwrap_or_default(),
        status: grant_status(grant, time) as i32,
        created_time_ms: grant.created.millis(),
        revocation: grant.revoked.as_ref().map(|r| GrantRevocation {
            revoked_by_org_id: r.by.to_string(),
            time_ms: r.time.millis(),
            reason: r.reason.clone(),
            cascaded_from_grant_id: r.cascaded_from.map_or(0, |g| g.0),
        }),
        canonical: to_bytes(grant),
    }
}

/// Explain one grant against a question: its first failing condition, in the check's order.
fn evaluate_one<S: StateReader + ?Sized>(
    state: &S,
    grant: &GrantRecord,
    q: &CheckQuestion,
    time: Timestamp,
) -> Result<GrantEvaluation, Status> {
    let fields: Vec<&str> = q.fields.iter().map(String::as_str).collect();
    let mut outcome = evaluate_grant(grant, &fields, &q.purpose, time);
    let mut blamed = grant.clone();
    if outcome.is_ok() {
        let mut next = grant.parent;
        while let Some(id) = next {
            let parent = query::get_grant(state, id)
                .map_err(internal)?
                .ok_or_else(|| Status::internal(format!("{id} is missing")))?;
            if parent.max_uses.is_some_and(|max| parent.uses >= max) {
                outcome = Err(gongzhi_contracts::DenyReason::UsesExhausted);
                blamed = parent;
                break;
            }
            next = parent.parent;
        }
    }
    let missing_fields = fields
        .iter()
        .filter(|f| {
            grant
                .fields
                .binary_search_by(|g| g.as_str().cmp(f))
                .is_err()
        })
        .map(ToString::to_string)
        .collect();
    let (allows, reason, message) = match outcome {
        Ok(()) => (
            true,
            DenialReason::Unspecified,
            format!("{} allows this request", grant.id),
        ),
        Err(r) => (
            false,
            DenialReason::try_from(r.code() as i32).unwrap_or(DenialReason::Unspecified),
            r.explain(&blamed, &fields, &q.purpose, time),
        ),
    };
    Ok(GrantEvaluation {
        grant: Some(grant_message(grant, time)),
        allows,
        reason: reason as i32,
        reason_name: reason.stable_name().to_string(),
        missing_fields,
        message,
    })
}

/// Every grant in a paged list at `state`.
fn whole_list<S: StateReader + ?Sized>(
    state: &S,
    filter: &list_grants_request::Filter,
) -> Result<Vec<GrantRecord>, Status> {
    let mut out = Vec::new();
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let chunk = match filter {
            list_grants_request::Filter::GranteeOrgId(org) => {
                query::grants_by_grantee(state, &OrgId::from(org.as_str()), page)
            }
            list_grants_request::Filter::GrantorOrgId(org) => {
                query::grants_by_grantor(state, &OrgId::from(org.as_str()), page)
            }
            list_grants_request::Filter::DatasetId(id) => {
                query::grants_by_dataset(state, &DatasetId::from(id.as_str()), page)
            }
        }
        .map_err(internal)?;
        out.extend(chunk.items);
        match chunk.next {
            Some(next) => page.start = next,
            None => return Ok(out),
        }
    }
}

#[tonic::async_trait]
impl Authorization for AuthorizationService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let deadline = self.deadline(request.metadata());
        let r = request.into_inner();
        let q = question(
            r.grantee_org_id,
            r.dataset_id,
            r.fields,
            r.purpose_code,
            At::Request,
        )?;
        let mut answers = self
            .evaluate(
                std::slice::from_ref(&q),
                r.consistency.as_ref(),
                deadline,
                r.want_receipt,
            )
            .await?;
        answers
            .pop()
            .map(Response::new)
            .ok_or_else(|| Status::internal("no answer"))
    }

    async fn batch_check(
        &self,
        request: Request<BatchCheckRequest>,
    ) -> Result<Response<BatchCheckResponse>, Status> {
        let deadline = self.deadline(request.metadata());
        let r = request.into_inner();
        if r.items.is_empty() {
            return Err(Status::invalid_argument(
                "items is empty: send at least one question",
            ));
        }
        if r.items.len() > MAX_BATCH_ITEMS {
            return Err(Status::resource_exhausted(format!(
                "items has {} questions; at most {MAX_BATCH_ITEMS} per batch (split it)",
                r.items.len()
            )));
        }
        let questions = r
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                question(
                    item.grantee_org_id,
                    item.dataset_id,
                    item.fields,
                    item.purpose_code,
                    At::Item(i),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let results = self
            .evaluate(&questions, r.consistency.as_ref(), deadline, r.want_receipt)
            .await?;
        Ok(Response::new(BatchCheckResponse { results }))
    }

    async fn list_grants(
        &self,
        request: Request<ListGrantsRequest>,
    ) -> Result<Response<ListGrantsResponse>, Status> {
        let (metadata, _, r) = request.into_parts();
        let filter = r.filter.clone().ok_or_else(|| {
            Status::invalid_argument(
                "filter: set exactly one of grantee_org_id, grantor_org_id or dataset_id",
            )
        })?;
        match &filter {
            list_grants_request::Filter::GranteeOrgId(v) => id_field(v, "grantee_org_id")?,
            list_grants_request::Filter::GrantorOrgId(v) => id_field(v, "grantor_org_id")?,
            list_grants_request::Filter::DatasetId(v) => id_field(v, "dataset_id")?,
        };
        let cursor = PageCursor::resolve(
            &self.context,
            &metadata,
            r.consistency.as_ref(),
            r.page_size,
            &r.page_token,
        )
        .await?;
        let time = crate::driver::now().max(cursor.state.block_time);
        let include_inactive = r.include_inactive;
        let grants: Vec<Grant> = cursor
            .state
            .read(&self.context, move |state| {
                Ok(whole_list(state, &filter)?
                    .iter()
                    .map(|g| grant_message(g, time))
                    .filter(|g| {
                        include_inactive
                            || g.status == GrantStatus::Active as i32
                            || g.status == GrantStatus::AwaitingCoApproval as i32
                    })
                    .collect())
            })
            .await?;
        let total_size = grants.len() as u64;
        let (grants, next_page_token) = cursor.page(grants);
        Ok(Response::new(ListGrantsResponse {
            grants,
            next_page_token,
            state: Some(cursor.state.to_proto()),
            total_size,
        }))
    }

    type WatchGrantsStream = GrantStream;

    async fn watch_grants(
        &self,
        request: Request<WatchGrantsRequest>,
    ) -> Result<Response<GrantStream>, Status> {
        require_synced(&self.context)?;
        watch::start(self.context.clone(), request.into_inner()).map(Response::new)
    }

    async fn explain_denial(
        &self,
        request: Request<ExplainDenialRequest>,
    ) -> Result<Response<ExplainDenialResponse>, Status> {
        require_synced(&self.context)?;
        let deadline = self.deadline(request.metadata());
        let r = request.into_inner();
        let q = question(
            r.grantee_org_id,
            r.dataset_id,
            r.fields,
            r.purpose_code,
            At::Request,
        )?;
        let state = resolve_height(&self.context, r.consistency.as_ref(), deadline).await?;
        let time = crate::driver::now().max(state.block_time);
        let latest_block_time = self
            .context
            .driver
            .status
            .borrow()
            .block_time
            .max(state.block_time);
        state
            .read(&self.context, move |view| {
                let decision = check(view, &q.grantee, &q.dataset, &q.fields, &q.purpose, time)
                    .map_err(internal)?;
                let ids = query::access_list(view, &q.grantee, &q.dataset).map_err(internal)?;
                let mut grants = Vec::with_capacity(ids.len());
                for id in ids {
                    let grant = query::get_grant(view, id)
                        .map_err(internal)?
                        .ok_or_else(|| Status::internal(format!("{id} is indexed but missing")))?;
                    grants.push(evaluate_one(view, &grant, &q, time)?);
                }
                grants.sort_by_key(|g| g.grant.as_ref().map_or(0, |g| g.grant_id));
                Ok(Response::new(ExplainDenialResponse {
                    decision: Some(answer(&decision, &state, time, latest_block_time)),
                    grants,
                }))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixture::{demo_genesis, run_demo_story, FixtureChain};
    use crate::chain::Chain;

    #[test]
    fn the_follower_takes_committed_changes_and_gets_the_index_re_execution_gives(
    ) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let mut fixture = FixtureChain::create(&data, demo_genesis())?;
        let genesis_index = CheckIndex::build(&fixture.chain().store().state_at(0)?)?;
        run_demo_story(&mut fixture)?;
        let chain = fixture.chain().clone();
        let latest = chain.height();
        assert!(
            latest >= 13,
            "the demo story commits 13 blocks, got {latest}"
        );

        let mut from_memory = genesis_index.clone();
        let mut from_reexecution = genesis_index.clone();
        let mut held = Vec::new();
        for height in 1..=latest {
            let (changes, source) = block_changes(&chain, height)?;
            assert_eq!(source, ChangesSource::Committed, "block {height}");
            let reexecuted = reexecuted_changes(&chain, height)?;
            assert_eq!(
                *changes, reexecuted,
                "block {height}: the changes held differ from re-executing it"
            );
            from_memory.apply(&changes)?;
            from_reexecution.apply(&reexecuted)?;
            held.push(changes);
        }
        assert_ne!(
            from_memory, genesis_index,
            "the story must change the index, or comparing indexes shows nothing"
        );
        assert_eq!(from_memory, from_reexecution);
        assert_eq!(
            from_memory,
            CheckIndex::build(&chain.store().latest_state()?)?
        );

        // After a restart nothing is held: the follower re-executes, to the same changes.
        drop(chain);
        drop(fixture);
        let reopened = Chain::open(&data, &demo_genesis())?;
        for (height, held) in (1..=latest).zip(&held) {
            assert!(reopened.committed_changes(height).is_none());
            let (changes, source) = block_changes(&reopened, height)?;
            assert_eq!(source, ChangesSource::Reexecuted, "block {height}");
            assert_eq!(changes, *held, "block {height}");
        }
        Ok(())
    }

    #[test]
    fn genesis_has_no_block_to_re_execute() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let fixture = FixtureChain::create(&dir.path().join("data"), demo_genesis())?;
        assert!(matches!(
            block_changes(fixture.chain(), 0),
            Err(BlockChangesError::Genesis)
        ));
        Ok(())
    }
}
