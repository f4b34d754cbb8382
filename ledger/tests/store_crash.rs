//! Crash test: a child process (`ledger-crash-writer`) commits deterministic blocks in a loop;
//! we SIGKILL it at pseudo-random moments, reopen the store and check that it holds exactly the
//! last fully committed block: every acknowledged height is there, the state root equals an
//! in-memory replay of the same blocks, blocks are byte-identical to the replay's, the tx,
//! block-hash and receipt indexes agree, and nothing of the next block leaked in.
//!
//! Moments are chosen by a seeded RNG (`CRASH_SEED`, printed on failure) as "after the child
//! reported k more commits, plus a random jitter of up to 3 ms" — the wait is on the child's
//! output, never a fixed sleep.

#![cfg(feature = "store")]

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use gongzhi_ledger::store::testkit::TestChain;
use gongzhi_ledger::store::MemoryStateTree;
use gongzhi_ledger::{Hash, StateReader, Store};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TXS: usize = 20;
const KEYS_PER_TX: usize = 2;
const KEY_SPACE: u64 = 300;
const KILLS: usize = 24;

struct Writer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Writer {
    fn start(dir: &std::path::Path) -> Result<Writer, Box<dyn std::error::Error>> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-crash-writer"))
            .arg(dir)
            .arg(TXS.to_string())
            .arg(KEYS_PER_TX.to_string())
            .arg(KEY_SPACE.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        Ok(Writer {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next `<word> <height>` line; an error if the child exits.
    fn next(&mut self) -> Result<(String, u64), Box<dyn std::error::Error>> {
        let line = self.lines.next().ok_or("writer exited unexpectedly")??;
        let (word, height) = line
            .split_once(' ')
            .ok_or_else(|| format!("bad line {line:?}"))?;
        Ok((word.to_string(), height.parse()?))
    }
}

/// The deterministic chain replayed in memory, grown as the store grows.
struct Replay {
    tree: MemoryStateTree,
    chain: TestChain,
    block_hashes: Vec<Hash>,
    roots: Vec<Hash>,
}

impl Replay {
    fn new() -> Result<Replay, Box<dyn std::error::Error>> {
        let mut tree = MemoryStateTree::new();
        let genesis_root = tree.apply(&TestChain::genesis_changes())?;
        Ok(Replay {
            tree,
            chain: TestChain::new(TXS, KEYS_PER_TX, KEY_SPACE),
            block_hashes: vec![TestChain::genesis_hash()],
            roots: vec![genesis_root],
        })
    }

    fn grow_to(&mut self, height: u64) -> Result<(), Box<dyn std::error::Error>> {
        while self.chain.height() < height {
            let next = self.chain.height() + 1;
            let root = self.tree.apply(&self.chain.changes(next))?;
            let built = self.chain.next_block(root);
            self.block_hashes.push(built.block.hash());
            self.roots.push(root);
        }
        Ok(())
    }
}

/// Everything that must hold after a crash with `acknowledged` the last height the child
/// reported committed.
fn check_store(dir: &std::path::Path, acknowledged: u64, replay: &mut Replay) -> TestResult {
    let store = Store::open(dir)?;
    let height = store.latest_height();
    assert!(
        height == acknowledged || height == acknowledged + 1,
        "store at {height}, child had acknowledged {acknowledged}"
    );
    replay.grow_to(height + 1)?;
    let h = height as usize;
    assert_eq!(
        store.state_root(height)?,
        replay.roots[h],
        "state root at {height}"
    );
    assert_eq!(store.latest_block_hash()?, replay.block_hashes[h]);
    if height > 0 {
        let block = store.block(height)?;
        assert_eq!(block.hash(), replay.block_hashes[h]);
        assert_eq!(block.header.state_root, replay.roots[h]);
        assert_eq!(store.block_by_hash(&block.hash())?.as_ref(), Some(&block));
        assert_eq!(store.certificate(height)?.block_hash, block.hash());
        let receipts = store.receipts(height)?;
        assert_eq!(receipts.len(), block.txs.len());
        for (index, tx) in block.txs.iter().enumerate() {
            assert_eq!(store.tx_position(&tx.hash())?, Some((height, index as u32)));
            assert_eq!(receipts[index].tx_hash, tx.hash());
        }
    }
    // Nothing of the block after the tip is visible.
    assert_eq!(store.block_height(&replay.block_hashes[h + 1])?, None);
    for tx in replay.chain.txs(height + 1) {
        assert_eq!(
            store.tx_position(&tx.hash())?,
            None,
            "tx of block {} leaked",
            height + 1
        );
    }
    // The flat state agrees with the tree's value history at the tip.
    let latest = store.latest_state()?;
    let historic = store.state_at(height)?;
    for slot in 0..KEY_SPACE {
        let key = format!("acct/{slot:08}").into_bytes();
        assert_eq!(
            latest.get(&key)?,
            historic.get(&key)?,
            "key {slot} at {height}"
        );
    }
    Ok(())
}

#[test]
fn sigkill_at_random_moments_never_leaves_half_a_block() -> TestResult {
    let seed: u64 = match std::env::var("CRASH_SEED") {
        Ok(s) => s.parse()?,
        Err(_) => 0x006f_6e67_737a_6869,
    };
    eprintln!("crash test seed {seed} (REPRODUCE WITH: CRASH_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir()?;
    let mut replay = Replay::new()?;
    let mut acknowledged = 0u64;
    let mut mid_commit_kills = 0;

    for round in 0..KILLS {
        let mut writer = Writer::start(dir.path())?;
        let (word, start) = writer.next()?;
        assert_eq!(word, "ready");
        assert!(
            start >= acknowledged,
            "round {round}: restarted at {start} after {acknowledged} acknowledged"
        );
        acknowledged = start;
        // Kill after 0..=4 further commits, then a jitter of 0..3 ms.
        let more = rng.gen_range(0..=4u64);
        while acknowledged < start + more {
            let (word, height) = writer.next()?;
            assert_eq!((word.as_str(), height), ("committed", acknowledged + 1));
            acknowledged = height;
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..3000)));
        writer.child.kill()?;
        writer.child.wait()?;
        // Lines written before the kill still count as acknowledged.
        while let Some(Ok(line)) = writer.lines.next() {
            if let Some(height) = line.strip_prefix("committed ") {
                acknowledged = height.parse()?;
            }
        }
        let before = acknowledged;
        check_store(dir.path(), acknowledged, &mut replay)
            .map_err(|e| format!("round {round} (CRASH_SEED={seed}): {e}"))?;
        let store_height = Store::open(dir.path())?.latest_height();
        if store_height > before {
            // Killed after the write and before the report: durable but unacknowledged.
            mid_commit_kills += 1;
        }
        acknowledged = store_height;
    }
    eprintln!(
        "{KILLS} kills, final height {acknowledged}, {mid_commit_kills} between write and report"
    );
    assert!(
        acknowledged >= (KILLS as u64) / 2,
        "the writer made too little progress: {acknowledged}"
    );
    Ok(())
}
