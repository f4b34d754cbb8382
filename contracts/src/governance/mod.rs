//! Governance: organisations, their roles and keys, parameters, the purpose taxonomy and the
//! civility reason catalogue; changed only by proposals ([`proposals`]).
//!
//! Invariants:
//! - every operator key maps (`signer/<key>`) to exactly one non-removed organisation, and
//!   every key of a non-removed organisation is mapped; removing an org unmaps its keys;
//! - `org-status/<id>` always equals the `status` of `org/<id>` ([`save_org`] writes both);
//! - an organisation has the `Validator` role exactly when it has a [`ValidatorSpec`];
//! - organisation ids are never reused (removed organisations stay as records).

pub mod proposals;
pub mod validators;

use gongzhi_ledger::{PublicKey, StateReader};
use serde::{Deserialize, Serialize};

use crate::error::{reject, CallResult, ContractError};
use crate::keys;
use crate::store::{self, Writes};
use crate::types::{OrgId, PurposeCode, ReasonCode};

/// What kind of body an organisation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrgKind {
    /// 街道办事处.
    StreetOffice,
    /// 物业服务企业.
    PropertyManager,
    /// A city or district department (民政局, 卫健委, 公安分局…).
    CityDepartment,
    /// 审计局.
    Auditor,
    /// 社区服务站.
    ServicePoint,
}

impl OrgKind {
    /// Every kind with its configuration name.
    pub const NAMES: &'static [(&'static str, OrgKind)] = &[
        ("street-office", OrgKind::StreetOffice),
        ("property-manager", OrgKind::PropertyManager),
        ("city-department", OrgKind::CityDepartment),
        ("auditor", OrgKind::Auditor),
        ("service-point", OrgKind::ServicePoint),
    ];

    /// Parse a configuration name.
    pub fn parse(name: &str) -> Option<OrgKind> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
    }
}

/// What an organisation may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Runs a validator; proposes and approves governance proposals.
    Validator,
    /// Owns datasets, requests and receives grants.
    Member,
    /// Awards civility points.
    Issuer,
    /// Redeems civility points.
    ServicePoint,
    /// Read-only auditor.
    Auditor,
}

impl Role {
    /// Every role with its configuration name.
    pub const NAMES: &'static [(&'static str, Role)] = &[
        ("validator", Role::Validator),
        ("member", Role::Member),
        ("issuer", Role::Issuer),
        ("service-point", Role::ServicePoint),
        ("auditor", Role::Auditor),
    ];

    /// Parse a configuration name.
    pub fn parse(name: &str) -> Option<Role> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
    }
}

/// Lifecycle of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrgStatus {
    /// May sign txs; counts in governance; may receive grants.
    Active,
    /// Temporarily barred: its txs fail, its grants are denied, it leaves the validator set.
    Suspended,
    /// Permanently out; its keys are unmapped; its id is never reused.
    Removed,
}

/// A validator's consensus key and voting power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSpec {
    /// Consensus (validator) key.
    pub key: PublicKey,
    /// Voting power, at least 1.
    pub power: u64,
}

/// A member of the consortium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// Short slug.
    pub id: OrgId,
    /// Kind of body.
    pub kind: OrgKind,
    /// Display name (any language).
    pub name: String,
    /// Roles, sorted.
    pub roles: Vec<Role>,
    /// Operator keys that sign its txs.
    pub operator_keys: Vec<PublicKey>,
    /// Present exactly when it has the validator role.
    pub validator: Option<ValidatorSpec>,
    /// Keys of its non-voting (observer) nodes; with the validator key, the only node
    /// identities its peers accept.
    pub node_keys: Vec<PublicKey>,
    /// Points per quota period if it is an issuer (`None`: the `default_issuer_quota` parameter).
    pub issuer_quota: Option<u64>,
    /// Lifecycle status.
    pub status: OrgStatus,
}

impl Organisation {
    /// Whether it holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether it is active.
    pub fn is_active(&self) -> bool {
        self.status == OrgStatus::Active
    }

    /// Voting power it holds now (0 unless an active validator).
    pub fn voting_power(&self) -> u64 {
        match (&self.validator, self.status) {
            (Some(v), OrgStatus::Active) => v.power,
            _ => 0,
        }
    }
}

/// Chain-wide parameters, changed by `SetParameter` proposals. In a genesis file every field
/// is optional and defaults to [`Parameters::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameters {
    /// How long a proposal stays open, in milliseconds of block time.
    pub proposal_duration_ms: u64,
    /// Length of an issuer quota period, in milliseconds; periods start at time 0.
    pub quota_period_ms: u64,
    /// Points per period for issuers without their own quota.
    pub default_issuer_quota: u64,
    /// Most fields in one dataset.
    pub max_fields_per_dataset: u32,
    /// Largest delegation depth a grant may carry.
    pub max_delegation_depth: u8,
    /// Longest free-text argument (names, justifications, reasons), in bytes.
    pub max_text_bytes: u32,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            proposal_duration_ms: 7 * 24 * 3600 * 1000,
            quota_period_ms: 30 * 24 * 3600 * 1000,
            default_issuer_quota: 10_000,
            max_fields_per_dataset: 64,
            max_delegation_depth: 4,
            max_text_bytes: 2048,
        }
    }
}

/// One parameter change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterChange {
    /// See [`Parameters::proposal_duration_ms`] (at least 1 minute).
    ProposalDurationMs(u64),
    /// See [`Parameters::quota_period_ms`] (at least 1 hour).
    QuotaPeriodMs(u64),
    /// See [`Parameters::default_issuer_quota`].
    DefaultIssuerQuota(u64),
    /// See [`Parameters::max_fields_per_dataset`] (1..=256).
    MaxFieldsPerDataset(u32),
    /// See [`Parameters::max_delegation_depth`] (0..=16).
    MaxDelegationDepth(u8),
    /// See [`Parameters::max_text_bytes`] (64..=65536).
    MaxTextBytes(u32),
}

impl Parameters {
    /// Every out-of-range value, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let changes = [
            ParameterChange::ProposalDurationMs(self.proposal_duration_ms),
            ParameterChange::QuotaPeriodMs(self.quota_period_ms),
            ParameterChange::MaxFieldsPerDataset(self.max_fields_per_dataset),
            ParameterChange::MaxDelegationDepth(self.max_delegation_depth),
            ParameterChange::MaxTextBytes(self.max_text_bytes),
        ];
        let mut scratch = self.clone();
        for change in &changes {
            if let Err(crate::error::CallError::Rule(e)) = scratch.apply(change) {
                problems.push(e.message);
            }
        }
        problems
    }

    /// Apply a change, checking its range.
    pub(crate) fn apply(&mut self, change: &ParameterChange) -> CallResult<()> {
        match *change {
            ParameterChange::ProposalDurationMs(v) if v >= 60_000 => self.proposal_duration_ms = v,
            ParameterChange::QuotaPeriodMs(v) if v >= 3_600_000 => self.quota_period_ms = v,
            ParameterChange::DefaultIssuerQuota(v) => self.default_issuer_quota = v,
            ParameterChange::MaxFieldsPerDataset(v) if (1..=256).contains(&v) => self.max_fields_per_dataset = v,
            ParameterChange::MaxDelegationDepth(v) if v <= 16 => self.max_delegation_depth = v,
            ParameterChange::MaxTextBytes(v) if (64..=65_536).contains(&v) => self.max_text_bytes = v,
            ref other => reject!(
                InvalidParameter,
                "{other:?} is out of range (proposal duration ≥ 60000 ms, quota period ≥ 3600000 ms, \
                 max fields 1-256, max delegation depth ≤ 16, max text 64-65536 bytes)"
            ),
        }
        Ok(())
    }
}

/// A purpose of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    /// Code used in grants and checks.
    pub code: PurposeCode,
    /// Display label.
    pub label: String,
}

/// A reason of the civility catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Code used in awards.
    pub code: ReasonCode,
    /// Display label.
    pub label: String,
    /// Most points one award for this reason may give.
    pub max_points: u64,
}

/// The current parameters.
pub fn parameters<S: StateReader + ?Sized>(state: &S) -> Result<Parameters, ContractError> {
    store::read_required(state, keys::PARAMETERS)
}

/// An organisation, if it exists.
pub fn get_org<S: StateReader + ?Sized>(
    state: &S,
    id: &OrgId,
) -> Result<Option<Organisation>, ContractError> {
    store::read(state, &keys::org(id))
}

/// An organisation's status, if it exists: one small read, where [`get_org`] decodes the whole
/// record with all its keys.
pub fn org_status<S: StateReader + ?Sized>(
    state: &S,
    id: &OrgId,
) -> Result<Option<OrgStatus>, ContractError> {
    store::read(state, &keys::org_status(id))
}

/// Every organisation id, in admission order.
pub fn org_ids<S: StateReader + ?Sized>(state: &S) -> Result<Vec<OrgId>, ContractError> {
    Ok(store::read(state, keys::ORG_LIST)?.unwrap_or_default())
}

/// The organisation an operator key signs for (removed organisations' keys are unmapped).
pub fn org_of_signer<S: StateReader + ?Sized>(
    state: &S,
    key: &PublicKey,
) -> Result<Option<OrgId>, ContractError> {
    store::read(state, &keys::signer(key))
}

/// The organisation `id`, or `UNKNOWN_ORG`.
pub(crate) fn require_org(writes: &Writes<'_>, id: &OrgId) -> CallResult<Organisation> {
    match get_org(writes, id)? {
        Some(org) => Ok(org),
        None => reject!(
            UnknownOrg,
            "no organisation {id:?}; list organisations to find its id"
        ),
    }
}

/// Write an organisation and its status key.
pub(crate) fn save_org(writes: &mut Writes<'_>, org: &Organisation) {
    store::write(writes, keys::org(&org.id), org);
    store::write(writes, keys::org_status(&org.id), &org.status);
}

/// Whether a purpose code is in the taxonomy.
pub fn purpose_exists<S: StateReader + ?Sized>(
    state: &S,
    code: &PurposeCode,
) -> Result<bool, ContractError> {
    let mut exists = false;
    state.visit(&keys::purpose(code), &mut |value| exists = value.is_some())?;
    Ok(exists)
}

/// A reason of the catalogue.
pub fn get_reason<S: StateReader + ?Sized>(
    state: &S,
    code: &ReasonCode,
) -> Result<Option<Reason>, ContractError> {
    store::read(state, &keys::reason(code))
}

/// Reject free text longer than the parameter allows.
pub(crate) fn check_text(params: &Parameters, what: &str, text: &str) -> CallResult<()> {
    if text.len() > params.max_text_bytes as usize {
        reject!(
            InvalidArgument,
            "{what} is {} bytes; the limit is {} (parameter max_text_bytes)",
            text.len(),
            params.max_text_bytes
        );
    }
    Ok(())
}
