//! The safety invariants the simulator checks after every step, one per
//! module, plus the shared [`Violation`] type. Each checker is fed by the
//! world as things happen (a decision, a signature, a delivery, an evidence
//! output) and answers `check` in constant or near-constant time.
//!
//! Only instances running honest code count as honest: byzantine validators
//! (including both instances of a twin pair) are the adversary.

pub mod agreement;
pub mod evidence_recorded;
pub mod heights_grow;
pub mod no_conflicting_signatures;
pub mod validity;

use std::fmt;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Invariant name (its module).
    pub invariant: &'static str,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// All checkers of one run.
#[derive(Debug, Default)]
pub struct Invariants {
    /// No two honest nodes decide different values at a height.
    pub agreement: agreement::Agreement,
    /// A decided value was proposed at that height.
    pub validity: validity::Validity,
    /// No honest signer signs conflicting messages; persist precedes send.
    pub signatures: no_conflicting_signatures::NoConflictingSignatures,
    /// Heights only grow.
    pub heights: heights_grow::HeightsGrow,
    /// Every equivocation an honest node saw became evidence.
    pub evidence: evidence_recorded::EvidenceRecorded,
}
