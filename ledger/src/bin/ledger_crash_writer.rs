//! Crash-test child: commits deterministic blocks forever, printing each committed height.
//!
//! Usage: `ledger-crash-writer <store dir> <txs per block> <keys per tx> <key space>`.
//! Started (and SIGKILLed at arbitrary moments) by `ledger/tests/store_crash.rs`; each start
//! reopens the store and continues from its latest height. Prints `ready <height>` after
//! opening, then `committed <height>` after each durable commit.

use std::io::Write;
use std::process::ExitCode;

use gongzhi_ledger::store::testkit::{init_test_genesis, TestChain};
use gongzhi_ledger::{LedgerError, Store};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger-crash-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), LedgerError> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        LedgerError::Storage(
            "usage: ledger-crash-writer <dir> <txs> <keys per tx> <key space>".into(),
        )
    };
    let [_, dir, txs, keys, space] = args.as_slice() else {
        return Err(usage());
    };
    let txs: usize = txs.parse().map_err(|_| usage())?;
    let keys: usize = keys.parse().map_err(|_| usage())?;
    let space: u64 = space.parse().map_err(|_| usage())?;

    let store = Store::open(dir)?;
    init_test_genesis(&store)?;
    let mut chain = TestChain::resume(txs, keys, space, &store)?;
    let stdout = std::io::stdout();
    let say = |line: String| -> Result<(), LedgerError> {
        let mut out = stdout.lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| LedgerError::Storage(format!("stdout: {e}")))
    };
    say(format!("ready {}", store.latest_height()))?;
    loop {
        let built = chain.commit_next(&store)?;
        say(format!("committed {}", built.block.height()))?;
    }
}
