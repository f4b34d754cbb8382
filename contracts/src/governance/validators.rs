//! The validator-set schedule: a change committed in block h is in force from block h+2.
//!
//! Two state keys hold the schedule:
//! - `validators/next`: the set that commits the next block (h+1, in the state after block h);
//! - `validators/after`: the set that commits block h+2.
//!
//! At the start of block h+1, `next := after` ([`shift`]); governance actions in block h+1 then
//! rewrite `after` ([`refresh_after`]) from the organisation table, so they commit block h+3.
//! At genesis both keys hold the genesis set. The node fills `Header.validator_set_hash` of
//! block h+1 from [`validator_set_for_next_block`] on the state after h, and
//! `next_validator_set_hash` from the same function on the state after h+1.
//!
//! Entries are sorted by key; only active organisations with a validator spec appear.

use gongzhi_ledger::{PublicKey, StateReader, Validator, ValidatorId, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::error::{reject, CallResult, ContractError};
use crate::governance::org_ids;
use crate::keys;
use crate::store::{self, Writes};
use crate::types::OrgId;

/// One validator in the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    /// Consensus key.
    pub key: PublicKey,
    /// Voting power.
    pub power: u64,
    /// The organisation running it.
    pub org: OrgId,
}

/// The validators the organisation table defines now, sorted by key.
pub(crate) fn from_org_table<S: StateReader + ?Sized>(
    state: &S,
) -> Result<Vec<ValidatorEntry>, ContractError> {
    let mut entries = Vec::new();
    for id in org_ids(state)? {
        let org =
            store::read_required::<crate::governance::Organisation, _>(state, &keys::org(&id))?;
        if let (Some(spec), true) = (org.validator, org.is_active()) {
            entries.push(ValidatorEntry {
                key: spec.key,
                power: spec.power,
                org: org.id,
            });
        }
    }
    entries.sort_by_key(|e| e.key);
    Ok(entries)
}

/// Recompute `validators/after` from the organisation table; fails if it would be empty.
pub(crate) fn refresh_after(writes: &mut Writes<'_>) -> CallResult<()> {
    let entries = from_org_table(writes)?;
    if entries.is_empty() {
        reject!(
            NoValidatorsLeft,
            "this change would leave no active validator; admit or reinstate a validator first"
        );
    }
    if let Err(e) = to_validator_set(&entries) {
        reject!(
            InvalidArgument,
            "the resulting validator set is not valid: {e}"
        );
    }
    store::write(writes, keys::VALIDATORS_AFTER.to_vec(), &entries);
    Ok(())
}

/// Start of a block: the set scheduled for "after next" becomes "next".
pub(crate) fn shift(writes: &mut Writes<'_>) -> Result<(), ContractError> {
    let next = writes.get(keys::VALIDATORS_NEXT)?;
    let after = writes.get(keys::VALIDATORS_AFTER)?;
    if next != after {
        match after {
            Some(bytes) => writes.set(keys::VALIDATORS_NEXT.to_vec(), bytes),
            None => {
                return Err(ContractError::Corrupt {
                    key: keys::display(keys::VALIDATORS_AFTER),
                    reason: "validator schedule missing".into(),
                })
            }
        }
    }
    Ok(())
}

/// Validators that commit the next block, as stored.
pub fn entries_for_next_block<S: StateReader + ?Sized>(
    state: &S,
) -> Result<Vec<ValidatorEntry>, ContractError> {
    store::read_required(state, keys::VALIDATORS_NEXT)
}

/// Given the state after block h, the validator set that commits block h+1.
pub fn validator_set_for_next_block<S: StateReader + ?Sized>(
    state: &S,
) -> Result<ValidatorSet, ContractError> {
    to_validator_set(&entries_for_next_block(state)?)
}

/// Build the consensus crate's set from schedule entries.
pub fn to_validator_set(entries: &[ValidatorEntry]) -> Result<ValidatorSet, ContractError> {
    if entries.is_empty() {
        return Err(ContractError::InvalidValidatorSet("no validators".into()));
    }
    let validators = entries
        .iter()
        .map(|e| Validator {
            id: ValidatorId(e.key.0),
            power: e.power,
        })
        .collect();
    ValidatorSet::new(validators).map_err(|e| ContractError::InvalidValidatorSet(e.to_string()))
}
