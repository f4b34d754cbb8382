//! `gongzhi`: the one binary for operators, applications, auditors and devnets.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use gongzhi_node::cli::Cli;

/// mimalloc instead of glibc's malloc: the node and the replay allocate small buffers on one
/// thread and free them on another (txs, state changes, tree nodes), where glibc's arenas spent
/// about a sixth of a replay's CPU time (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match gongzhi_node::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
