//! Read helpers for the API and CLI: point reads and paged lists over any state version.
//!
//! None of these write; all are deterministic functions of the state, so an answer can be
//! re-derived (and proven) at any height.

use gongzhi_ledger::StateReader;

use crate::error::ContractError;
use crate::governance::proposals::{get_proposal, proposal_count, Proposal};
use crate::governance::{org_ids, Organisation, Purpose, Reason};
use crate::grants::{AccessRequest, Dataset, Grant};
use crate::keys::{self, ListName};
use crate::store;
use crate::types::{
    DatasetId, GrantId, OrgId, Page, PageOf, ProposalId, PurposeCode, ReasonCode, RequestId,
};

pub use crate::civility::{balance, get_record, history};
pub use crate::execute::nonce;
pub use crate::governance::{get_org, get_reason, org_of_signer, parameters};
pub use crate::grants::{access_list, get_dataset, get_grant, get_request, grant_children};

/// Every organisation, in admission order (removed ones included, with their status).
pub fn list_orgs<S: StateReader + ?Sized>(state: &S) -> Result<Vec<Organisation>, ContractError> {
    org_ids(state)?
        .iter()
        .map(|id| store::read_required(state, &keys::org(id)))
        .collect()
}

/// Every dataset, in registration order.
pub fn list_datasets<S: StateReader + ?Sized>(state: &S) -> Result<Vec<Dataset>, ContractError> {
    let ids: Vec<DatasetId> = store::read(state, keys::DATASET_LIST)?.unwrap_or_default();
    ids.iter()
        .map(|id| store::read_required(state, &keys::dataset(id)))
        .collect()
}

/// The purpose taxonomy, sorted by code.
pub fn list_purposes<S: StateReader + ?Sized>(state: &S) -> Result<Vec<Purpose>, ContractError> {
    let codes: Vec<PurposeCode> = store::read(state, keys::PURPOSE_LIST)?.unwrap_or_default();
    codes
        .iter()
        .map(|c| store::read_required(state, &keys::purpose(c)))
        .collect()
}

/// The reason catalogue, sorted by code.
pub fn list_reasons<S: StateReader + ?Sized>(state: &S) -> Result<Vec<Reason>, ContractError> {
    let codes: Vec<ReasonCode> = store::read(state, keys::REASON_LIST)?.unwrap_or_default();
    codes
        .iter()
        .map(|c| store::read_required(state, &keys::reason(c)))
        .collect()
}

fn grants_page<S: StateReader + ?Sized>(
    state: &S,
    name: ListName,
    owner: &str,
    page: Page,
) -> Result<PageOf<Grant>, ContractError> {
    let ids: PageOf<GrantId> = store::list_page(state, name, owner.as_bytes(), page)?;
    let items = ids
        .items
        .iter()
        .map(|id| store::read_required(state, &keys::grant(*id)))
        .collect::<Result<_, _>>()?;
    Ok(PageOf {
        items,
        total: ids.total,
        next: ids.next,
    })
}

/// Grants received by `org`, oldest first.
pub fn grants_by_grantee<S: StateReader + ?Sized>(
    state: &S,
    org: &OrgId,
    page: Page,
) -> Result<PageOf<Grant>, ContractError> {
    grants_page(state, ListName::GrantsByGrantee, org.as_str(), page)
}

/// Grants given by `org` (as owner or delegator), oldest first.
pub fn grants_by_grantor<S: StateReader + ?Sized>(
    state: &S,
    org: &OrgId,
    page: Page,
) -> Result<PageOf<Grant>, ContractError> {
    grants_page(state, ListName::GrantsByGrantor, org.as_str(), page)
}

/// Grants on `dataset`, oldest first.
pub fn grants_by_dataset<S: StateReader + ?Sized>(
    state: &S,
    dataset: &DatasetId,
    page: Page,
) -> Result<PageOf<Grant>, ContractError> {
    grants_page(state, ListName::GrantsByDataset, dataset.as_str(), page)
}

/// Access requests on `dataset`, oldest first.
pub fn requests_by_dataset<S: StateReader + ?Sized>(
    state: &S,
    dataset: &DatasetId,
    page: Page,
) -> Result<PageOf<AccessRequest>, ContractError> {
    let ids: PageOf<RequestId> = store::list_page(
        state,
        ListName::RequestsByDataset,
        dataset.as_str().as_bytes(),
        page,
    )?;
    let items = ids
        .items
        .iter()
        .map(|id| store::read_required(state, &keys::request(*id)))
        .collect::<Result<_, _>>()?;
    Ok(PageOf {
        items,
        total: ids.total,
        next: ids.next,
    })
}

/// Proposals, oldest first (ids 1..=count).
pub fn list_proposals<S: StateReader + ?Sized>(
    state: &S,
    page: Page,
) -> Result<PageOf<Proposal>, ContractError> {
    let total = proposal_count(state)?;
    let limit = page.limit.min(Page::MAX_LIMIT);
    let end = page.start.saturating_add(limit).min(total);
    let mut items = Vec::new();
    for index in page.start..end {
        let id = ProposalId(index + 1);
        items.push(
            get_proposal(state, id)?.ok_or_else(|| ContractError::Corrupt {
                key: keys::display(&keys::proposal(id)),
                reason: "proposal below the counter is missing".into(),
            })?,
        );
    }
    Ok(PageOf {
        items,
        total,
        next: (end < total).then_some(end),
    })
}
