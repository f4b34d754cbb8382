//! Gongzhi's native contracts: deterministic state transitions over [`StateReader`], and the
//! authorisation decision function.
//!
//! - [`execute`]: [`execute_block`] runs a block's txs ([`Call`]s) and returns receipts and
//!   state changes; rule violations are receipts ([`TxError`]), never errors.
//! - [`governance`]: organisations, roles, keys, parameters, taxonomy and catalogue; proposals
//!   passing with > 2/3 of validator power; the validator schedule (changes in force at h+2).
//! - [`grants`]: datasets, access requests, grants, delegation, revocation, usage receipts.
//! - [`decision`]: [`check`], pure, default deny, with reasons and the allowing grants.
//! - [`decision_index`]: [`CheckIndex`], the same decision from decoded in-memory inputs, kept
//!   up to date block by block (for checks at the latest height).
//! - [`civility`]: the civility bank (awards, redemptions, reversals, balances, history).
//! - [`genesis`]: the genesis document and the state at height 0.
//! - [`query`]: read helpers for the API.
//! - [`keys`]: the state key layout.
//!
//! Determinism: no clocks (time comes from the block), no randomness; every collection written
//! to state is ordered. Hash maps appear only as lookup structures whose iteration order never
//! reaches state or results ([`decision_index`]).
//!
//! [`StateReader`]: gongzhi_ledger::StateReader

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod call;
pub mod civility;
pub mod decision;
pub mod decision_index;
mod error;
pub mod execute;
pub mod genesis;
pub mod governance;
pub mod grants;
pub mod keys;
pub mod query;
mod store;
pub mod types;

pub use call::{Call, CallOutput};
pub use decision::{check, Decision, Denial, DenyReason};
pub use decision_index::CheckIndex;
pub use error::{ContractError, ErrorKind, TxError};
pub use execute::{execute_block, execute_block_with_hashes, BlockContext, BlockOutcome};
pub use genesis::{genesis_changes, Genesis, GenesisOrg, GenesisPurpose, GenesisReason};
pub use governance::validators::validator_set_for_next_block;
pub use types::{
    ChunkedHead, DatasetId, GrantId, OrgId, Page, PageOf, ProposalId, PurposeCode, ReasonCode,
    RecordId, RequestId, ResidentId,
};
