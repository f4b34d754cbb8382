//! Data-sharing: the dataset registry, access requests, and grants.
//!
//! - [`datasets`]: registering datasets; access requests and their approval or rejection.
//! - [`lifecycle`]: grants issued, co-approved, delegated, revoked, and used.
//!
//! Invariants kept by this module:
//! - a grant's fields exist in its dataset and are sorted and distinct; its purposes were in
//!   the taxonomy when granted and are sorted and distinct; `valid_from < valid_until`;
//! - a grant with a sensitive or personal field names a co-approver and is not in force until
//!   that organisation co-approves; a grant without such fields is born co-approved;
//! - a delegated grant lies inside its parent (fields, purposes, period, depth, uses) and is
//!   listed among its parent's children ([`grant_children`], chunked); revoking a grant
//!   revokes every descendant;
//! - `uses` of a grant counts the uses recorded against it and against its descendants,
//!   so an ancestor's `max_uses` bounds the whole delegation tree;
//! - every grant is in the access index of its (grantee, dataset) pair (chunked, in id order:
//!   [`access_chunks`]) and in the grantee, grantor and dataset lists.

pub mod datasets;
pub mod lifecycle;

use gongzhi_ledger::{Hash, StateReader, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::keys;
use crate::store;
use crate::types::{DatasetId, GrantId, OrgId, PurposeCode, RequestId};

/// How sensitive a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Sensitivity {
    /// Open data.
    Public,
    /// Internal to government.
    Internal,
    /// Sensitive: grants need co-approval.
    Sensitive,
    /// Personal data: grants need co-approval.
    Personal,
}

impl Sensitivity {
    /// Whether grants covering such a field need co-approval.
    pub fn needs_co_approval(self) -> bool {
        matches!(self, Sensitivity::Sensitive | Sensitivity::Personal)
    }
}

/// One field of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// Field name (slug).
    pub name: String,
    /// Its sensitivity.
    pub sensitivity: Sensitivity,
}

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    /// Slug id.
    pub id: DatasetId,
    /// Owning organisation.
    pub owner: OrgId,
    /// Display name.
    pub name: String,
    /// Fields, sorted by name.
    pub fields: Vec<FieldSpec>,
}

impl Dataset {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// Status of an access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    /// Waiting for the owner.
    Pending,
    /// Approved into a grant.
    Approved(GrantId),
    /// Rejected, with the owner's reason.
    Rejected(String),
}

/// A grantee's request for access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Sequential id.
    pub id: RequestId,
    /// Requesting organisation (the future grantee).
    pub requester: OrgId,
    /// Dataset asked for.
    pub dataset: DatasetId,
    /// Fields asked for, sorted.
    pub fields: Vec<String>,
    /// Purpose.
    pub purpose: PurposeCode,
    /// Start of the period asked for.
    pub valid_from: Timestamp,
    /// End of the period asked for (exclusive).
    pub valid_until: Timestamp,
    /// Why, for the owner.
    pub justification: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// Block time it was made.
    pub created: Timestamp,
}

/// Why and by whom a grant was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Organisation that revoked (for a cascade: the one that revoked the ancestor).
    pub by: OrgId,
    /// Block time.
    pub time: Timestamp,
    /// The revoker's reason.
    pub reason: String,
    /// The revoked ancestor, when revoked by cascade.
    pub cascaded_from: Option<GrantId>,
}

/// Permission for `grantee` to use `fields` of `dataset` for `purposes` during a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Sequential id.
    pub id: GrantId,
    /// Granting organisation (dataset owner, or the delegating grantee).
    pub grantor: OrgId,
    /// Receiving organisation.
    pub grantee: OrgId,
    /// Dataset.
    pub dataset: DatasetId,
    /// Covered fields, sorted.
    pub fields: Vec<String>,
    /// Covered purposes, sorted.
    pub purposes: Vec<PurposeCode>,
    /// In force from this time (inclusive).
    pub valid_from: Timestamp,
    /// In force until this time (exclusive).
    pub valid_until: Timestamp,
    /// Most uses (counting descendants' uses), if limited.
    pub max_uses: Option<u64>,
    /// Uses recorded so far (including descendants').
    pub uses: u64,
    /// How many further levels of delegation are allowed (0: not delegable).
    pub delegation_depth: u8,
    /// Organisation that must co-approve (needed for sensitive or personal fields).
    pub co_approver: Option<OrgId>,
    /// Whether it is co-approved (true when no co-approval is needed).
    pub co_approved: bool,
    /// Hash of a resident consent receipt, if any.
    pub consent_hash: Option<Hash>,
    /// Parent grant when delegated.
    pub parent: Option<GrantId>,
    /// Set when revoked.
    pub revoked: Option<Revocation>,
    /// Block time of creation.
    pub created: Timestamp,
}

/// The terms the owner sets when approving a request or issuing a grant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrantTerms {
    /// Most uses (`None`: unlimited).
    pub max_uses: Option<u64>,
    /// Delegation levels allowed (0: not delegable).
    pub delegation_depth: u8,
    /// Co-approver (required when a field is sensitive or personal).
    pub co_approver: Option<OrgId>,
    /// Hash of a resident consent receipt.
    pub consent_hash: Option<Hash>,
}

/// A dataset, if registered.
pub fn get_dataset<S: StateReader + ?Sized>(
    state: &S,
    id: &DatasetId,
) -> Result<Option<Dataset>, ContractError> {
    store::read(state, &keys::dataset(id))
}

/// A grant, if it exists.
pub fn get_grant<S: StateReader + ?Sized>(
    state: &S,
    id: GrantId,
) -> Result<Option<Grant>, ContractError> {
    store::read(state, &keys::grant(id))
}

/// The head of an access index (`access/<grantee>/<dataset>`): how many chunks are sealed
/// (stored at [`keys::access_chunk`] `0 .. sealed`) and the open chunk of newer ids, fewer
/// than [`keys::CHUNK`].
pub type AccessHead = crate::types::ChunkedHead<GrantId>;

/// The access index of (`grantee`, `dataset`) chunk by chunk, as stored: the sealed chunks the
/// head counts (one that is absent reads as empty), then the head's open chunk; no chunk when
/// there is no head. The decision evaluates these ids in this order.
pub fn access_chunks<S: StateReader + ?Sized>(
    state: &S,
    grantee: &OrgId,
    dataset: &DatasetId,
) -> Result<Vec<Vec<GrantId>>, ContractError> {
    let Some(head) = store::read::<AccessHead, _>(state, &keys::access_index(grantee, dataset))?
    else {
        return Ok(Vec::new());
    };
    let mut chunks = (0..head.sealed)
        .map(|chunk| {
            let key = keys::access_chunk(grantee, dataset, chunk);
            Ok(store::read(state, &key)?.unwrap_or_default())
        })
        .collect::<Result<Vec<_>, ContractError>>()?;
    chunks.push(head.open);
    Ok(chunks)
}

/// Every grant id in the access index of (`grantee`, `dataset`), in order.
pub fn access_list<S: StateReader + ?Sized>(
    state: &S,
    grantee: &OrgId,
    dataset: &DatasetId,
) -> Result<Vec<GrantId>, ContractError> {
    Ok(access_chunks(state, grantee, dataset)?
        .into_iter()
        .flatten()
        .collect())
}

/// List grant `id` (the newest, so the highest) in the access index of (`grantee`,
/// `dataset`): the head is rewritten, and once per [`keys::CHUNK`] grants its full open chunk
/// is sealed under the next chunk number, whatever the list's length.
pub(crate) fn list_access(
    writes: &mut store::Writes<'_>,
    grantee: &OrgId,
    dataset: &DatasetId,
    id: GrantId,
) -> Result<(), ContractError> {
    store::chunked_push(
        writes,
        keys::access_index(grantee, dataset),
        |chunk| keys::access_chunk(grantee, dataset, chunk),
        id,
    )
}

/// The grants delegated directly from grant `id`, ascending: the sealed chunks of
/// `grant-children/<id>`, then its open chunk. A sealed chunk that is missing or not full is
/// corrupt state (a revocation must reach every descendant).
pub fn grant_children<S: StateReader + ?Sized>(
    state: &S,
    id: GrantId,
) -> Result<Vec<GrantId>, ContractError> {
    store::chunked_all(state, &keys::grant_children(id), |chunk| {
        keys::grant_children_chunk(id, chunk)
    })
}

/// List `child` (the newest grant, so the highest id) among the children of `parent`.
pub(crate) fn list_child(
    writes: &mut store::Writes<'_>,
    parent: GrantId,
    child: GrantId,
) -> Result<(), ContractError> {
    store::chunked_push(
        writes,
        keys::grant_children(parent),
        |chunk| keys::grant_children_chunk(parent, chunk),
        child,
    )
}

/// An access request, if it exists.
pub fn get_request<S: StateReader + ?Sized>(
    state: &S,
    id: RequestId,
) -> Result<Option<AccessRequest>, ContractError> {
    store::read(state, &keys::request(id))
}
