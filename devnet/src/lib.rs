//! Local Gongzhi networks: N validators as real processes on loopback, seeded with the demo
//! district, for `make run`, end-to-end tests, load generation and fault injection.
//!
//! - [`demo`]: the demo district (organisations, genesis, the story its first blocks tell);
//! - [`network`]: create, start, stop, seed a devnet directory;
//! - [`process`]: one node process (start, SIGTERM, SIGKILL, SIGSTOP/SIGCONT) and waiting on
//!   conditions with deadlines;
//! - [`client`]: a blocking gRPC client;
//! - [`bench`]: the load generator behind `gongzhi devnet bench`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod bench;
pub mod client;
pub mod demo;
pub mod network;
pub mod process;

pub use network::{Devnet, DevnetOptions};
