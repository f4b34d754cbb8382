//! The crate's one error type.
//!
//! Errors are for the host's mistakes (a malformed validator set) and for
//! signatures the safety module refuses. Peer misbehaviour is never an error:
//! the core drops such messages or turns them into evidence.

use crate::types::{Height, Round, Step, ValidatorId};

/// Errors of `gongzhi-consensus`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// A validator set needs at least one validator.
    #[error("validator set is empty")]
    EmptyValidatorSet,
    /// The same key appears twice.
    #[error("validator {0:?} appears more than once")]
    DuplicateValidator(ValidatorId),
    /// Zero voting power is not allowed (remove the validator instead).
    #[error("validator {0:?} has zero voting power")]
    ZeroPower(ValidatorId),
    /// The sum of voting powers does not fit in `u64`.
    #[error("total voting power overflows u64")]
    TotalPowerOverflow,
    /// The safety module refused to sign: it already signed a message at a
    /// later position, or a different message at the same position.
    #[error(
        "refusing to sign {step:?} at height {height:?} round {round:?}: \
         already signed {signed_step:?} at height {signed_height:?} round {signed_round:?}"
    )]
    SigningRefused {
        /// Height of the refused message.
        height: Height,
        /// Round of the refused message.
        round: Round,
        /// Step of the refused message.
        step: Step,
        /// Height of the last signed message.
        signed_height: Height,
        /// Round of the last signed message.
        signed_round: Round,
        /// Step of the last signed message.
        signed_step: Step,
    },
    /// The safety module signs only for its own key.
    #[error("message is for validator {requested:?}, but this signer is {ours:?}")]
    WrongSigner {
        /// Validator named in the message.
        requested: ValidatorId,
        /// This safety module's validator.
        ours: ValidatorId,
    },
}
