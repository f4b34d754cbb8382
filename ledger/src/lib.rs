//! Gongzhi's chain data and its durable, authenticated storage.
//!
//! - [`codec`]: the one canonical encoding (version byte ‖ postcard) for everything hashed or
//!   signed; decoding rejects oversize input, unknown versions and trailing bytes.
//! - [`hash`], [`crypto`]: blake3 with a domain tag per object kind; ed25519 over
//!   `chain_id ‖ tag ‖ bytes`, with batch verification.
//! - [`tx`], [`block`], [`receipt`], [`certificate`]: the chain's objects.
//! - [`state`]: the read interface contracts execute on and the shape of their writes.
//! - [`store`]: RocksDB block store and Jellyfish-Merkle state; one fsynced batch per block.
//! - [`fast_hash`]: a non-SipHash hasher for in-memory lookup tables (never iterated).
//!
//! This crate knows nothing of contracts (tx calls are opaque bytes) or networking.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod block;
pub mod certificate;
pub mod codec;
pub mod crypto;
mod ed25519_batch;
mod error;
pub mod fast_hash;
pub mod hash;
pub mod keyfile;
pub mod receipt;
pub mod state;
#[cfg(feature = "store")]
pub mod store;
pub mod tx;
pub mod wal;

pub use block::{Block, Header, Timestamp};
pub use certificate::{validator_set_hash, CommitCertificate, CommitSignature};
pub use codec::Canonical;
pub use crypto::{Keypair, PublicKey, Signature};
pub use error::LedgerError;
pub use gongzhi_consensus::{Validator, ValidatorId, ValidatorSet};
pub use hash::Hash;
pub use receipt::{Outcome, Receipt};
pub use state::{AfterChanges, MemoryState, Overlay, ReadCache, StateChanges, StateReader};
#[cfg(feature = "store")]
pub use store::{verify_state_proof, PreparedState, StateProof, Store, StoreOptions};
pub use tx::Tx;
