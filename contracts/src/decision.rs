//! The authorisation decision: may `grantee` use `fields` of `dataset` for `purpose` at `time`?
//!
//! [`check`] is a pure function of the state and its arguments: default deny, every denial
//! carries a [`DenyReason`] (stable code and name) and a sentence saying what to do, every
//! allow names the grants that allow it.
//!
//! How grants combine: one grant must cover *all* requested fields and the purpose (grants are
//! not unioned, so each allow is explained by a single grant's terms). Every grant that allows
//! on its own is listed, lowest id first; a usage receipt should name the first.
//!
//! Which denial is reported: each grant of the grantee on the dataset is evaluated against
//! the conditions below, in order, stopping at the first that fails; the grant that got
//! furthest down the list is the "closest" and its reason is reported (ties: lowest id).
//! The order, farthest first: revoked, purpose not covered, field not covered, awaiting
//! co-approval, not yet valid, expired, uses exhausted (the grant's own or an ancestor's).
//!
//! Cost: reads are the grantee's status, the purpose, the access index of the pair (its head
//! with the newest ids, then each sealed chunk of 64, `access/<grantee>/<dataset>[/<chunk>]`)
//! and the candidate grants (plus ancestors of delegated candidates). The dataset is read only
//! to tell an unknown dataset or field from a missing grant, i.e. only on those denial paths.
//!
//! One evaluation, two sources: [`check`] reads and decodes those values from a state;
//! [`CheckIndex::check`](crate::CheckIndex::check) takes them already decoded from memory.
//! Both run [`decide`] over the `DecisionReads` trait, and each grant's own terms go through
//! `evaluate_terms` over the `TermsView` trait (a decoded [`Grant`], or the index's
//! pre-decoded terms), so the logic and the order of the conditions live only here.

use std::borrow::Cow;
use std::fmt;

use gongzhi_ledger::{StateReader, Timestamp};

use crate::error::ContractError;
use crate::governance::{purpose_exists, OrgStatus};
use crate::grants::{access_chunks, get_dataset, Dataset, Grant};
use crate::keys;
use crate::store;
use crate::types::{DatasetId, GrantId, OrgId, PurposeCode};

macro_rules! deny_reasons {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// Why a check was denied.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum DenyReason {
            $($(#[$doc])* $variant,)*
        }

        impl DenyReason {
            /// Every reason, in code order.
            pub const ALL: &'static [DenyReason] = &[$(DenyReason::$variant,)*];

            /// Stable numeric code.
            pub fn code(self) -> u32 {
                match self { $(DenyReason::$variant => $code,)* }
            }

            /// Stable SCREAMING_SNAKE name.
            pub fn name(self) -> &'static str {
                match self { $(DenyReason::$variant => $name,)* }
            }
        }
    };
}

deny_reasons! {
    /// The grantee is not an organisation.
    UnknownGrantee = 1, "UNKNOWN_GRANTEE";
    /// The grantee is suspended.
    GranteeSuspended = 2, "GRANTEE_SUSPENDED";
    /// The grantee was removed.
    GranteeRemoved = 3, "GRANTEE_REMOVED";
    /// The purpose is not in the taxonomy.
    UnknownPurpose = 4, "UNKNOWN_PURPOSE";
    /// The dataset is not registered.
    UnknownDataset = 5, "UNKNOWN_DATASET";
    /// A requested field is not in the dataset.
    UnknownField = 6, "UNKNOWN_FIELD";
    /// No field was requested.
    NoFieldsRequested = 7, "NO_FIELDS_REQUESTED";
    /// The grantee has no grant on the dataset.
    NoGrant = 8, "NO_GRANT";
    /// The closest grant is revoked.
    Revoked = 9, "REVOKED";
    /// The closest grant does not cover the purpose.
    PurposeNotCovered = 10, "PURPOSE_NOT_COVERED";
    /// The closest grant does not cover every requested field.
    FieldNotCovered = 11, "FIELD_NOT_COVERED";
    /// The closest grant waits for its co-approver.
    AwaitingCoApproval = 12, "AWAITING_CO_APPROVAL";
    /// The closest grant is not valid yet.
    NotYetValid = 13, "NOT_YET_VALID";
    /// The closest grant has expired.
    Expired = 14, "EXPIRED";
    /// The closest grant (or an ancestor) has used up its uses.
    UsesExhausted = 15, "USES_EXHAUSTED";
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DenyReason {
    /// How close a grant failing with this reason came to allowing (higher is closer).
    fn closeness(self) -> u8 {
        match self {
            DenyReason::Revoked => 1,
            DenyReason::PurposeNotCovered => 2,
            DenyReason::FieldNotCovered => 3,
            DenyReason::AwaitingCoApproval => 4,
            DenyReason::NotYetValid => 5,
            DenyReason::Expired => 6,
            DenyReason::UsesExhausted => 7,
            _ => 0,
        }
    }

    /// A sentence about `grant` explaining this reason and what to do.
    pub fn explain(
        self,
        grant: &Grant,
        fields: &[&str],
        purpose: &PurposeCode,
        time: Timestamp,
    ) -> String {
        let id = grant.id;
        match self {
            DenyReason::Revoked => match &grant.revoked {
                Some(r) => format!(
                    "{id} was revoked by {} at {} ({}); request a new grant from {}",
                    r.by, r.time, r.reason, grant.grantor
                ),
                None => format!("{id} is revoked"),
            },
            DenyReason::PurposeNotCovered => format!(
                "{id} covers purposes [{}], not {purpose}; request access for {purpose}",
                grant
                    .purposes
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DenyReason::FieldNotCovered => {
                let missing: Vec<&str> = fields
                    .iter()
                    .copied()
                    .filter(|f| {
                        grant
                            .fields
                            .binary_search_by(|g| g.as_str().cmp(f))
                            .is_err()
                    })
                    .collect();
                format!(
                    "{id} does not cover field(s) {}; it covers {}",
                    missing.join(", "),
                    grant.fields.join(", ")
                )
            }
            DenyReason::AwaitingCoApproval => format!(
                "{id} waits for co-approval by {}; ask them to co-approve it",
                grant
                    .co_approver
                    .as_ref()
                    .map_or("its co-approver", |c| c.as_str())
            ),
            DenyReason::NotYetValid => {
                format!("{id} is valid from {}; it is now {time}", grant.valid_from)
            }
            DenyReason::Expired => format!(
                "{id} expired at {}; it is now {time}; ask {} to renew it",
                grant.valid_until, grant.grantor
            ),
            DenyReason::UsesExhausted => format!(
                "{id} has used {} of its {} uses; ask {} for a new grant",
                grant.uses,
                grant.max_uses.unwrap_or(0),
                grant.grantor
            ),
            other => format!("{id}: {}", other.name()),
        }
    }
}

/// Why a check was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Stable reason.
    pub reason: DenyReason,
    /// The closest grant, when the reason is about a grant.
    pub grant: Option<GrantId>,
    /// What is wrong and what to do.
    pub explanation: String,
}

/// The answer of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by each of these grants (lowest id first).
    Allow {
        /// Grants that each cover the request.
        grants: Vec<GrantId>,
    },
    /// Denied.
    Deny(Denial),
}

impl Decision {
    /// Whether it allows.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The denial reason, if denied.
    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Deny(d) => Some(d.reason),
        }
    }
}

/// A grant's terms as [`evaluate_terms`] reads them, with the request-dependent tests
/// (purpose, fields) answered by the view: so the order of the conditions lives in one place
/// whether the terms are a decoded [`Grant`] or the [`CheckIndex`](crate::CheckIndex)'s
/// pre-decoded form.
pub(crate) trait TermsView {
    /// Whether the grant is revoked.
    fn revoked(&self) -> bool;
    /// Whether the grant covers the requested purpose.
    fn covers_purpose(&self) -> bool;
    /// Whether the grant covers every requested field.
    fn covers_fields(&self) -> bool;
    /// Whether the grant is co-approved.
    fn co_approved(&self) -> bool;
    /// In force from (inclusive).
    fn valid_from(&self) -> Timestamp;
    /// In force until (exclusive).
    fn valid_until(&self) -> Timestamp;
    /// Whether the grant's own uses are used up.
    fn exhausted(&self) -> bool;
}

/// One grant's own terms (not its ancestors') for a use at `time`, in the documented order.
pub(crate) fn evaluate_terms<T: TermsView + ?Sized>(
    terms: &T,
    time: Timestamp,
) -> Result<(), DenyReason> {
    if terms.revoked() {
        return Err(DenyReason::Revoked);
    }
    if !terms.covers_purpose() {
        return Err(DenyReason::PurposeNotCovered);
    }
    if !terms.covers_fields() {
        return Err(DenyReason::FieldNotCovered);
    }
    if !terms.co_approved() {
        return Err(DenyReason::AwaitingCoApproval);
    }
    if time < terms.valid_from() {
        return Err(DenyReason::NotYetValid);
    }
    if time >= terms.valid_until() {
        return Err(DenyReason::Expired);
    }
    if terms.exhausted() {
        return Err(DenyReason::UsesExhausted);
    }
    Ok(())
}

/// A decoded [`Grant`] against one request.
struct GrantRequest<'a> {
    grant: &'a Grant,
    fields: &'a [&'a str],
    purpose: &'a PurposeCode,
}

impl TermsView for GrantRequest<'_> {
    fn revoked(&self) -> bool {
        self.grant.revoked.is_some()
    }

    fn covers_purpose(&self) -> bool {
        self.grant.purposes.binary_search(self.purpose).is_ok()
    }

    fn covers_fields(&self) -> bool {
        self.fields.iter().all(|f| {
            self.grant
                .fields
                .binary_search_by(|g| g.as_str().cmp(f))
                .is_ok()
        })
    }

    fn co_approved(&self) -> bool {
        self.grant.co_approved
    }

    fn valid_from(&self) -> Timestamp {
        self.grant.valid_from
    }

    fn valid_until(&self) -> Timestamp {
        self.grant.valid_until
    }

    fn exhausted(&self) -> bool {
        exhausted(self.grant)
    }
}

/// Whether `grant`'s own uses are used up.
fn exhausted(grant: &Grant) -> bool {
    grant.max_uses.is_some_and(|max| grant.uses >= max)
}

/// Evaluate one grant's own terms (not its ancestors') for a use at `time`.
pub fn evaluate_grant(
    grant: &Grant,
    fields: &[&str],
    purpose: &PurposeCode,
    time: Timestamp,
) -> Result<(), DenyReason> {
    evaluate_terms(
        &GrantRequest {
            grant,
            fields,
            purpose,
        },
        time,
    )
}

fn deny(reason: DenyReason, grant: Option<GrantId>, explanation: String) -> Decision {
    Decision::Deny(Denial {
        reason,
        grant,
        explanation,
    })
}

/// The reads a decision makes, so [`check`] over a state and
/// [`CheckIndex::check`](crate::decision_index::CheckIndex::check) share one evaluation
/// ([`decide`]) and differ only in where the values come from and in what form.
pub(crate) trait DecisionReads {
    /// The request's fields and purpose in the form this source's candidates are tested with.
    type Request;
    /// One entry of an access index as this source holds it.
    type Candidate: Clone;

    /// The grantee's status (`org-status/<id>`).
    fn org_status(&self, org: &OrgId) -> Result<Option<OrgStatus>, ContractError>;
    /// Whether `purpose/<code>` exists.
    fn purpose_exists(&self, purpose: &PurposeCode) -> Result<bool, ContractError>;
    /// The request prepared for [`DecisionReads::evaluate`].
    fn request(&self, fields: &[&str], purpose: &PurposeCode) -> Self::Request;
    /// The entries of the access index of (`grantee`, `dataset`), chunk by chunk, in order
    /// (no chunk if none; see [`access_chunks`]).
    fn candidates(
        &self,
        grantee: &OrgId,
        dataset: &DatasetId,
    ) -> Result<Vec<Cow<'_, [Self::Candidate]>>, ContractError>;
    /// The candidate's grant, which must exist (the index refers to it), with its own terms
    /// evaluated ([`evaluate_terms`]; ancestors are [`decide`]'s business).
    fn evaluate<'c>(
        &'c self,
        candidate: &'c Self::Candidate,
        request: &Self::Request,
        fields: &[&str],
        purpose: &PurposeCode,
        time: Timestamp,
    ) -> Result<Evaluated<'c>, ContractError>;
    /// The grant `id`, which must exist (a grant names it as parent).
    fn grant(&self, id: GrantId) -> Result<Cow<'_, Grant>, ContractError>;
    /// The dataset `id`, if registered.
    fn dataset(&self, id: &DatasetId) -> Result<Option<Cow<'_, Dataset>>, ContractError>;
}

/// One candidate grant evaluated on its own terms.
pub(crate) struct Evaluated<'c> {
    /// The id the access index lists it under.
    pub id: GrantId,
    /// Its parent, when delegated (the ancestors to check for used-up uses).
    pub parent: Option<GrantId>,
    /// The grant, for explanations.
    pub grant: Cow<'c, Grant>,
    /// Its own terms' outcome.
    pub outcome: Result<(), DenyReason>,
}

/// [`DecisionReads`] as point reads and decoding over a state.
struct StateReads<'a, S: ?Sized>(&'a S);

impl<S: StateReader + ?Sized> DecisionReads for StateReads<'_, S> {
    type Request = ();
    type Candidate = GrantId;

    fn org_status(&self, org: &OrgId) -> Result<Option<OrgStatus>, ContractError> {
        store::read(self.0, &keys::org_status(org))
    }

    fn purpose_exists(&self, purpose: &PurposeCode) -> Result<bool, ContractError> {
        purpose_exists(self.0, purpose)
    }

    fn request(&self, _fields: &[&str], _purpose: &PurposeCode) {}

    fn candidates(
        &self,
        grantee: &OrgId,
        dataset: &DatasetId,
    ) -> Result<Vec<Cow<'_, [GrantId]>>, ContractError> {
        Ok(access_chunks(self.0, grantee, dataset)?
            .into_iter()
            .map(Cow::Owned)
            .collect())
    }

    fn evaluate<'c>(
        &'c self,
        candidate: &'c GrantId,
        _request: &(),
        fields: &[&str],
        purpose: &PurposeCode,
        time: Timestamp,
    ) -> Result<Evaluated<'c>, ContractError> {
        let grant: Grant = store::read_required(self.0, &keys::grant(*candidate))?;
        let outcome = evaluate_grant(&grant, fields, purpose, time);
        Ok(Evaluated {
            id: *candidate,
            parent: grant.parent,
            grant: Cow::Owned(grant),
            outcome,
        })
    }

    fn grant(&self, id: GrantId) -> Result<Cow<'_, Grant>, ContractError> {
        store::read_required(self.0, &keys::grant(id)).map(Cow::Owned)
    }

    fn dataset(&self, id: &DatasetId) -> Result<Option<Cow<'_, Dataset>>, ContractError> {
        Ok(get_dataset(self.0, id)?.map(Cow::Owned))
    }
}

/// The first exhausted ancestor of a grant delegated from `parent`, if any.
fn exhausted_ancestor<R: DecisionReads + ?Sized>(
    reads: &R,
    parent: GrantId,
) -> Result<Option<Cow<'_, Grant>>, ContractError> {
    let mut next = Some(parent);
    while let Some(id) = next {
        let parent = reads.grant(id)?;
        if exhausted(&parent) {
            return Ok(Some(parent));
        }
        next = parent.parent;
    }
    Ok(None)
}

/// May `grantee` use `fields` of `dataset` for `purpose` at `time`? See the module docs.
pub fn check<S: StateReader + ?Sized, F: AsRef<str>>(
    state: &S,
    grantee: &OrgId,
    dataset: &DatasetId,
    fields: &[F],
    purpose: &PurposeCode,
    time: Timestamp,
) -> Result<Decision, ContractError> {
    decide(&StateReads(state), grantee, dataset, fields, purpose, time)
}

/// The decision itself, over any [`DecisionReads`]: the one place its logic lives.
pub(crate) fn decide<R: DecisionReads + ?Sized, F: AsRef<str>>(
    reads: &R,
    grantee: &OrgId,
    dataset: &DatasetId,
    fields: &[F],
    purpose: &PurposeCode,
    time: Timestamp,
) -> Result<Decision, ContractError> {
    let fields: Vec<&str> = fields.iter().map(AsRef::as_ref).collect();
    if fields.is_empty() {
        return Ok(deny(
            DenyReason::NoFieldsRequested,
            None,
            "name at least one field to check".into(),
        ));
    }
    match reads.org_status(grantee)? {
        None => {
            return Ok(deny(
                DenyReason::UnknownGrantee,
                None,
                format!("no organisation {grantee:?}"),
            ))
        }
        Some(OrgStatus::Suspended) => {
            return Ok(deny(
                DenyReason::GranteeSuspended,
                None,
                format!("{grantee} is suspended by governance; its grants are not in force"),
            ))
        }
        Some(OrgStatus::Removed) => {
            return Ok(deny(
                DenyReason::GranteeRemoved,
                None,
                format!("{grantee} was removed from the consortium"),
            ))
        }
        Some(OrgStatus::Active) => {}
    }
    if !reads.purpose_exists(purpose)? {
        return Ok(deny(
            DenyReason::UnknownPurpose,
            None,
            format!("purpose {purpose} is not in the taxonomy"),
        ));
    }
    let request = reads.request(&fields, purpose);
    let chunks = reads.candidates(grantee, dataset)?;
    let mut allowed = Vec::new();
    let mut closest: Option<(DenyReason, Cow<'_, Grant>)> = None;
    for candidate in chunks.iter().flat_map(|chunk| chunk.iter()) {
        let Evaluated {
            id,
            parent,
            grant,
            outcome,
        } = reads.evaluate(candidate, &request, &fields, purpose, time)?;
        let outcome = match (outcome, parent) {
            (Ok(()), Some(parent)) => match exhausted_ancestor(reads, parent)? {
                Some(ancestor) => Err((DenyReason::UsesExhausted, ancestor)),
                None => Ok(()),
            },
            (Ok(()), None) => Ok(()),
            (Err(reason), _) => Err((reason, grant)),
        };
        match outcome {
            Ok(()) => allowed.push(id),
            Err((reason, grant)) => {
                if closest
                    .as_ref()
                    .is_none_or(|(best, _)| reason.closeness() > best.closeness())
                {
                    closest = Some((reason, grant));
                }
            }
        }
    }
    if !allowed.is_empty() {
        return Ok(Decision::Allow { grants: allowed });
    }
    if closest
        .as_ref()
        .is_none_or(|(reason, _)| *reason == DenyReason::FieldNotCovered)
    {
        match reads.dataset(dataset)? {
            None => {
                return Ok(deny(
                    DenyReason::UnknownDataset,
                    None,
                    format!("no dataset {dataset:?}; list datasets to find its id"),
                ))
            }
            Some(ds) => {
                if let Some(field) = fields.iter().find(|f| ds.field(f).is_none()) {
                    return Ok(deny(
                        DenyReason::UnknownField,
                        None,
                        format!("dataset {dataset} has no field {field:?}"),
                    ));
                }
            }
        }
    }
    Ok(match closest {
        None => deny(
            DenyReason::NoGrant,
            None,
            format!("{grantee} holds no grant on {dataset}; file an access request with its owner"),
        ),
        Some((reason, grant)) => {
            let explanation = reason.explain(&grant, &fields, purpose, time);
            deny(reason, Some(grant.id), explanation)
        }
    })
}
