//! The Gongzhi node as a library: what the `gongzhi` binary wires together.
//!
//! - [`config`], [`logging`]: operating a node;
//! - [`chain`]: block store + contracts (build, verify, commit, sync blocks);
//! - [`mempool`], [`accounts`]: admitting txs;
//! - [`network`]: libp2p (membership-gated gossip and block sync);
//! - [`driver`]: runs the pure consensus core with real time, network and storage;
//! - [`api`]: the gRPC services; [`metrics`]: Prometheus;
//! - [`run`]: `gongzhi start`; [`cli`]: the command line.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod accounts;
pub mod api;
pub mod audit;
pub mod chain;
pub mod cli;
pub mod config;
pub mod driver;
pub mod logging;
pub mod membership;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod run;
pub mod signer;
