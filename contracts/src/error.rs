//! The crate's errors: [`ContractError`] for fatal failures, [`TxError`] for rule violations.
//!
//! Two types because they mean opposite things to the caller. A [`ContractError`] (storage
//! failure, corrupt state, invalid genesis) aborts the whole block: no node may commit it, since
//! another node might not see the same failure. A [`TxError`] is an ordinary, deterministic
//! outcome of a tx: it is recorded in the tx's [`Outcome::Failure`](gongzhi_ledger::Outcome)
//! and the block goes on.
//!
//! A [`TxError`] is an [`ErrorKind`] (the stable part: numeric code and SCREAMING_SNAKE name,
//! never renumbered or reused) plus a message built where the rule was broken, naming the
//! objects involved and what to do. Codes are grouped: 1xx tx envelope, 2xx governance,
//! 3xx datasets and grants, 4xx civility bank.

use std::fmt;

use gongzhi_ledger::LedgerError;

/// Fatal errors: the block cannot be executed at all.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The state backend failed.
    #[error("state read failed: {0}")]
    Storage(#[from] LedgerError),
    /// A stored value that does not decode or breaks an invariant.
    #[error("corrupt state at key {key}: {reason}")]
    Corrupt {
        /// The key, printed readably.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A genesis document that fails validation; lists every problem found.
    #[error("invalid genesis: {}", problems.join("; "))]
    InvalidGenesis {
        /// One sentence per problem.
        problems: Vec<String>,
    },
    /// The validator set could not be built from state.
    #[error("invalid validator set: {0}")]
    InvalidValidatorSet(String),
}

macro_rules! error_kinds {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal;)*) => {
        /// The stable identity of a rule violation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ErrorKind {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorKind {
            /// Every kind, in code order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            /// Stable numeric code (never reused).
            pub fn code(self) -> u32 {
                match self { $(ErrorKind::$variant => $code,)* }
            }

            /// Stable SCREAMING_SNAKE name.
            pub fn name(self) -> &'static str {
                match self { $(ErrorKind::$variant => $name,)* }
            }

            /// The kind with this code, if any.
            pub fn from_code(code: u32) -> Option<ErrorKind> {
                ErrorKind::ALL.iter().copied().find(|k| k.code() == code)
            }
        }
    };
}

error_kinds! {
    /// The tx names another chain.
    WrongChain = 100, "WRONG_CHAIN";
    /// The signer is not an operator key of any organisation.
    UnknownSigner = 101, "UNKNOWN_SIGNER";
    /// The nonce is not the signer's last nonce + 1.
    BadNonce = 102, "BAD_NONCE";
    /// The signer's organisation is suspended or removed.
    OrgNotActive = 103, "ORG_NOT_ACTIVE";
    /// The call bytes do not decode as a [`Call`](crate::Call).
    MalformedCall = 104, "MALFORMED_CALL";
    /// The signer's organisation lacks the role this call needs.
    RoleRequired = 105, "ROLE_REQUIRED";
    /// An argument is out of its allowed shape (id syntax, length, empty list…).
    InvalidArgument = 106, "INVALID_ARGUMENT";

    /// No organisation with this id.
    UnknownOrg = 200, "UNKNOWN_ORG";
    /// An organisation with this id already exists (ids are never reused).
    OrgExists = 201, "ORG_EXISTS";
    /// The key is already registered to an organisation.
    KeyInUse = 202, "KEY_IN_USE";
    /// No proposal with this id.
    UnknownProposal = 203, "UNKNOWN_PROPOSAL";
    /// The proposal has already passed.
    ProposalClosed = 204, "PROPOSAL_CLOSED";
    /// The proposal's deadline has passed.
    ProposalExpired = 205, "PROPOSAL_EXPIRED";
    /// This organisation already approved the proposal.
    AlreadyApproved = 206, "ALREADY_APPROVED";
    /// The organisation is already in the requested status.
    OrgStatusConflict = 207, "ORG_STATUS_CONFLICT";
    /// The action would leave no active validator.
    NoValidatorsLeft = 208, "NO_VALIDATORS_LEFT";
    /// The organisation does not hold this key.
    UnknownKey = 209, "UNKNOWN_KEY";
    /// A parameter value outside its allowed range.
    InvalidParameter = 210, "INVALID_PARAMETER";
    /// The purpose code is not in the taxonomy.
    UnknownPurpose = 211, "UNKNOWN_PURPOSE";

    /// No dataset with this id.
    UnknownDataset = 300, "UNKNOWN_DATASET";
    /// A dataset with this id already exists.
    DatasetExists = 301, "DATASET_EXISTS";
    /// A field that the dataset does not have.
    UnknownField = 302, "UNKNOWN_FIELD";
    /// Only the dataset owner may do this.
    NotDatasetOwner = 303, "NOT_DATASET_OWNER";
    /// No access request with this id.
    UnknownRequest = 304, "UNKNOWN_REQUEST";
    /// The request was already approved or rejected.
    RequestNotPending = 305, "REQUEST_NOT_PENDING";
    /// No grant with this id.
    UnknownGrant = 306, "UNKNOWN_GRANT";
    /// valid_until is not after valid_from, or is already past.
    InvalidPeriod = 307, "INVALID_PERIOD";
    /// Sensitive or personal fields need a co-approver.
    CoApproverRequired = 308, "CO_APPROVER_REQUIRED";
    /// The co-approver is unknown, inactive, or a party to the grant.
    InvalidCoApprover = 309, "INVALID_CO_APPROVER";
    /// Only the grant's named co-approver may co-approve it.
    NotCoApprover = 310, "NOT_CO_APPROVER";
    /// The grant is already co-approved (or needs no co-approval).
    AlreadyCoApproved = 311, "ALREADY_CO_APPROVED";
    /// The grant's delegation depth is 0.
    NotDelegable = 312, "NOT_DELEGABLE";
    /// The delegated grant would exceed its parent's fields, purposes, period, depth or uses.
    DelegationExceedsParent = 313, "DELEGATION_EXCEEDS_PARENT";
    /// Only the grantee may do this.
    NotGrantee = 314, "NOT_GRANTEE";
    /// Only the grantor or the dataset owner may revoke.
    NotGrantor = 315, "NOT_GRANTOR";
    /// The grant is revoked.
    GrantRevoked = 316, "GRANT_REVOKED";
    /// The grant does not allow this use now (the message carries the decision's reason).
    UseNotAllowed = 317, "USE_NOT_ALLOWED";
    /// The grantee is unknown, inactive, or the grantor itself.
    InvalidGrantee = 318, "INVALID_GRANTEE";
    /// More fields than the `max_fields_per_dataset` parameter allows.
    TooManyFields = 319, "TOO_MANY_FIELDS";
    /// The grant is not in force (awaiting co-approval or expired).
    GrantNotInForce = 320, "GRANT_NOT_IN_FORCE";

    /// The reason code is not in the catalogue.
    UnknownReason = 400, "UNKNOWN_REASON";
    /// Points are zero or above the reason's maximum per award.
    PointsOutOfRange = 401, "POINTS_OUT_OF_RANGE";
    /// The award would exceed the issuer's quota for this period.
    QuotaExceeded = 402, "QUOTA_EXCEEDED";
    /// The resident's balance is lower than the points to redeem.
    InsufficientBalance = 403, "INSUFFICIENT_BALANCE";
    /// No civility record with this id.
    UnknownRecord = 404, "UNKNOWN_RECORD";
    /// Only awards can be reversed.
    NotAnAward = 405, "NOT_AN_AWARD";
    /// Only the organisation that made the award may reverse it.
    NotOriginalIssuer = 406, "NOT_ORIGINAL_ISSUER";
    /// The award was already reversed.
    AlreadyReversed = 407, "ALREADY_REVERSED";
    /// Reversing would take the balance below zero (points already redeemed).
    ReversalExceedsBalance = 408, "REVERSAL_EXCEEDS_BALANCE";
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// A rule violation: recorded in the receipt, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxError {
    /// Stable code and name.
    pub kind: ErrorKind,
    /// What went wrong and what to do, for a person.
    pub message: String,
}

impl TxError {
    /// A violation of `kind` explained by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> TxError {
        TxError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for TxError {}

/// Either outcome of running one call: a rule violation or a fatal error.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Recorded in the receipt.
    Rule(TxError),
    /// Aborts the block.
    Fatal(ContractError),
}

impl From<TxError> for CallError {
    fn from(e: TxError) -> Self {
        CallError::Rule(e)
    }
}

impl From<ContractError> for CallError {
    fn from(e: ContractError) -> Self {
        CallError::Fatal(e)
    }
}

impl From<LedgerError> for CallError {
    fn from(e: LedgerError) -> Self {
        CallError::Fatal(ContractError::Storage(e))
    }
}

/// Shorthand: fail the call with `kind` and a formatted message.
macro_rules! reject {
    ($kind:ident, $($fmt:tt)*) => {
        return Err($crate::error::CallError::Rule($crate::error::TxError::new(
            $crate::error::ErrorKind::$kind,
            format!($($fmt)*),
        )))
    };
}
pub(crate) use reject;

/// Result of a call body.
pub(crate) type CallResult<T> = Result<T, CallError>;
