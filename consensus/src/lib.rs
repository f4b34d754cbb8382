//! Tendermint consensus ("The latest gossip on BFT consensus", Buchman, Kwon,
//! Milosevic, arXiv 1807.04938, Algorithm 1) as a deterministic, I/O-free
//! state machine.
//!
//! # Contract
//!
//! A host (the node, or the simulator in `gongzhi-tests`) owns one
//! [`Consensus`] per validator key and drives it with [`Input`]s; each call to
//! [`Consensus::handle`] returns a `Vec<`[`Output`]`>` the host performs in
//! order. The core has no tokio, sockets, disk, clocks or randomness: time
//! arrives as `Input::TimeoutElapsed`, blocks as `Input::ValueReady` /
//! `Input::ValueVerified`, and the host's crypto behind two traits:
//! [`SignatureVerifier`] (checked on every incoming message at the core's edge)
//! and [`SignatureScheme`] (the local key, used only by [`SafetyModule`]).
//!
//! | input | host sends it when |
//! |---|---|
//! | `StartHeight { height, validators }` | at boot (after loading the safety state) and after committing a `Decide` |
//! | `Proposal(SignedProposal)`, `Vote(SignedVote)` | a message arrives from a peer (unverified; never echo our own) |
//! | `TimeoutElapsed { kind, height, round }` | a `ScheduleTimeout` elapses |
//! | `ValueReady { height, round, value }` | it built the block asked for by `RequestValue` |
//! | `ValueVerified { height, value, valid }` | it executed the block asked for by `VerifyValue` |
//!
//! | output | host must |
//! |---|---|
//! | `PersistSafetyState(state)` | make `state` durable **before** sending any later broadcast |
//! | `BroadcastProposal` / `BroadcastVote` | send to all validators (already signed and counted locally) |
//! | `ScheduleTimeout { kind, height, round, duration }` | feed `TimeoutElapsed` after `duration` |
//! | `RequestValue { height, round }` | build a block, answer `ValueReady` |
//! | `VerifyValue { height, round, value }` | fetch and execute the block, answer `ValueVerified` |
//! | `Decide { height, round, value, certificate }` | commit block + certificate durably, then `StartHeight(height + 1)` |
//! | `Evidence(DoubleSignEvidence)` | record the double-sign evidence on chain |
//!
//! Restart: build a [`SafetyModule`] from the last durable [`SafetyState`],
//! then `StartHeight` with the first uncommitted height. The core resumes at
//! the round of its last signed message and never signs a conflicting one.
//!
//! Module map: [`types`] (messages, sign bytes, traits), [`validator_set`]
//! (powers, proposer rotation), [`quorum`] (2/3 and 1/3 maths),
//! [`vote_keeper`] (tallies, equivocation), [`safety`] (the only signer),
//! [`io`] (inputs, outputs, config), `state_machine` (Algorithm 1).

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

mod buffer;
pub mod error;
mod height_state;
pub mod io;
pub mod quorum;
pub mod safety;
mod state_machine;
pub mod types;
pub mod validator_set;
pub mod vote_keeper;

pub use error::ConsensusError;
pub use io::{ConsensusConfig, Input, Output, TimeoutConfig, TimeoutKind};
pub use safety::{Lock, SafetyModule, SafetyState, Signed};
pub use state_machine::Consensus;
pub use types::{
    Height, Proposal, Round, Signature, SignatureScheme, SignatureVerifier, SignedMessage,
    SignedProposal, SignedVote, Step, ValidatorId, ValueId, Vote, VoteKind, PROPOSAL_SIGN_TAG,
    VOTE_SIGN_TAG,
};
pub use validator_set::{Validator, ValidatorSet};
pub use vote_keeper::{AddVoteOutcome, DoubleSignEvidence, VoteKeeper};
