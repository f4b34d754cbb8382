//! Gongzhi simulation and end-to-end tests.
//!
//! [`sim`] is a deterministic discrete-event simulator that drives N
//! instances of the real consensus core (`gongzhi-consensus`) under message
//! delay, loss, duplication, reordering, partitions, crash-restart and
//! byzantine behaviours, checking the safety invariants after every step and
//! liveness after the network heals. The `sim` binary runs it from the
//! command line; `tests/*.rs` run it as ordinary tests.

#![forbid(unsafe_code)]

pub mod sim;
