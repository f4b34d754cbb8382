//! The validator set of one height and the weighted proposer rotation.
//!
//! Invariants (enforced by [`ValidatorSet::new`], also on deserialisation):
//! validators are sorted by id, ids are unique, every power is non-zero, and
//! the total power fits in `u64`.
//!
//! Proposer selection is a deterministic weighted round-robin: at construction
//! the set computes a *schedule* with the smooth weighted round-robin algorithm
//! (the one CometBFT's priority rotation is built on) over the powers, divided
//! by their gcd and, if the total exceeds [`SCHEDULE_SLOTS`], scaled down to
//! that many slots (every validator keeps at least one slot). The proposer of
//! `(height, round)` is `schedule[(height + round) mod len]`: each validator
//! proposes in proportion to its power, rounds of one height rotate through
//! the validators, and every node computes the same answer from the set alone.

use serde::{Deserialize, Serialize};

use crate::error::ConsensusError;
use crate::quorum;
use crate::types::{Height, Round, ValidatorId};

/// Upper bound on the proposer schedule length before scaling.
pub const SCHEDULE_SLOTS: u64 = 1024;

/// A validator and its voting power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Validator {
    /// Public key.
    pub id: ValidatorId,
    /// Voting power, > 0.
    pub power: u64,
}

/// The validators of one height. See the module doc for its invariants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Validator>", into = "Vec<Validator>")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    schedule: Vec<u32>,
}

impl TryFrom<Vec<Validator>> for ValidatorSet {
    type Error = ConsensusError;
    fn try_from(validators: Vec<Validator>) -> Result<Self, Self::Error> {
        ValidatorSet::new(validators)
    }
}

impl From<ValidatorSet> for Vec<Validator> {
    fn from(set: ValidatorSet) -> Self {
        set.validators
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl ValidatorSet {
    /// Builds a set; validators are sorted by id. Rejects an empty list,
    /// duplicate ids, zero power and a total power that overflows.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ConsensusError> {
        if validators.is_empty() {
            return Err(ConsensusError::EmptyValidatorSet);
        }
        validators.sort_by_key(|v| v.id);
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ConsensusError::ZeroPower(v.id));
            }
            if i > 0 && validators[i - 1].id == v.id {
                return Err(ConsensusError::DuplicateValidator(v.id));
            }
            total = total
                .checked_add(v.power)
                .ok_or(ConsensusError::TotalPowerOverflow)?;
        }
        let schedule = Self::build_schedule(&validators, total);
        Ok(ValidatorSet {
            validators,
            total_power: total,
            schedule,
        })
    }

    /// Smooth weighted round-robin over (possibly scaled) weights.
    fn build_schedule(validators: &[Validator], total: u64) -> Vec<u32> {
        let divisor = validators.iter().fold(0, |g, v| gcd(g, v.power));
        let weights: Vec<i128> = validators
            .iter()
            .map(|v| {
                let w = v.power / divisor.max(1);
                let reduced_total = total / divisor.max(1);
                if reduced_total <= SCHEDULE_SLOTS {
                    i128::from(w)
                } else {
                    let scaled =
                        u128::from(v.power) * u128::from(SCHEDULE_SLOTS) / u128::from(total);
                    i128::try_from(scaled.max(1)).unwrap_or(1)
                }
            })
            .collect();
        let len: i128 = weights.iter().sum();
        let mut current = vec![0i128; validators.len()];
        let mut schedule = Vec::new();
        for _ in 0..len {
            let mut best = 0usize;
            for (i, w) in weights.iter().enumerate() {
                current[i] += w;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= len;
            schedule.push(u32::try_from(best).unwrap_or(0));
        }
        schedule
    }

    /// Validators sorted by id.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false for a constructed set; present for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of all voting powers.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Position of `id` in the sorted list.
    pub fn index_of(&self, id: &ValidatorId) -> Option<usize> {
        self.validators.binary_search_by(|v| v.id.cmp(id)).ok()
    }

    /// The validator with key `id`.
    pub fn get(&self, id: &ValidatorId) -> Option<&Validator> {
        self.index_of(id).map(|i| &self.validators[i])
    }

    /// Voting power of `id`, 0 if not a member.
    pub fn power_of(&self, id: &ValidatorId) -> u64 {
        self.get(id).map_or(0, |v| v.power)
    }

    /// True iff `power` is more than 2/3 of the total (2f+1).
    pub fn is_quorum(&self, power: u64) -> bool {
        quorum::is_quorum(power, self.total_power)
    }

    /// True iff `power` is more than 1/3 of the total (f+1).
    pub fn is_one_third_plus(&self, power: u64) -> bool {
        quorum::is_one_third_plus(power, self.total_power)
    }

    /// Smallest quorum power.
    pub fn quorum_threshold(&self) -> u64 {
        quorum::quorum_threshold(self.total_power)
    }

    /// Smallest power above one third.
    pub fn one_third_plus_threshold(&self) -> u64 {
        quorum::one_third_plus_threshold(self.total_power)
    }

    /// The proposer schedule as indexes into [`Self::validators`].
    pub fn proposer_schedule(&self) -> &[u32] {
        &self.schedule
    }

    /// The proposer of `(height, round)`: `proposer(h, r)` in the paper.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        let len = self.schedule.len().max(1) as u128;
        let slot = (u128::from(height.0) + u128::from(round.0)) % len;
        let index = usize::try_from(slot)
            .ok()
            .and_then(|s| self.schedule.get(s))
            .map_or(0, |&i| i as usize);
        &self.validators[index.min(self.validators.len() - 1)]
    }
}
