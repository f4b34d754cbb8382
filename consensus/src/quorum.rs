//! Quorum arithmetic over voting power.
//!
//! With total power `n`, at most `f` faulty where `n > 3f`:
//! - a *quorum* (the paper's `2f + 1`) is power `p` with `3p > 2n`;
//! - *one-third-plus* (the paper's `f + 1`) is power `p` with `3p > n`, enough
//!   to include at least one correct validator.
//!
//! Computed in `u128`, so no overflow for any `u64` powers. Checked against
//! the golden table `testdata/quorum.txt`.

/// True iff `power` is more than two thirds of `total` (the paper's 2f+1).
pub fn is_quorum(power: u64, total: u64) -> bool {
    3 * u128::from(power) > 2 * u128::from(total)
}

/// True iff `power` is more than one third of `total` (the paper's f+1).
pub fn is_one_third_plus(power: u64, total: u64) -> bool {
    3 * u128::from(power) > u128::from(total)
}

/// The smallest power that is a quorum of `total`.
pub fn quorum_threshold(total: u64) -> u64 {
    // floor(2n/3) + 1 ≤ n + 1 fits u64 except for n = u64::MAX, where it saturates.
    let t = 2 * u128::from(total) / 3 + 1;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The smallest power that is more than one third of `total`.
pub fn one_third_plus_threshold(total: u64) -> u64 {
    total / 3 + 1
}
