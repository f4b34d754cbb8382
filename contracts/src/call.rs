//! The contract call carried in `Tx.body.call`, and what a successful call returns.
//!
//! `Tx.body.call` is the canonical encoding of a [`Call`] (version byte ‖ postcard, as every
//! canonical object); bytes that do not decode fail the tx with `MALFORMED_CALL`. Variants are
//! only ever appended, so existing encodings keep their meaning. A successful call's receipt
//! data is the postcard encoding of a [`CallOutput`].

use gongzhi_ledger::codec::{from_bytes, to_bytes};
use gongzhi_ledger::tx::MAX_TX_BYTES;
use gongzhi_ledger::{Canonical, Keypair, LedgerError, Tx};
use serde::{Deserialize, Serialize};

use crate::governance::proposals::{ProposalAction, ProposalProgress};
use crate::grants::datasets::AccessRequestArgs;
use crate::grants::lifecycle::{Delegation, NewGrant, UseRecord};
use crate::grants::{FieldSpec, GrantTerms};
use crate::types::{DatasetId, GrantId, ProposalId, ReasonCode, RecordId, RequestId, ResidentId};

/// One contract call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// Governance: propose an action (validator organisations).
    Propose(ProposalAction),
    /// Governance: approve a proposal (validator organisations).
    Approve(ProposalId),
    /// Register a dataset owned by the signer's organisation (members).
    RegisterDataset {
        /// New dataset id.
        id: DatasetId,
        /// Display name.
        name: String,
        /// Fields with their sensitivity.
        fields: Vec<FieldSpec>,
    },
    /// Ask a dataset owner for access (members).
    RequestAccess(AccessRequestArgs),
    /// Approve a pending request into a grant (dataset owner).
    ApproveRequest {
        /// The request.
        request: RequestId,
        /// Terms of the grant.
        terms: GrantTerms,
    },
    /// Reject a pending request (dataset owner).
    RejectRequest {
        /// The request.
        request: RequestId,
        /// Why, for the requester.
        reason: String,
    },
    /// Issue a grant directly (dataset owner). `parent` is ignored.
    IssueGrant(NewGrant),
    /// Co-approve a grant (its named co-approver).
    CoApproveGrant(GrantId),
    /// Delegate part of a grant (its grantee).
    DelegateGrant(Delegation),
    /// Revoke a grant and its delegations (grantor or dataset owner).
    RevokeGrant {
        /// The grant.
        grant: GrantId,
        /// Why.
        reason: String,
    },
    /// Record a use of a grant (its grantee).
    RecordUse(UseRecord),
    /// Award civility points (issuers).
    Award {
        /// The resident.
        resident: ResidentId,
        /// Catalogue reason.
        reason: ReasonCode,
        /// Points, 1..=the reason's maximum.
        points: u64,
    },
    /// Redeem civility points (service points).
    Redeem {
        /// The resident.
        resident: ResidentId,
        /// Points, at most the balance.
        points: u64,
        /// What they buy.
        item: String,
    },
    /// Reverse an award (its issuer).
    Reverse {
        /// The award.
        record: RecordId,
        /// Why.
        why: String,
    },
}

impl Canonical for Call {
    const KIND: &'static str = "contract call";
    const MAX_BYTES: usize = MAX_TX_BYTES;
}

impl Call {
    /// Sign this call into a tx.
    pub fn sign(&self, key: &Keypair, chain_id: &str, nonce: u64) -> Tx {
        Tx::sign(key, chain_id, nonce, self.encode())
    }

    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Propose(_) => "propose",
            Call::Approve(_) => "approve",
            Call::RegisterDataset { .. } => "register_dataset",
            Call::RequestAccess(_) => "request_access",
            Call::ApproveRequest { .. } => "approve_request",
            Call::RejectRequest { .. } => "reject_request",
            Call::IssueGrant(_) => "issue_grant",
            Call::CoApproveGrant(_) => "co_approve_grant",
            Call::DelegateGrant(_) => "delegate_grant",
            Call::RevokeGrant { .. } => "revoke_grant",
            Call::RecordUse(_) => "record_use",
            Call::Award { .. } => "award",
            Call::Redeem { .. } => "redeem",
            Call::Reverse { .. } => "reverse",
        }
    }
}

/// What a successful call returns (receipt data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallOutput {
    /// Nothing to report.
    Done,
    /// Where a proposal stands after a propose or approve.
    Proposal(ProposalProgress),
    /// The created access request.
    Request(RequestId),
    /// The created grant.
    Grant(GrantId),
    /// How many grants a revocation revoked (itself and its descendants).
    Revoked(u64),
    /// The grant's use count after a recorded use.
    Uses(u64),
    /// The created civility record.
    Record(RecordId),
}

impl CallOutput {
    /// Receipt data bytes.
    pub fn to_data(&self) -> Vec<u8> {
        to_bytes(self)
    }

    /// Parse receipt data.
    pub fn from_data(data: &[u8]) -> Result<CallOutput, LedgerError> {
        from_bytes(data, "call output")
    }
}
