//! The dataset registry and access requests.
//!
//! Members register datasets they own and ask other owners for access; an owner approves a
//! pending request into a grant (setting its terms) or rejects it with a reason. A request is
//! decided once. Invariants: dataset fields are sorted, distinct slugs, at most
//! `max_fields_per_dataset`; datasets are never deleted; a request's fields exist in its dataset.

use std::sync::Arc;

use gongzhi_ledger::Timestamp;

use crate::error::{reject, CallResult};
use crate::execute::CallContext;
use crate::governance::{check_text, purpose_exists, Role};
use crate::grants::lifecycle::{create_grant, NewGrant};
use crate::grants::{
    get_dataset, get_request, AccessRequest, Dataset, FieldSpec, GrantTerms, RequestStatus,
};
use crate::keys::{self, ListName};
use crate::store::{self, Writes};
use crate::types::{check_slug, DatasetId, GrantId, PurposeCode, RequestId};

const REQUEST_SEQUENCE: &str = "request";

pub(crate) fn require_role(ctx: &CallContext, role: Role, what: &str) -> CallResult<()> {
    if !ctx.org.has_role(role) {
        reject!(
            RoleRequired,
            "only organisations with the {role:?} role may {what}; {} lacks it (ask governance for SetRoles)",
            ctx.org.id
        );
    }
    Ok(())
}

/// The dataset `id`, or `UNKNOWN_DATASET`.
pub(crate) fn require_dataset(
    writes: &Writes<'_>,
    ctx: &CallContext,
    id: &DatasetId,
) -> CallResult<Arc<Dataset>> {
    let loaded = ctx
        .datasets
        .borrow_mut()
        .load(writes, id, &keys::dataset(id))?;
    match loaded {
        Some(dataset) => Ok(dataset),
        None => reject!(
            UnknownDataset,
            "no dataset {id:?}; list datasets to find its id"
        ),
    }
}

/// Requested fields, checked against the dataset, sorted and deduplicated.
pub(crate) fn normalise_fields(dataset: &Dataset, fields: &[String]) -> CallResult<Vec<String>> {
    if fields.is_empty() {
        reject!(InvalidArgument, "name at least one field of {}", dataset.id);
    }
    for field in fields {
        if dataset.field(field).is_none() {
            let known: Vec<&str> = dataset.fields.iter().map(|f| f.name.as_str()).collect();
            reject!(
                UnknownField,
                "dataset {} has no field {field:?}; its fields are {}",
                dataset.id,
                known.join(", ")
            );
        }
    }
    let mut sorted = fields.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

/// Purposes, checked against the taxonomy, sorted and deduplicated.
pub(crate) fn normalise_purposes(
    writes: &Writes<'_>,
    purposes: &[PurposeCode],
) -> CallResult<Vec<PurposeCode>> {
    if purposes.is_empty() {
        reject!(InvalidArgument, "name at least one purpose");
    }
    for purpose in purposes {
        if !purpose_exists(writes, purpose)? {
            reject!(
                UnknownPurpose,
                "purpose {purpose} is not in the taxonomy; list purposes, or propose SetPurpose"
            );
        }
    }
    let mut sorted = purposes.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

/// A period must be non-empty and must not already be over.
pub(crate) fn check_period(from: Timestamp, until: Timestamp, now: Timestamp) -> CallResult<()> {
    if until <= from {
        reject!(
            InvalidPeriod,
            "valid_until ({until}) must be after valid_from ({from})"
        );
    }
    if until <= now {
        reject!(
            InvalidPeriod,
            "valid_until ({until}) is already past (block time {now})"
        );
    }
    Ok(())
}

/// Register a dataset owned by the signer's organisation.
pub(crate) fn register_dataset(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    id: DatasetId,
    name: String,
    fields: Vec<FieldSpec>,
) -> CallResult<()> {
    require_role(ctx, Role::Member, "register datasets")?;
    check_slug("dataset id", id.as_str())?;
    check_text(&ctx.params, "dataset name", &name)?;
    if get_dataset(writes, &id)?.is_some() {
        reject!(
            DatasetExists,
            "dataset {id} is already registered; pick another id"
        );
    }
    if fields.is_empty() {
        reject!(InvalidArgument, "dataset {id} needs at least one field");
    }
    if fields.len() > ctx.params.max_fields_per_dataset as usize {
        reject!(
            TooManyFields,
            "dataset {id} has {} fields; the limit is {} (parameter max_fields_per_dataset)",
            fields.len(),
            ctx.params.max_fields_per_dataset
        );
    }
    let mut fields = fields;
    fields.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in fields.windows(2) {
        if pair[0].name == pair[1].name {
            reject!(
                InvalidArgument,
                "field {:?} appears twice in dataset {id}",
                pair[0].name
            );
        }
    }
    for field in &fields {
        check_slug("field name", &field.name)?;
    }
    let dataset = Dataset {
        id: id.clone(),
        owner: ctx.org.id.clone(),
        name,
        fields,
    };
    store::write(writes, keys::dataset(&id), &dataset);
    let mut list: Vec<DatasetId> = store::read(writes, keys::DATASET_LIST)?.unwrap_or_default();
    list.push(id);
    store::write(writes, keys::DATASET_LIST.to_vec(), &list);
    Ok(())
}

/// What a grantee asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessRequestArgs {
    /// Dataset.
    pub dataset: DatasetId,
    /// Fields.
    pub fields: Vec<String>,
    /// Purpose.
    pub purpose: PurposeCode,
    /// Start of the period.
    pub valid_from: Timestamp,
    /// End of the period (exclusive).
    pub valid_until: Timestamp,
    /// Why, for the owner.
    pub justification: String,
}

/// File an access request.
pub(crate) fn request_access(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    args: AccessRequestArgs,
) -> CallResult<RequestId> {
    require_role(ctx, Role::Member, "request access")?;
    let dataset = require_dataset(writes, ctx, &args.dataset)?;
    if dataset.owner == ctx.org.id {
        reject!(
            InvalidArgument,
            "{} owns {} already; no request is needed",
            ctx.org.id,
            dataset.id
        );
    }
    let fields = normalise_fields(&dataset, &args.fields)?;
    normalise_purposes(writes, std::slice::from_ref(&args.purpose))?;
    check_period(args.valid_from, args.valid_until, ctx.time)?;
    check_text(&ctx.params, "justification", &args.justification)?;
    let id = RequestId(store::next_id(writes, REQUEST_SEQUENCE)?);
    let request = AccessRequest {
        id,
        requester: ctx.org.id.clone(),
        dataset: dataset.id.clone(),
        fields,
        purpose: args.purpose,
        valid_from: args.valid_from,
        valid_until: args.valid_until,
        justification: args.justification,
        status: RequestStatus::Pending,
        created: ctx.time,
    };
    store::write(writes, keys::request(id), &request);
    store::list_push(
        writes,
        ListName::RequestsByDataset,
        dataset.id.as_str().as_bytes(),
        id,
    )?;
    Ok(id)
}

fn pending_request_of_owner(
    writes: &Writes<'_>,
    ctx: &CallContext,
    id: RequestId,
) -> CallResult<AccessRequest> {
    let Some(request) = get_request(writes, id)? else {
        reject!(
            UnknownRequest,
            "no {id}; list the dataset's requests to find its id"
        );
    };
    let dataset = require_dataset(writes, ctx, &request.dataset)?;
    if dataset.owner != ctx.org.id {
        reject!(
            NotDatasetOwner,
            "{id} is for dataset {}, owned by {}; only the owner may decide it",
            dataset.id,
            dataset.owner
        );
    }
    if request.status != RequestStatus::Pending {
        reject!(
            RequestNotPending,
            "{id} was already decided: {:?}",
            request.status
        );
    }
    Ok(request)
}

/// Approve a pending request into a grant with the given terms.
pub(crate) fn approve_request(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    id: RequestId,
    terms: GrantTerms,
) -> CallResult<GrantId> {
    let mut request = pending_request_of_owner(writes, ctx, id)?;
    let grant = create_grant(
        writes,
        ctx,
        NewGrant {
            grantee: request.requester.clone(),
            dataset: request.dataset.clone(),
            fields: request.fields.clone(),
            purposes: vec![request.purpose.clone()],
            valid_from: request.valid_from,
            valid_until: request.valid_until,
            terms,
            parent: None,
        },
    )?;
    request.status = RequestStatus::Approved(grant);
    store::write(writes, keys::request(id), &request);
    Ok(grant)
}

/// Reject a pending request.
pub(crate) fn reject_request(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    id: RequestId,
    reason: String,
) -> CallResult<()> {
    let mut request = pending_request_of_owner(writes, ctx, id)?;
    check_text(&ctx.params, "rejection reason", &reason)?;
    request.status = RequestStatus::Rejected(reason);
    store::write(writes, keys::request(id), &request);
    Ok(())
}
