//! `gongzhi`: the one binary for operators, applications, auditors and devnets.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use gongzhi_node::cli::Cli;

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
