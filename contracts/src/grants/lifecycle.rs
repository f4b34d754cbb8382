//! Grants: issued by a dataset owner (directly or by approving a request), co-approved,
//! delegated by a grantee, revoked (with cascade) and used.
//!
//! Rules, beyond the invariants in [`crate::grants`]:
//! - only the dataset owner issues root grants; only a grant's grantee delegates it, and only
//!   while the parent is in force (not revoked, co-approved, not expired);
//! - a delegated grant inherits its parent's co-approver, consent hash and dataset, and needs
//!   its own co-approval when it has one: delegating to a new party is a new disclosure;
//! - uses recorded against a grant are also counted on each ancestor, so a use fails when the
//!   grant or any ancestor has reached `max_uses`;
//! - the grantor or the dataset owner may revoke; revocation marks every not-yet-revoked
//!   descendant revoked too, naming the grant the cascade started from.

use gongzhi_ledger::{Hash, Timestamp};
use serde::{Deserialize, Serialize};

use crate::decision::{evaluate_grant, DenyReason};
use crate::error::{reject, CallResult};
use crate::execute::CallContext;
use crate::governance::{check_text, org_status, OrgStatus};
use crate::grants::datasets::{
    check_period, normalise_fields, normalise_purposes, require_dataset,
};
use crate::grants::{get_grant, Grant, GrantTerms, Revocation};
use crate::keys::{self, ListName};
use crate::store::{self, Writes};
use crate::types::{DatasetId, GrantId, OrgId, PurposeCode};

/// The sequence grant ids are drawn from.
pub(crate) const GRANT_SEQUENCE: &str = "grant";

/// Everything needed to create a grant (the grantor is the signer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGrant {
    /// Receiving organisation.
    pub grantee: OrgId,
    /// Dataset.
    pub dataset: DatasetId,
    /// Fields to cover.
    pub fields: Vec<String>,
    /// Purposes to cover.
    pub purposes: Vec<PurposeCode>,
    /// Start (inclusive).
    pub valid_from: Timestamp,
    /// End (exclusive).
    pub valid_until: Timestamp,
    /// Uses, delegation, co-approval, consent.
    pub terms: GrantTerms,
    /// Parent, for a delegated grant.
    pub parent: Option<GrantId>,
}

/// What a grantee passes on when delegating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// The grant delegated from.
    pub parent: GrantId,
    /// Receiving organisation.
    pub grantee: OrgId,
    /// Subset of the parent's fields.
    pub fields: Vec<String>,
    /// Subset of the parent's purposes.
    pub purposes: Vec<PurposeCode>,
    /// Start, not before the parent's.
    pub valid_from: Timestamp,
    /// End, not after the parent's.
    pub valid_until: Timestamp,
    /// Own use limit (uses also count on the parent).
    pub max_uses: Option<u64>,
    /// At most the parent's depth minus one.
    pub delegation_depth: u8,
}

/// The grant `id`, or `UNKNOWN_GRANT`.
pub(crate) fn require_grant(writes: &Writes<'_>, id: GrantId) -> CallResult<Grant> {
    match get_grant(writes, id)? {
        Some(grant) => Ok(grant),
        None => reject!(
            UnknownGrant,
            "no {id}; list grants by grantee or grantor to find its id"
        ),
    }
}

fn require_party(
    writes: &Writes<'_>,
    id: &OrgId,
    invalid: crate::error::ErrorKind,
    role: &str,
) -> CallResult<()> {
    let status = org_status(writes, id)?;
    if status != Some(OrgStatus::Active) {
        return Err(crate::error::TxError::new(
            invalid,
            format!("{role} {id} is {status:?}; it must be an active organisation"),
        )
        .into());
    }
    Ok(())
}

/// Validate and store a new grant with its indexes.
pub(crate) fn create_grant(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    new: NewGrant,
) -> CallResult<GrantId> {
    use crate::error::ErrorKind;
    let dataset = require_dataset(writes, ctx, &new.dataset)?;
    if new.parent.is_none() && dataset.owner != ctx.org.id {
        reject!(
            NotDatasetOwner,
            "dataset {} is owned by {}; only the owner issues grants on it (others delegate)",
            dataset.id,
            dataset.owner
        );
    }
    if new.grantee == ctx.org.id {
        reject!(InvalidGrantee, "{} cannot grant to itself", ctx.org.id);
    }
    require_party(writes, &new.grantee, ErrorKind::InvalidGrantee, "grantee")?;
    let fields = normalise_fields(&dataset, &new.fields)?;
    let purposes = normalise_purposes(writes, &new.purposes)?;
    check_period(new.valid_from, new.valid_until, ctx.time)?;
    if new.terms.max_uses == Some(0) {
        reject!(
            InvalidArgument,
            "max_uses of 0 would make the grant useless; omit it for unlimited uses"
        );
    }
    if new.terms.delegation_depth > ctx.params.max_delegation_depth {
        reject!(
            InvalidArgument,
            "delegation depth {} exceeds the limit {} (parameter max_delegation_depth)",
            new.terms.delegation_depth,
            ctx.params.max_delegation_depth
        );
    }
    let needs_co_approval = fields.iter().any(|f| {
        dataset
            .field(f)
            .is_some_and(|spec| spec.sensitivity.needs_co_approval())
    });
    match &new.terms.co_approver {
        None if needs_co_approval => reject!(
            CoApproverRequired,
            "fields {} of {} include sensitive or personal data; name a co-approver organisation",
            fields.join(","),
            dataset.id
        ),
        None => {}
        Some(co) => {
            if *co == ctx.org.id || *co == new.grantee {
                reject!(
                    InvalidCoApprover,
                    "co-approver {co} is a party to the grant; name a third organisation"
                );
            }
            require_party(writes, co, ErrorKind::InvalidCoApprover, "co-approver")?;
        }
    }
    let id = GrantId(store::next_id(writes, GRANT_SEQUENCE)?);
    let grant = Grant {
        id,
        grantor: ctx.org.id.clone(),
        grantee: new.grantee,
        dataset: dataset.id.clone(),
        fields,
        purposes,
        valid_from: new.valid_from,
        valid_until: new.valid_until,
        max_uses: new.terms.max_uses,
        uses: 0,
        delegation_depth: new.terms.delegation_depth,
        co_approved: new.terms.co_approver.is_none(),
        co_approver: new.terms.co_approver,
        consent_hash: new.terms.consent_hash,
        parent: new.parent,
        revoked: None,
        created: ctx.time,
    };
    store::write(writes, keys::grant(id), &grant);
    super::list_access(writes, &grant.grantee, &grant.dataset, id)?;
    store::list_push(
        writes,
        ListName::GrantsByGrantee,
        grant.grantee.as_str().as_bytes(),
        id,
    )?;
    store::list_push(
        writes,
        ListName::GrantsByGrantor,
        grant.grantor.as_str().as_bytes(),
        id,
    )?;
    store::list_push(
        writes,
        ListName::GrantsByDataset,
        grant.dataset.as_str().as_bytes(),
        id,
    )?;
    if let Some(parent) = grant.parent {
        super::list_child(writes, parent, id)?;
    }
    Ok(id)
}

/// Issue a grant directly (dataset owner).
pub(crate) fn issue_grant(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    mut new: NewGrant,
) -> CallResult<GrantId> {
    new.parent = None;
    create_grant(writes, ctx, new)
}

/// The named co-approver approves a grant.
pub(crate) fn co_approve(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    id: GrantId,
) -> CallResult<()> {
    let mut grant = require_grant(writes, id)?;
    let Some(co) = grant.co_approver.clone() else {
        reject!(
            AlreadyCoApproved,
            "{id} names no co-approver; it needs no co-approval"
        );
    };
    if co != ctx.org.id {
        reject!(
            NotCoApprover,
            "{id} names {co} as co-approver, not {}",
            ctx.org.id
        );
    }
    if grant.revoked.is_some() {
        reject!(
            GrantRevoked,
            "{id} is revoked; co-approving it has no effect"
        );
    }
    if grant.co_approved {
        reject!(AlreadyCoApproved, "{id} is already co-approved");
    }
    grant.co_approved = true;
    store::write(writes, keys::grant(id), &grant);
    Ok(())
}

/// A grantee delegates part of its grant.
pub(crate) fn delegate(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    d: Delegation,
) -> CallResult<GrantId> {
    let parent = require_grant(writes, d.parent)?;
    if parent.grantee != ctx.org.id {
        reject!(
            NotGrantee,
            "{} is granted to {}; only the grantee may delegate it",
            parent.id,
            parent.grantee
        );
    }
    if parent.revoked.is_some() {
        reject!(
            GrantRevoked,
            "{} is revoked; it cannot be delegated",
            parent.id
        );
    }
    if !parent.co_approved || ctx.time >= parent.valid_until {
        reject!(
            GrantNotInForce,
            "{} is not in force (co-approved: {}, valid until {}); it cannot be delegated now",
            parent.id,
            parent.co_approved,
            parent.valid_until
        );
    }
    if parent.delegation_depth == 0 {
        reject!(
            NotDelegable,
            "{} has delegation depth 0; ask {} for a delegable grant",
            parent.id,
            parent.grantor
        );
    }
    let exceeds = |what: String| -> CallResult<()> {
        reject!(
            DelegationExceedsParent,
            "the delegation would exceed {}: {what}",
            parent.id
        )
    };
    if d.delegation_depth >= parent.delegation_depth {
        exceeds(format!(
            "depth {} must be below the parent's {}",
            d.delegation_depth, parent.delegation_depth
        ))?;
    }
    if let Some(field) = d
        .fields
        .iter()
        .find(|f| parent.fields.binary_search(f).is_err())
    {
        exceeds(format!("field {field:?} is not covered by the parent"))?;
    }
    if let Some(purpose) = d
        .purposes
        .iter()
        .find(|p| parent.purposes.binary_search(p).is_err())
    {
        exceeds(format!("purpose {purpose} is not covered by the parent"))?;
    }
    if d.valid_from < parent.valid_from || d.valid_until > parent.valid_until {
        exceeds(format!(
            "period {}..{} is outside the parent's {}..{}",
            d.valid_from, d.valid_until, parent.valid_from, parent.valid_until
        ))?;
    }
    create_grant(
        writes,
        ctx,
        NewGrant {
            grantee: d.grantee,
            dataset: parent.dataset.clone(),
            fields: d.fields,
            purposes: d.purposes,
            valid_from: d.valid_from,
            valid_until: d.valid_until,
            terms: GrantTerms {
                max_uses: d.max_uses,
                delegation_depth: d.delegation_depth,
                co_approver: parent.co_approver.clone(),
                consent_hash: parent.consent_hash,
            },
            parent: Some(parent.id),
        },
    )
}

/// Revoke a grant and every grant delegated from it; returns how many were revoked.
pub(crate) fn revoke(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    id: GrantId,
    reason: String,
) -> CallResult<u64> {
    check_text(&ctx.params, "revocation reason", &reason)?;
    let mut grant = require_grant(writes, id)?;
    let owner = require_dataset(writes, ctx, &grant.dataset)?.owner.clone();
    if grant.grantor != ctx.org.id && owner != ctx.org.id {
        reject!(
            NotGrantor,
            "{id} was granted by {} on a dataset of {owner}; only they may revoke it",
            grant.grantor
        );
    }
    if let Some(r) = &grant.revoked {
        reject!(
            GrantRevoked,
            "{id} was already revoked by {} at {}",
            r.by,
            r.time
        );
    }
    grant.revoked = Some(Revocation {
        by: ctx.org.id.clone(),
        time: ctx.time,
        reason: reason.clone(),
        cascaded_from: None,
    });
    store::write(writes, keys::grant(id), &grant);
    let mut revoked = 1u64;
    let mut queue: Vec<GrantId> = super::grant_children(writes, id)?;
    while let Some(child_id) = queue.pop() {
        let mut child: Grant = store::read_required(writes, &keys::grant(child_id))?;
        if child.revoked.is_none() {
            child.revoked = Some(Revocation {
                by: ctx.org.id.clone(),
                time: ctx.time,
                reason: reason.clone(),
                cascaded_from: Some(id),
            });
            store::write(writes, keys::grant(child_id), &child);
            revoked += 1;
        }
        queue.extend(super::grant_children(writes, child_id)?);
    }
    Ok(revoked)
}

/// Arguments of a usage receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UseRecord {
    /// Grant used.
    pub grant: GrantId,
    /// Fields read.
    pub fields: Vec<String>,
    /// Purpose of the use.
    pub purpose: PurposeCode,
    /// Optional hash of the application's own request record, for audit.
    pub reference: Option<Hash>,
}

/// The grantee records a use; returns the grant's new use count.
pub(crate) fn record_use(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    u: UseRecord,
) -> CallResult<u64> {
    let grant = require_grant(writes, u.grant)?;
    if grant.grantee != ctx.org.id {
        reject!(
            NotGrantee,
            "{} is granted to {}, not {}",
            grant.id,
            grant.grantee,
            ctx.org.id
        );
    }
    let fields: Vec<&str> = u.fields.iter().map(String::as_str).collect();
    let deny = |reason: DenyReason, grant: &Grant| -> CallResult<u64> {
        reject!(
            UseNotAllowed,
            "{} does not allow this use now: {} — {}",
            grant.id,
            reason.name(),
            reason.explain(grant, &fields, &u.purpose, ctx.time)
        )
    };
    if fields.is_empty() {
        reject!(InvalidArgument, "name at least one field used");
    }
    if let Err(reason) = evaluate_grant(&grant, &fields, &u.purpose, ctx.time) {
        return deny(reason, &grant);
    }
    let mut chain = vec![grant];
    while let Some(parent_id) = chain.last().and_then(|g| g.parent) {
        let parent: Grant = store::read_required(writes, &keys::grant(parent_id))?;
        if parent.max_uses.is_some_and(|max| parent.uses >= max) {
            return deny(DenyReason::UsesExhausted, &parent);
        }
        chain.push(parent);
    }
    let uses = chain[0].uses + 1;
    for mut g in chain {
        g.uses += 1;
        store::write(writes, keys::grant(g.id), &g);
    }
    Ok(uses)
}
