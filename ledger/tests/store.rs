//! Store behaviour, small to large: genesis, commit and read back, state at every height,
//! proofs, refused commits, reopen, corruption.

#![cfg(feature = "store")]

use gongzhi_ledger::crypto;
use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::store::testkit::{init_test_genesis, TestBlock, TestChain, TEST_CHAIN_ID};
use gongzhi_ledger::store::MemoryStateTree;
use gongzhi_ledger::{
    verify_state_proof, Canonical, CommitCertificate, Hash, LedgerError, MemoryState, StateChanges,
    StateProof, StateReader, Store,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const KEY_SPACE: u64 = 40;

fn fresh() -> Result<(tempfile::TempDir, Store), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    init_test_genesis(&store)?;
    Ok((dir, store))
}

/// Every key the test chain can touch, plus one it never does.
fn all_keys(chain: &TestChain) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = TestChain::genesis_changes().into_keys().collect();
    for h in 0..KEY_SPACE * 4 {
        keys.push(chain.key(h, 0, 0));
    }
    keys.push(b"never/written".to_vec());
    keys.sort();
    keys.dedup();
    keys
}

/// Commit `n` blocks and return them with the model state after each height (index = height).
fn commit_blocks(
    store: &Store,
    chain: &mut TestChain,
    n: u64,
) -> Result<(Vec<TestBlock>, Vec<MemoryState>), LedgerError> {
    let mut state = MemoryState::new();
    apply_changes(&mut state, &TestChain::genesis_changes());
    let mut models = vec![state.clone()];
    let mut blocks = Vec::new();
    for _ in 0..n {
        let height = chain.height() + 1;
        apply_changes(&mut state, &chain.changes(height));
        blocks.push(chain.commit_next(store)?);
        models.push(state.clone());
    }
    Ok((blocks, models))
}

#[test]
fn genesis_is_idempotent_and_refuses_another_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    assert!(!store.is_initialised());
    assert!(matches!(
        store.prepare(&StateChanges::new()),
        Err(LedgerError::NotInitialised)
    ));

    let root = init_test_genesis(&store)?;
    assert_eq!(init_test_genesis(&store)?, root);
    assert_eq!(store.latest_height(), 0);
    assert_eq!(store.state_root(0)?, root);
    assert_eq!(store.genesis_hash()?, TestChain::genesis_hash());
    assert_eq!(store.chain_id()?, TEST_CHAIN_ID);
    let mut replay = MemoryStateTree::new();
    assert_eq!(replay.apply(&TestChain::genesis_changes())?, root);

    let other_hash =
        store.init_genesis(TEST_CHAIN_ID, Hash([1; 32]), &TestChain::genesis_changes());
    assert!(matches!(
        other_hash,
        Err(LedgerError::GenesisMismatch { .. })
    ));
    let other_state = store.init_genesis(
        TEST_CHAIN_ID,
        TestChain::genesis_hash(),
        &StateChanges::new(),
    );
    assert!(matches!(
        other_state,
        Err(LedgerError::GenesisMismatch { .. })
    ));
    let other_chain = store.init_genesis(
        "other",
        TestChain::genesis_hash(),
        &TestChain::genesis_changes(),
    );
    assert!(matches!(
        other_chain,
        Err(LedgerError::GenesisMismatch { .. })
    ));
    Ok(())
}

#[test]
fn commits_blocks_and_reads_everything_back() -> TestResult {
    let (_dir, store) = fresh()?;
    let mut chain = TestChain::new(6, 2, KEY_SPACE);
    let (blocks, _) = commit_blocks(&store, &mut chain, 5)?;
    assert_eq!(store.latest_height(), 5);

    for built in &blocks {
        let height = built.block.height();
        assert_eq!(store.block(height)?, built.block);
        assert_eq!(
            store.block_by_hash(&built.block.hash())?,
            Some(built.block.clone())
        );
        assert_eq!(store.block_height(&built.block.hash())?, Some(height));
        let certificate = store.certificate(height)?;
        assert_eq!(certificate, built.certificate);
        crypto::verify_batch(&certificate.signed_messages(TEST_CHAIN_ID))?;
        assert_eq!(store.receipts(height)?, built.receipts);
        assert_eq!(store.state_root(height)?, built.block.header.state_root);
        for (index, tx) in built.block.txs.iter().enumerate() {
            let found = store.tx(&tx.hash())?;
            assert_eq!(found, Some((height, index as u32, tx.clone())));
            assert_eq!(
                store.receipt(&tx.hash())?.as_ref(),
                Some(&built.receipts[index])
            );
        }
    }
    // Block h+1 carries the certificate of block h, and extends it.
    for pair in blocks.windows(2) {
        assert_eq!(
            pair[1].block.last_commit.as_ref(),
            Some(&pair[0].certificate)
        );
        assert_eq!(pair[1].block.header.prev_block_hash, pair[0].block.hash());
    }
    assert_eq!(store.latest_block_hash()?, blocks[4].block.hash());
    assert_eq!(store.block_by_hash(&Hash([7; 32]))?, None);
    assert_eq!(store.tx(&Hash([7; 32]))?, None);
    assert_eq!(store.receipt(&Hash([7; 32]))?, None);
    Ok(())
}

#[test]
fn heights_outside_the_store_are_unavailable() -> TestResult {
    let (_dir, store) = fresh()?;
    let mut chain = TestChain::new(1, 1, KEY_SPACE);
    commit_blocks(&store, &mut chain, 2)?;
    let unavailable =
        |r: Result<(), LedgerError>| matches!(r, Err(LedgerError::HeightUnavailable { .. }));
    assert!(unavailable(store.block(0).map(drop)));
    assert!(unavailable(store.block(3).map(drop)));
    assert!(unavailable(store.certificate(3).map(drop)));
    assert!(unavailable(store.receipts(3).map(drop)));
    assert!(unavailable(store.state_root(3).map(drop)));
    assert!(unavailable(store.state_at(3).map(drop)));
    assert!(unavailable(store.get_with_proof(b"k", 3).map(drop)));
    assert!(store.state_at(0).is_ok());
    Ok(())
}

#[test]
fn state_reads_match_the_model_at_latest_and_every_past_height() -> TestResult {
    let (_dir, store) = fresh()?;
    let mut chain = TestChain::new(4, 2, KEY_SPACE);
    let (_, models) = commit_blocks(&store, &mut chain, 8)?;
    let keys = all_keys(&chain);

    let latest = store.latest_state()?;
    assert_eq!(latest.height(), 8);
    for key in &keys {
        assert_eq!(
            latest.get(key)?.as_ref(),
            models[8].get(key),
            "latest {key:?}"
        );
    }
    for (height, model) in models.iter().enumerate() {
        let state = store.state_at(height as u64)?;
        for key in &keys {
            assert_eq!(
                state.get(key)?.as_ref(),
                model.get(key),
                "height {height} key {key:?}"
            );
        }
    }
    // Deletions happened and are visible as absence.
    assert!(models
        .windows(2)
        .any(|w| w[0].keys().any(|k| !w[1].contains_key(k))));
    Ok(())
}

#[test]
fn store_roots_equal_an_in_memory_replay() -> TestResult {
    let (_dir, store) = fresh()?;
    let mut chain = TestChain::new(3, 2, KEY_SPACE);
    let (blocks, _) = commit_blocks(&store, &mut chain, 6)?;
    let mut replay = MemoryStateTree::new();
    replay.apply(&TestChain::genesis_changes())?;
    let mut replay_chain = TestChain::new(3, 2, KEY_SPACE);
    for built in &blocks {
        let root = replay.apply(&replay_chain.changes(built.block.height()))?;
        let rebuilt = replay_chain.next_block(root);
        assert_eq!(rebuilt.block.hash(), built.block.hash());
    }
    Ok(())
}

#[test]
fn presence_and_absence_proofs_verify_and_reject_tampering() -> TestResult {
    let (_dir, store) = fresh()?;
    let mut chain = TestChain::new(4, 2, KEY_SPACE);
    let (_, models) = commit_blocks(&store, &mut chain, 6)?;
    let keys = all_keys(&chain);
    let mut present = 0;
    let mut absent = 0;
    for height in [0u64, 3, 6] {
        let root = store.state_root(height)?;
        let other_root = store.state_root(if height == 0 { 1 } else { height - 1 })?;
        for key in &keys {
            let (value, proof) = store.get_with_proof(key, height)?;
            assert_eq!(value.as_ref(), models[height as usize].get(key));
            verify_state_proof(root, key, value.as_deref(), &proof)?;
            // The proof survives its canonical encoding.
            let decoded = StateProof::decode(&proof.encode())?;
            verify_state_proof(root, key, value.as_deref(), &decoded)?;

            let rejected = |r: Result<(), LedgerError>| {
                matches!(r, Err(LedgerError::InvalidStateProof { .. }))
            };
            assert!(rejected(verify_state_proof(
                other_root,
                key,
                value.as_deref(),
                &proof
            )));
            assert!(rejected(verify_state_proof(
                Hash([3; 32]),
                key,
                value.as_deref(),
                &proof
            )));
            match &value {
                Some(v) => {
                    present += 1;
                    let mut tampered = v.clone();
                    tampered.push(b'!');
                    assert!(rejected(verify_state_proof(
                        root,
                        key,
                        Some(&tampered),
                        &proof
                    )));
                    assert!(rejected(verify_state_proof(root, key, None, &proof)));
                }
                None => {
                    absent += 1;
                    assert!(rejected(verify_state_proof(
                        root,
                        key,
                        Some(b"forged"),
                        &proof
                    )));
                }
            }
        }
    }
    assert!(
        present > 10 && absent > 10,
        "present {present}, absent {absent}"
    );
    Ok(())
}

#[test]
fn a_proof_for_one_key_does_not_prove_another() -> TestResult {
    let (_dir, store) = fresh()?;
    let root = store.state_root(0)?;
    let (value, proof) = store.get_with_proof(b"genesis/0", 0)?;
    assert!(value.is_some());
    let wrong = verify_state_proof(root, b"genesis/1", value.as_deref(), &proof);
    assert!(matches!(wrong, Err(LedgerError::InvalidStateProof { .. })));
    Ok(())
}

#[test]
fn commit_refuses_bad_blocks_and_changes_nothing() -> TestResult {
    let (_dir, store) = fresh()?;
    let chain = TestChain::new(2, 2, KEY_SPACE);
    let genesis_root = store.state_root(0)?;

    // A height gap: block 2 offered to a store at height 0.
    let mut gap = chain.clone();
    let prepared = store.prepare(&gap.changes(1))?;
    gap.next_block(prepared.root());
    let block2 = gap.next_block(prepared.root());
    let err = store.commit(
        &block2.block,
        &block2.certificate,
        &block2.receipts,
        prepared,
    );
    assert!(
        matches!(
            err,
            Err(LedgerError::HeightGap {
                expected: 1,
                found: 2
            })
        ),
        "{err:?}"
    );

    // A header whose state root is not the prepared one.
    let mut wrong_root = chain.clone();
    let prepared = store.prepare(&wrong_root.changes(1))?;
    let block = wrong_root.next_block(Hash([9; 32]));
    let err = store.commit(&block.block, &block.certificate, &block.receipts, prepared);
    assert!(
        matches!(
            err,
            Err(LedgerError::BlockMismatch {
                field: "state_root",
                ..
            })
        ),
        "{err:?}"
    );

    // A certificate for another block.
    let mut other_cert = chain.clone();
    let prepared = store.prepare(&other_cert.changes(1))?;
    let block = other_cert.next_block(prepared.root());
    let foreign = CommitCertificate {
        block_hash: Hash([5; 32]),
        ..block.certificate.clone()
    };
    let err = store.commit(&block.block, &foreign, &block.receipts, prepared);
    assert!(
        matches!(err, Err(LedgerError::InvalidCertificate { .. })),
        "{err:?}"
    );

    // Receipts that do not match the txs.
    let mut bad_receipts = chain.clone();
    let prepared = store.prepare(&bad_receipts.changes(1))?;
    let block = bad_receipts.next_block(prepared.root());
    let mut receipts = block.receipts.clone();
    receipts.reverse();
    let err = store.commit(&block.block, &block.certificate, &receipts, prepared);
    assert!(
        matches!(err, Err(LedgerError::InvalidBlock { .. })),
        "{err:?}"
    );

    assert_eq!(store.latest_height(), 0);
    assert_eq!(store.state_root(0)?, genesis_root);
    assert_eq!(store.latest_state()?.get(&chain.key(1, 0, 0))?, None);

    // A state prepared before another block was committed is stale.
    let mut good = chain.clone();
    let stale = store.prepare(&good.changes(1))?;
    good.commit_next(&store)?;
    let block2 = good.next_block(stale.root());
    let err = store.commit(&block2.block, &block2.certificate, &block2.receipts, stale);
    assert!(
        matches!(err, Err(LedgerError::StalePreparedState { .. })),
        "{err:?}"
    );
    assert_eq!(store.latest_height(), 1);
    Ok(())
}

#[test]
fn reopen_returns_the_same_tip_and_continues() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (root, hash) = {
        let store = Store::open(dir.path())?;
        init_test_genesis(&store)?;
        let mut chain = TestChain::new(3, 2, KEY_SPACE);
        commit_blocks(&store, &mut chain, 4)?;
        (store.state_root(4)?, store.latest_block_hash()?)
    };
    let store = Store::open(dir.path())?;
    assert_eq!(store.latest_height(), 4);
    assert_eq!(store.state_root(4)?, root);
    assert_eq!(store.latest_block_hash()?, hash);
    assert_eq!(init_test_genesis(&store)?, store.state_root(0)?);

    let mut resumed = TestChain::resume(3, 2, KEY_SPACE, &store)?;
    resumed.commit_next(&store)?;
    // The same chain built in one go reaches the same block 5.
    let (_d2, other) = fresh()?;
    let mut straight = TestChain::new(3, 2, KEY_SPACE);
    let (blocks, _) = commit_blocks(&other, &mut straight, 5)?;
    assert_eq!(store.latest_block_hash()?, blocks[4].block.hash());
    Ok(())
}

/// A store in `dir` with genesis and `blocks` committed test blocks, closed again.
fn closed_store_with_blocks(dir: &std::path::Path, blocks: u64) -> TestResult {
    let store = Store::open(dir)?;
    init_test_genesis(&store)?;
    let mut chain = TestChain::new(2, 1, KEY_SPACE);
    commit_blocks(&store, &mut chain, blocks)?;
    Ok(())
}

/// The closed store in `dir` opened straight through RocksDB (every family), to damage it.
fn raw_db(dir: &std::path::Path) -> Result<rocksdb::DB, Box<dyn std::error::Error>> {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir)?;
    Ok(rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        dir,
        &cfs,
    )?)
}

/// Put `value` at `key` of `family` in the closed store in `dir`, behind the store's back.
fn raw_put(dir: &std::path::Path, family: &str, key: &[u8], value: &[u8]) -> TestResult {
    let db = raw_db(dir)?;
    let cf = db
        .cf_handle(family)
        .ok_or_else(|| format!("no {family} family"))?;
    db.put_cf(cf, key, value)?;
    Ok(())
}

#[test]
fn corrupt_stored_bytes_are_reported_not_panicked_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    closed_store_with_blocks(dir.path(), 3)?;
    {
        let names = ["default", "meta", "blocks", "certificates"];
        let mut opts = rocksdb::Options::default();
        opts.create_missing_column_families(true);
        let cfs = rocksdb::DB::list_cf(&opts, dir.path())?;
        assert!(names[1..].iter().all(|n| cfs.iter().any(|c| c == n)));
        let db = rocksdb::DB::open_cf(&opts, dir.path(), &cfs)?;
        let blocks = db.cf_handle("blocks").ok_or("no blocks family")?;
        db.put_cf(blocks, 2u64.to_be_bytes(), b"\x01garbage")?;
        let certificates = db
            .cf_handle("certificates")
            .ok_or("no certificates family")?;
        db.put_cf(certificates, 1u64.to_be_bytes(), b"")?;
    }
    let store = Store::open(dir.path())?;
    assert!(matches!(store.block(2), Err(LedgerError::Corrupt(_))));
    assert!(matches!(store.certificate(1), Err(LedgerError::Corrupt(_))));
    assert!(store.block(3).is_ok());

    // Corrupting the latest block makes open refuse with a clear error.
    {
        drop(store);
        let db = raw_db(dir.path())?;
        let blocks = db.cf_handle("blocks").ok_or("no blocks family")?;
        db.delete_cf(blocks, 3u64.to_be_bytes())?;
    }
    assert!(matches!(
        Store::open(dir.path()),
        Err(LedgerError::Corrupt(_))
    ));
    Ok(())
}

/// The options RocksDB persisted (its newest `OPTIONS-*` file) carry, for each of the store's
/// column families, the delay on bottommost-file rewrites the store sets once it is open.
#[test]
fn every_family_delays_bottommost_rewrites() -> TestResult {
    let (dir, store) = fresh()?;
    drop(store);
    let newest = std::fs::read_dir(dir.path())?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("OPTIONS-"))
        .max_by_key(|name| name["OPTIONS-".len()..].parse::<u64>().unwrap_or(0))
        .ok_or("no OPTIONS file")?;
    let text = std::fs::read_to_string(dir.path().join(newest))?;
    let families = text.matches("[CFOptions \"").count();
    let delayed = text
        .lines()
        .filter(|line| line.trim() == "bottommost_file_compaction_delay=3600")
        .count();
    assert_eq!(
        families, 10,
        "the store's nine families and RocksDB's unused default one"
    );
    assert_eq!(delayed, 9, "{text}");
    Ok(())
}

/// A home made by a release with another store layout (here: version 1, before the chunked
/// contract state) is refused at open with both versions named, and nothing in it changes.
#[test]
fn a_store_of_another_layout_version_is_refused_with_both_versions() -> TestResult {
    let dir = tempfile::tempdir()?;
    closed_store_with_blocks(dir.path(), 2)?;
    raw_put(dir.path(), "meta", b"format", &1u64.to_be_bytes())?;
    match Store::open(dir.path()) {
        Err(LedgerError::Corrupt(message)) => {
            assert!(
                message.contains("store layout version 1; this node reads version 2"),
                "{message}"
            );
            assert!(message.contains("another gongzhi release"), "{message}");
        }
        Err(other) => return Err(format!("expected the layout refusal, got {other}").into()),
        Ok(_) => return Err("a store of layout version 1 was opened".into()),
    }
    // The refusal wrote nothing: with the version put back, the store opens at its tip.
    raw_put(dir.path(), "meta", b"format", &2u64.to_be_bytes())?;
    let store = Store::open(dir.path())?;
    assert_eq!(store.latest_height(), 2);
    Ok(())
}

/// RocksDB's background threads (flushes, compactions) run at nice 19 from the moment a store
/// is open, before any flush: at full load a flush at normal priority stretched the blocks
/// committed meanwhile (see `store::background`).
#[cfg(target_os = "linux")]
#[test]
fn rocksdb_background_threads_run_at_the_lowest_priority() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _store = Store::open(dir.path())?;
    let mut niceness = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        // Other tests run on threads of this process; one that ends between the listing and
        // the reads below is gone (ESRCH), and is not a RocksDB thread of this store anyway.
        let task = task?;
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if !name.starts_with("rocksdb:") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised name start at field 3; the nice value is field 19.
        let (_, fields) = stat.rsplit_once(')').ok_or("stat without a name")?;
        let nice: i32 = fields
            .split_whitespace()
            .nth(16)
            .ok_or("stat too short")?
            .parse()?;
        niceness.push((name.trim().to_string(), nice));
    }
    assert!(
        niceness.iter().any(|(name, _)| name == "rocksdb:high"),
        "no flush thread: {niceness:?}"
    );
    assert!(
        niceness
            .iter()
            .all(|(_, nice)| *nice == gongzhi_ledger::store::background::BACKGROUND_NICE),
        "{niceness:?}"
    );
    Ok(())
}
