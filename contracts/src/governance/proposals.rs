//! Governance proposals: created and approved by validator organisations; a proposal passes
//! when its approvers hold strictly more than 2/3 of the active validators' power (taken from
//! the organisation table at the moment of each approval), strictly before its deadline
//! (block time). A passing proposal's action is applied in the same tx; if the action is no
//! longer valid then, the approving tx fails and the proposal stays open.
//!
//! Invariants: a proposal is applied at most once; approvals are by distinct organisations;
//! every action is validated in full when proposed (a dry run on a throw-away overlay), so a
//! proposal that could never apply is rejected up front.

use gongzhi_ledger::{Overlay, PublicKey, StateReader, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{reject, CallResult, ContractError};
use crate::execute::CallContext;
use crate::governance::{
    check_text, get_org, org_ids, parameters, require_org, save_org, validators, OrgKind,
    OrgStatus, Organisation, ParameterChange, Purpose, Reason, Role, ValidatorSpec,
};
use crate::keys;
use crate::store::{self, Writes};
use crate::types::{check_slug, OrgId, ProposalId, PurposeCode, ReasonCode};

/// An organisation to admit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSpec {
    /// New id (never used before).
    pub id: OrgId,
    /// Kind of body.
    pub kind: OrgKind,
    /// Display name.
    pub name: String,
    /// Roles other than `Validator` (that one comes with `validator`).
    pub roles: Vec<Role>,
    /// Operator keys (at least one).
    pub operator_keys: Vec<PublicKey>,
    /// Keys of its observer nodes.
    #[serde(default)]
    pub node_keys: Vec<PublicKey>,
    /// Validator key and power, if it runs a validator.
    pub validator: Option<ValidatorSpec>,
    /// Issuer quota per period, if not the default.
    pub issuer_quota: Option<u64>,
}

/// What a proposal does when it passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalAction {
    /// Admit a new organisation.
    AdmitOrg(OrgSpec),
    /// Remove an organisation for good (its keys stop working; its id is retired).
    RemoveOrg(OrgId),
    /// Suspend an active organisation.
    SuspendOrg(OrgId),
    /// Reinstate a suspended organisation.
    ReinstateOrg(OrgId),
    /// Make an org a validator, change its key or power (`Some`), or drop the role (`None`).
    SetValidator {
        /// The organisation.
        org: OrgId,
        /// New validator key and power.
        validator: Option<ValidatorSpec>,
    },
    /// Replace the non-validator roles of an organisation.
    SetRoles {
        /// The organisation.
        org: OrgId,
        /// New roles (must not include `Validator`; use `SetValidator`).
        roles: Vec<Role>,
    },
    /// Replace one operator key of an organisation.
    RotateKey {
        /// The organisation.
        org: OrgId,
        /// Key to retire.
        old: PublicKey,
        /// Key to register.
        new: PublicKey,
    },
    /// Change one parameter.
    SetParameter(ParameterChange),
    /// Set an issuer's own quota (`None`: back to the default).
    SetIssuerQuota {
        /// The issuer.
        org: OrgId,
        /// Points per period.
        quota: Option<u64>,
    },
    /// Add a purpose or change its label.
    SetPurpose(Purpose),
    /// Remove a purpose (checks naming it are denied from then on).
    RemovePurpose(PurposeCode),
    /// Add a reason or change its label or maximum.
    SetReason(Reason),
    /// Remove a reason (no new awards for it).
    RemoveReason(ReasonCode),
}

/// Lifecycle of a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalStatus {
    /// Collecting approvals until the deadline.
    Open,
    /// Passed and applied.
    Passed {
        /// Height of the block that applied it.
        height: u64,
        /// Its time.
        time: Timestamp,
    },
}

/// A governance proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Sequential id.
    pub id: ProposalId,
    /// Proposing organisation.
    pub proposer: OrgId,
    /// What it does.
    pub action: ProposalAction,
    /// Block time of creation.
    pub created: Timestamp,
    /// Approvals count only strictly before this time.
    pub deadline: Timestamp,
    /// Approving organisations, sorted.
    pub approvals: Vec<OrgId>,
    /// Open or passed. (An open proposal past its deadline is expired.)
    pub status: ProposalStatus,
}

/// Result of a propose or approve call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalProgress {
    /// The proposal.
    pub id: ProposalId,
    /// Power of its approvers.
    pub approved_power: u64,
    /// Power of all active validators.
    pub total_power: u64,
    /// Whether it passed (and was applied) in this tx.
    pub passed: bool,
}

const PROPOSAL_SEQUENCE: &str = "proposal";

/// A proposal, if it exists.
pub fn get_proposal<S: StateReader + ?Sized>(
    state: &S,
    id: ProposalId,
) -> Result<Option<Proposal>, ContractError> {
    store::read(state, &keys::proposal(id))
}

/// Number of proposals ever made (their ids are 1..=count).
pub fn proposal_count<S: StateReader + ?Sized>(state: &S) -> Result<u64, ContractError> {
    store::last_id(state, PROPOSAL_SEQUENCE)
}

fn require_validator_org(ctx: &CallContext, what: &str) -> CallResult<()> {
    if ctx.org.voting_power() == 0 {
        reject!(
            RoleRequired,
            "only active validator organisations may {what}; {} has no voting power",
            ctx.org.id
        );
    }
    Ok(())
}

/// Create a proposal; the proposer's approval counts at once.
pub(crate) fn propose(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    action: ProposalAction,
) -> CallResult<ProposalProgress> {
    require_validator_org(ctx, "propose")?;
    {
        let mut dry_run: Writes<'_> = Overlay::new(&*writes as &dyn StateReader);
        apply_action(&mut dry_run, ctx, &action)?;
    }
    let id = ProposalId(store::next_id(writes, PROPOSAL_SEQUENCE)?);
    let proposal = Proposal {
        id,
        proposer: ctx.org.id.clone(),
        action,
        created: ctx.time,
        deadline: ctx.time.plus_millis(ctx.params.proposal_duration_ms),
        approvals: vec![ctx.org.id.clone()],
        status: ProposalStatus::Open,
    };
    tally_and_apply(writes, ctx, proposal)
}

/// Approve an open proposal; applies it if the threshold is now met.
pub(crate) fn approve(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    id: ProposalId,
) -> CallResult<ProposalProgress> {
    require_validator_org(ctx, "approve proposals")?;
    let Some(mut proposal) = get_proposal(writes, id)? else {
        reject!(UnknownProposal, "no {id}; list proposals to find its id");
    };
    if let ProposalStatus::Passed { height, .. } = proposal.status {
        reject!(
            ProposalClosed,
            "{id} already passed at height {height}; nothing to approve"
        );
    }
    if ctx.time >= proposal.deadline {
        reject!(
            ProposalExpired,
            "{id} expired at {}; make a new proposal",
            proposal.deadline
        );
    }
    match proposal.approvals.binary_search(&ctx.org.id) {
        Ok(_) => reject!(AlreadyApproved, "{} already approved {id}", ctx.org.id),
        Err(position) => proposal.approvals.insert(position, ctx.org.id.clone()),
    }
    tally_and_apply(writes, ctx, proposal)
}

fn tally_and_apply(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    mut proposal: Proposal,
) -> CallResult<ProposalProgress> {
    let (approved_power, total_power) = tally(writes, &proposal.approvals)?;
    let passed = u128::from(approved_power) * 3 > u128::from(total_power) * 2;
    if passed {
        apply_action(writes, ctx, &proposal.action)?;
        proposal.status = ProposalStatus::Passed {
            height: ctx.height,
            time: ctx.time,
        };
    }
    store::write(writes, keys::proposal(proposal.id), &proposal);
    Ok(ProposalProgress {
        id: proposal.id,
        approved_power,
        total_power,
        passed,
    })
}

/// (power of the approvers, power of all active validators), from the organisation table.
fn tally<S: StateReader + ?Sized>(
    state: &S,
    approvals: &[OrgId],
) -> Result<(u64, u64), ContractError> {
    let mut approved = 0u64;
    let mut total = 0u64;
    for id in org_ids(state)? {
        let power = get_org(state, &id)?.map_or(0, |org| org.voting_power());
        total = total.saturating_add(power);
        if approvals.binary_search(&id).is_ok() {
            approved = approved.saturating_add(power);
        }
    }
    Ok((approved, total))
}

/// Check that no organisation holds `key` as an operator or validator key.
fn require_key_unused(
    writes: &Writes<'_>,
    key: &PublicKey,
    except: Option<&OrgId>,
) -> CallResult<()> {
    if let Err(e) = key.check_usable() {
        reject!(InvalidArgument, "key {key} cannot be registered: {e}");
    }
    if let Some(owner) = crate::governance::org_of_signer(writes, key)? {
        reject!(
            KeyInUse,
            "key {key} is already an operator key of {owner}; generate a new key"
        );
    }
    for id in org_ids(writes)? {
        if Some(&id) == except {
            continue;
        }
        let org: Organisation = store::read_required(writes, &keys::org(&id))?;
        if org.validator.is_some_and(|v| v.key == *key) {
            reject!(
                KeyInUse,
                "key {key} is already the validator key of {id}; generate a new key"
            );
        }
    }
    Ok(())
}

fn check_roles(roles: &[Role]) -> CallResult<Vec<Role>> {
    if roles.contains(&Role::Validator) {
        reject!(
            InvalidArgument,
            "the validator role comes with a validator key and power; use SetValidator / the validator field"
        );
    }
    let mut sorted = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

fn check_validator_spec(spec: &Option<ValidatorSpec>) -> CallResult<()> {
    if spec.is_some_and(|v| v.power == 0) {
        reject!(
            InvalidArgument,
            "validator power must be at least 1; to stop validating, set the validator to none"
        );
    }
    Ok(())
}

fn with_validator_role(mut roles: Vec<Role>, validator: &Option<ValidatorSpec>) -> Vec<Role> {
    roles.retain(|r| *r != Role::Validator);
    if validator.is_some() {
        roles.push(Role::Validator);
        roles.sort();
    }
    roles
}

fn set_status(
    writes: &mut Writes<'_>,
    id: &OrgId,
    from: OrgStatus,
    to: OrgStatus,
) -> CallResult<()> {
    let mut org = require_org(writes, id)?;
    if org.status != from {
        reject!(
            OrgStatusConflict,
            "{id} is {:?}; this change needs it to be {from:?}",
            org.status
        );
    }
    org.status = to;
    save_org(writes, &org);
    Ok(())
}

/// Apply an action to the state (validating it fully).
fn apply_action(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    action: &ProposalAction,
) -> CallResult<()> {
    let mut validators_changed = false;
    match action {
        ProposalAction::AdmitOrg(spec) => {
            check_slug("organisation id", spec.id.as_str())?;
            check_text(&ctx.params, "organisation name", &spec.name)?;
            if get_org(writes, &spec.id)?.is_some() {
                reject!(
                    OrgExists,
                    "organisation id {} is taken (ids are never reused); pick another",
                    spec.id
                );
            }
            if spec.operator_keys.is_empty() {
                reject!(
                    InvalidArgument,
                    "organisation {} needs at least one operator key",
                    spec.id
                );
            }
            check_validator_spec(&spec.validator)?;
            let roles = with_validator_role(check_roles(&spec.roles)?, &spec.validator);
            let mut keys_seen = Vec::new();
            for key in spec
                .operator_keys
                .iter()
                .chain(spec.validator.iter().map(|v| &v.key))
            {
                if keys_seen.contains(key) {
                    reject!(
                        KeyInUse,
                        "key {key} is listed twice for {}; use distinct keys",
                        spec.id
                    );
                }
                keys_seen.push(*key);
                require_key_unused(writes, key, None)?;
            }
            for key in &spec.node_keys {
                if let Err(e) = key.check_usable() {
                    reject!(InvalidArgument, "node key {key} cannot be registered: {e}");
                }
            }
            let org = Organisation {
                id: spec.id.clone(),
                kind: spec.kind,
                name: spec.name.clone(),
                roles,
                operator_keys: spec.operator_keys.clone(),
                validator: spec.validator,
                node_keys: spec.node_keys.clone(),
                issuer_quota: spec.issuer_quota,
                status: OrgStatus::Active,
            };
            for key in &org.operator_keys {
                store::write(writes, keys::signer(key), &org.id);
            }
            save_org(writes, &org);
            let mut list = org_ids(writes)?;
            list.push(org.id.clone());
            store::write(writes, keys::ORG_LIST.to_vec(), &list);
            validators_changed = org.validator.is_some();
        }
        ProposalAction::RemoveOrg(id) => {
            let mut org = require_org(writes, id)?;
            if org.status == OrgStatus::Removed {
                reject!(OrgStatusConflict, "{id} is already removed");
            }
            for key in &org.operator_keys {
                writes.delete(keys::signer(key));
            }
            org.status = OrgStatus::Removed;
            save_org(writes, &org);
            validators_changed = true;
        }
        ProposalAction::SuspendOrg(id) => {
            set_status(writes, id, OrgStatus::Active, OrgStatus::Suspended)?;
            validators_changed = true;
        }
        ProposalAction::ReinstateOrg(id) => {
            set_status(writes, id, OrgStatus::Suspended, OrgStatus::Active)?;
            validators_changed = true;
        }
        ProposalAction::SetValidator { org: id, validator } => {
            check_validator_spec(validator)?;
            let mut org = require_org(writes, id)?;
            if let Some(spec) = validator {
                if org.validator.map(|v| v.key) != Some(spec.key) {
                    require_key_unused(writes, &spec.key, Some(id))?;
                }
            }
            org.validator = *validator;
            org.roles = with_validator_role(org.roles, validator);
            save_org(writes, &org);
            validators_changed = true;
        }
        ProposalAction::SetRoles { org: id, roles } => {
            let mut org = require_org(writes, id)?;
            org.roles = with_validator_role(check_roles(roles)?, &org.validator);
            save_org(writes, &org);
        }
        ProposalAction::RotateKey { org: id, old, new } => {
            let mut org = require_org(writes, id)?;
            let Some(position) = org.operator_keys.iter().position(|k| k == old) else {
                reject!(
                    UnknownKey,
                    "{id} has no operator key {old}; list the organisation to see its keys"
                );
            };
            require_key_unused(writes, new, None)?;
            org.operator_keys[position] = *new;
            writes.delete(keys::signer(old));
            if org.status != OrgStatus::Removed {
                store::write(writes, keys::signer(new), &org.id);
            }
            save_org(writes, &org);
        }
        ProposalAction::SetParameter(change) => {
            let mut params = parameters(writes)?;
            params.apply(change)?;
            store::write(writes, keys::PARAMETERS.to_vec(), &params);
        }
        ProposalAction::SetIssuerQuota { org: id, quota } => {
            let mut org = require_org(writes, id)?;
            if !org.has_role(Role::Issuer) {
                reject!(
                    RoleRequired,
                    "{id} is not an issuer; give it the issuer role first (SetRoles)"
                );
            }
            org.issuer_quota = *quota;
            save_org(writes, &org);
        }
        ProposalAction::SetPurpose(purpose) => {
            check_slug("purpose code", purpose.code.as_str())?;
            check_text(&ctx.params, "purpose label", &purpose.label)?;
            store::write(writes, keys::purpose(&purpose.code), purpose);
            store::sorted_insert(writes, keys::PURPOSE_LIST.to_vec(), purpose.code.clone())?;
        }
        ProposalAction::RemovePurpose(code) => {
            if writes.get(&keys::purpose(code))?.is_none() {
                reject!(UnknownPurpose, "purpose {code} is not in the taxonomy");
            }
            writes.delete(keys::purpose(code));
            store::sorted_remove(writes, keys::PURPOSE_LIST.to_vec(), code)?;
        }
        ProposalAction::SetReason(reason) => {
            check_slug("reason code", reason.code.as_str())?;
            check_text(&ctx.params, "reason label", &reason.label)?;
            if reason.max_points == 0 {
                reject!(
                    InvalidArgument,
                    "reason {} needs max_points of at least 1",
                    reason.code
                );
            }
            store::write(writes, keys::reason(&reason.code), reason);
            store::sorted_insert(writes, keys::REASON_LIST.to_vec(), reason.code.clone())?;
        }
        ProposalAction::RemoveReason(code) => {
            if writes.get(&keys::reason(code))?.is_none() {
                reject!(UnknownReason, "reason {code} is not in the catalogue");
            }
            writes.delete(keys::reason(code));
            store::sorted_remove(writes, keys::REASON_LIST.to_vec(), code)?;
        }
    }
    if validators_changed {
        validators::refresh_after(writes)?;
    }
    Ok(())
}
