//! Gongzhi node runtime as a library: the pieces the `gongzhi` binary wires together.

pub mod network;
