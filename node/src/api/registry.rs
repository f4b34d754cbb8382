//! `gongzhi.v1.Registry`: organisations, datasets and governance proposals, read from one
//! committed state per listing — plus the paging helpers every list of the API shares.
//!
//! Paging: a page token is `<height>.<offset>`; the first page resolves the request's
//! consistency to a height and every later page reads exactly that height again, so all
//! pages of one listing see the same state. The lists here are small (tens of organisations,
//! datasets and proposals), so a page filters and sorts the whole list in memory.

use std::time::Duration;

use gongzhi_contracts::governance::proposals::{
    Proposal as ProposalRecord, ProposalAction, ProposalStatus as RecordStatus,
};
use gongzhi_contracts::governance::{OrgKind, OrgStatus, Organisation as OrgRecord, Role};
use gongzhi_contracts::grants::{Dataset as DatasetRecord, Sensitivity};
use gongzhi_contracts::{query, ContractError, DatasetId, Page};
use gongzhi_ledger::codec::to_bytes;
use gongzhi_proto::v1::registry_server::Registry;
use gongzhi_proto::v1::{
    consistency::Requirement, Consistency, Dataset, DatasetField, FieldSensitivity,
    GetDatasetRequest, GetDatasetResponse, ListDatasetsRequest, ListDatasetsResponse,
    ListOrganizationsRequest, ListOrganizationsResponse, ListProposalsRequest,
    ListProposalsResponse, Organization, OrganizationRole, OrganizationStatus, Proposal,
    ProposalStatus,
};
use tonic::{Request, Response, Status};

use super::consistency::{deadline_of, internal, resolve_height, ResolvedState};
use crate::run::NodeContext;

/// The part of a call's deadline a handler may spend waiting ([`deadline_of`] keeps back the
/// margin that lets it answer `DEADLINE_EXCEEDED` before tonic cancels the call).
pub(super) fn wait_budget(
    metadata: &tonic::metadata::MetadataMap,
    context: &NodeContext,
) -> Duration {
    deadline_of(
        metadata,
        Duration::from_millis(context.config.rpc.default_deadline_ms),
    )
}

/// Page size when the request leaves it 0.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// Largest page served (larger requests are capped, as the API documents).
pub const MAX_PAGE_SIZE: u64 = 1000;

/// `Unavailable` while the node is catching up by block sync: its state is behind the chain.
pub(super) fn require_synced(context: &NodeContext) -> Result<(), Status> {
    if context.driver.status.borrow().syncing {
        return Err(Status::unavailable(
            "the node is catching up with the chain (syncing); retry shortly or ask another node",
        ));
    }
    Ok(())
}

/// `InvalidArgument` naming `field` unless `value` is a non-empty id of at most 64 bytes.
pub(super) fn id_field<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} is empty: set it to an id such as \"yuetan-street\""
        )));
    }
    if value.len() > gongzhi_contracts::types::MAX_SLUG_LEN {
        return Err(Status::invalid_argument(format!(
            "{field} is {} bytes long; ids have at most {} characters",
            value.len(),
            gongzhi_contracts::types::MAX_SLUG_LEN
        )));
    }
    Ok(value)
}

/// Where one page of a listing starts, and the state it reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageCursor {
    /// The pinned state.
    pub state: ResolvedState,
    /// Index of the first entry of this page.
    pub offset: u64,
    /// Entries per page.
    pub limit: u64,
}

impl PageCursor {
    /// Resolve the state and position of a page request.
    pub async fn resolve(
        context: &NodeContext,
        metadata: &tonic::metadata::MetadataMap,
        consistency: Option<&Consistency>,
        page_size: u32,
        page_token: &str,
    ) -> Result<PageCursor, Status> {
        require_synced(context)?;
        let deadline = wait_budget(metadata, context);
        let limit = match u64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        if page_token.is_empty() {
            let state = resolve_height(context, consistency, deadline).await?;
            return Ok(PageCursor {
                state,
                offset: 0,
                limit,
            });
        }
        let parsed = page_token
            .split_once('.')
            .and_then(|(h, o)| Some((h.parse::<u64>().ok()?, o.parse::<u64>().ok()?)));
        let Some((height, offset)) = parsed else {
            return Err(Status::invalid_argument(
                "page_token is not a token this server issued; pass next_page_token unchanged",
            ));
        };
        let pinned = Consistency {
            requirement: Some(Requirement::ExactHeight(height)),
        };
        let state = resolve_height(context, Some(&pinned), deadline).await?;
        Ok(PageCursor {
            state,
            offset,
            limit,
        })
    }

    /// This page of `items` (the whole filtered list) and the next page's token.
    pub fn page<T>(&self, items: Vec<T>) -> (Vec<T>, String) {
        let total = items.len() as u64;
        let start = self.offset.min(total);
        let end = start.saturating_add(self.limit).min(total);
        let token = if end < total {
            format!("{}.{end}", self.state.height)
        } else {
            String::new()
        };
        let page = items
            .into_iter()
            .skip(start as usize)
            .take((end - start) as usize)
            .collect();
        (page, token)
    }
}

/// The Registry service.
#[derive(Debug, Clone)]
pub struct RegistryService {
    context: NodeContext,
}

impl RegistryService {
    /// Serve from `context`.
    pub fn new(context: NodeContext) -> RegistryService {
        RegistryService { context }
    }
}

fn kind_name(kind: OrgKind) -> &'static str {
    OrgKind::NAMES
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("", |(name, _)| name)
}

fn role_proto(role: Role) -> OrganizationRole {
    match role {
        Role::Validator => OrganizationRole::Validator,
        Role::Member => OrganizationRole::Member,
        Role::Issuer => OrganizationRole::Issuer,
        Role::ServicePoint => OrganizationRole::ServicePoint,
        Role::Auditor => OrganizationRole::Auditor,
    }
}

fn organization(org: &OrgRecord) -> Organization {
    let mut roles: Vec<i32> = org.roles.iter().map(|r| role_proto(*r) as i32).collect();
    roles.sort_unstable();
    Organization {
        org_id: org.id.to_string(),
        name: org.name.clone(),
        kind: kind_name(org.kind).to_string(),
        roles,
        status: match org.status {
            OrgStatus::Active => OrganizationStatus::Active,
            OrgStatus::Suspended => OrganizationStatus::Suspended,
            OrgStatus::Removed => OrganizationStatus::Removed,
        } as i32,
        operator_keys: org.operator_keys.iter().map(|k| k.0.to_vec()).collect(),
        validator_key: org.validator.map(|v| v.key.0.to_vec()).unwrap_or_default(),
        voting_power: org.voting_power(),
        node_keys: org.node_keys.iter().map(|k| k.0.to_vec()).collect(),
        issuer_quota: org.issuer_quota,
        canonical: to_bytes(org),
    }
}

fn dataset(record: &DatasetRecord) -> Dataset {
    Dataset {
        dataset_id: record.id.to_string(),
        name: record.name.clone(),
        owner_org_id: record.owner.to_string(),
        fields: record
            .fields
            .iter()
            .map(|f| DatasetField {
                name: f.name.clone(),
                sensitivity: match f.sensitivity {
                    Sensitivity::Public => FieldSensitivity::Public,
                    Sensitivity::Internal => FieldSensitivity::Internal,
                    Sensitivity::Sensitive => FieldSensitivity::Sensitive,
                    Sensitivity::Personal => FieldSensitivity::Personal,
                } as i32,
            })
            .collect(),
        canonical: to_bytes(record),
    }
}

/// Kebab-case name of a proposal's action, e.g. "admit-org".
fn action_kind(action: &ProposalAction) -> &'static str {
    match action {
        ProposalAction::AdmitOrg(_) => "admit-org",
        ProposalAction::RemoveOrg(_) => "remove-org",
        ProposalAction::SuspendOrg(_) => "suspend-org",
        ProposalAction::ReinstateOrg(_) => "reinstate-org",
        ProposalAction::SetValidator { .. } => "set-validator",
        ProposalAction::SetRoles { .. } => "set-roles",
        ProposalAction::RotateKey { .. } => "rotate-key",
        ProposalAction::SetParameter(_) => "set-parameter",
        ProposalAction::SetIssuerQuota { .. } => "set-issuer-quota",
        ProposalAction::SetPurpose(_) => "set-purpose",
        ProposalAction::RemovePurpose(_) => "remove-purpose",
        ProposalAction::SetReason(_) => "set-reason",
        ProposalAction::RemoveReason(_) => "remove-reason",
    }
}

fn action_summary(action: &ProposalAction) -> String {
    match action {
        ProposalAction::AdmitOrg(spec) => format!("admit {} ({})", spec.id, spec.name),
        ProposalAction::RemoveOrg(org) => format!("remove {org}"),
        ProposalAction::SuspendOrg(org) => format!("suspend {org}"),
        ProposalAction::ReinstateOrg(org) => format!("reinstate {org}"),
        ProposalAction::SetValidator { org, validator } => match validator {
            Some(v) => format!(
                "make {org} a validator with power {} and key {}",
                v.power, v.key
            ),
            None => format!("drop the validator role of {org}"),
        },
        ProposalAction::SetRoles { org, roles } => format!("set the roles of {org} to {roles:?}"),
        ProposalAction::RotateKey { org, old, new } => {
            format!("rotate operator key {old} of {org} to {new}")
        }
        ProposalAction::SetParameter(change) => format!("set parameter {change:?}"),
        ProposalAction::SetIssuerQuota { org, quota } => match quota {
            Some(q) => format!("set the issuer quota of {org} to {q}"),
            None => format!("reset the issuer quota of {org} to the default"),
        },
        ProposalAction::SetPurpose(p) => format!("set purpose {} ({})", p.code, p.label),
        ProposalAction::RemovePurpose(code) => format!("remove purpose {code}"),
        ProposalAction::SetReason(r) => format!(
            "set civility reason {} ({}, max {} points)",
            r.code, r.label, r.max_points
        ),
        ProposalAction::RemoveReason(code) => format!("remove civility reason {code}"),
    }
}

fn proposal(
    record: &ProposalRecord,
    orgs: &[OrgRecord],
    block_time: gongzhi_ledger::Timestamp,
) -> Proposal {
    let total_power: u64 = orgs.iter().map(OrgRecord::voting_power).sum();
    let approved_power: u64 = orgs
        .iter()
        .filter(|o| record.approvals.contains(&o.id))
        .map(OrgRecord::voting_power)
        .sum();
    let (status, passed_height, passed_time_ms) = match record.status {
        RecordStatus::Passed { height, time } => (ProposalStatus::Passed, height, time.millis()),
        RecordStatus::Open if block_time >= record.deadline => (ProposalStatus::Expired, 0, 0),
        RecordStatus::Open => (ProposalStatus::Open, 0, 0),
    };
    Proposal {
        proposal_id: record.id.0,
        kind: action_kind(&record.action).to_string(),
        summary: action_summary(&record.action),
        proposer_org_id: record.proposer.to_string(),
        status: status as i32,
        approvals: record.approvals.iter().map(ToString::to_string).collect(),
        approved_power,
        total_power,
        created_time_ms: record.created.millis(),
        deadline_ms: record.deadline.millis(),
        passed_height,
        passed_time_ms,
        action: to_bytes(&record.action),
    }
}

fn contract(e: ContractError) -> Status {
    internal(e)
}

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn list_organizations(
        &self,
        request: Request<ListOrganizationsRequest>,
    ) -> Result<Response<ListOrganizationsResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let role_filter = match OrganizationRole::try_from(request.role) {
            Ok(OrganizationRole::Unspecified) => None,
            Ok(role) => Some(role as i32),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "role {} is not an OrganizationRole",
                    request.role
                )))
            }
        };
        let cursor = PageCursor::resolve(
            &self.context,
            &metadata,
            request.consistency.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        let include_removed = request.include_removed;
        let mut orgs: Vec<Organization> = cursor
            .state
            .read(&self.context, move |state| {
                Ok(query::list_orgs(state)
                    .map_err(contract)?
                    .iter()
                    .filter(|o| include_removed || o.status != OrgStatus::Removed)
                    .map(organization)
                    .filter(|o| role_filter.is_none_or(|r| o.roles.contains(&r)))
                    .collect())
            })
            .await?;
        orgs.sort_by(|a, b| a.org_id.cmp(&b.org_id));
        let total_size = orgs.len() as u64;
        let (organizations, next_page_token) = cursor.page(orgs);
        Ok(Response::new(ListOrganizationsResponse {
            organizations,
            next_page_token,
            state: Some(cursor.state.to_proto()),
            total_size,
        }))
    }

    async fn get_dataset(
        &self,
        request: Request<GetDatasetRequest>,
    ) -> Result<Response<GetDatasetResponse>, Status> {
        require_synced(&self.context)?;
        let deadline = wait_budget(request.metadata(), &self.context);
        let request = request.into_inner();
        let id = id_field(&request.dataset_id, "dataset_id")?;
        let resolved =
            resolve_height(&self.context, request.consistency.as_ref(), deadline).await?;
        let dataset_id = DatasetId::from(id);
        let found = resolved
            .read(&self.context, move |state| {
                query::get_dataset(state, &dataset_id).map_err(contract)
            })
            .await?;
        match found {
            Some(record) => Ok(Response::new(GetDatasetResponse {
                dataset: Some(dataset(&record)),
                state: Some(resolved.to_proto()),
            })),
            None => Err(Status::not_found(format!(
                "no dataset {id:?} at height {}; ListDatasets shows the registered ids",
                resolved.height
            ))),
        }
    }

    async fn list_datasets(
        &self,
        request: Request<ListDatasetsRequest>,
    ) -> Result<Response<ListDatasetsResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let cursor = PageCursor::resolve(
            &self.context,
            &metadata,
            request.consistency.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        let owner = request.owner_org_id;
        let mut all: Vec<Dataset> = cursor
            .state
            .read(&self.context, move |state| {
                Ok(query::list_datasets(state)
                    .map_err(contract)?
                    .iter()
                    .filter(|d| owner.is_empty() || d.owner.as_str() == owner)
                    .map(dataset)
                    .collect())
            })
            .await?;
        all.sort_by(|a, b| a.dataset_id.cmp(&b.dataset_id));
        let total_size = all.len() as u64;
        let (datasets, next_page_token) = cursor.page(all);
        Ok(Response::new(ListDatasetsResponse {
            datasets,
            next_page_token,
            state: Some(cursor.state.to_proto()),
            total_size,
        }))
    }

    async fn list_proposals(
        &self,
        request: Request<ListProposalsRequest>,
    ) -> Result<Response<ListProposalsResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let wanted = match ProposalStatus::try_from(request.status) {
            Ok(ProposalStatus::Unspecified) => None,
            Ok(status) => Some(status as i32),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "status {} is not a ProposalStatus",
                    request.status
                )))
            }
        };
        let cursor = PageCursor::resolve(
            &self.context,
            &metadata,
            request.consistency.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        let (orgs, records) = cursor
            .state
            .read(&self.context, |state| {
                let orgs = query::list_orgs(state).map_err(contract)?;
                let mut records = Vec::new();
                let mut page = Page::first(Page::MAX_LIMIT);
                loop {
                    let chunk = query::list_proposals(state, page).map_err(contract)?;
                    records.extend(chunk.items);
                    match chunk.next {
                        Some(next) => page.start = next,
                        None => break,
                    }
                }
                Ok((orgs, records))
            })
            .await?;
        let mut all: Vec<Proposal> = records
            .iter()
            .rev()
            .map(|p| proposal(p, &orgs, cursor.state.block_time))
            .filter(|p| wanted.is_none_or(|s| p.status == s))
            .collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.proposal_id));
        let total_size = all.len() as u64;
        let (proposals, next_page_token) = cursor.page(all);
        Ok(Response::new(ListProposalsResponse {
            proposals,
            next_page_token,
            state: Some(cursor.state.to_proto()),
            total_size,
        }))
    }
}
