//! Property: any sequence of state changes, committed to two independent stores, gives the same
//! roots in both and in an in-memory tree, and every height reads exactly like a plain map model
//! (with proofs that verify). Failing cases shrink to a minimal sequence of blocks.

#![cfg(feature = "store")]

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::store::testkit::{init_test_genesis, TestChain};
use gongzhi_ledger::store::MemoryStateTree;
use gongzhi_ledger::{
    verify_state_proof, LedgerError, MemoryState, StateChanges, StateReader, Store,
};

/// Keys 0..KEYS as short byte strings: small enough that writes, overwrites and deletes of the
/// same key are frequent.
const KEYS: u8 = 12;

fn key(i: u8) -> Vec<u8> {
    vec![b'k', i]
}

fn changes_strategy() -> impl Strategy<Value = StateChanges> {
    btree_map(
        (0..KEYS).prop_map(key),
        prop::option::weighted(0.7, vec(any::<u8>(), 0..6)),
        0..6,
    )
}

fn open_store() -> Result<(tempfile::TempDir, Store), LedgerError> {
    let dir = tempfile::tempdir().map_err(|e| LedgerError::Storage(e.to_string()))?;
    let store = Store::open(dir.path())?;
    init_test_genesis(&store)?;
    Ok((dir, store))
}

/// Commit `blocks` (block h applies `blocks[h-1]`) with empty blocks from the test chain.
fn commit_all(store: &Store, blocks: &[StateChanges]) -> Result<(), LedgerError> {
    let mut chain = TestChain::new(0, 0, 1);
    for changes in blocks {
        let prepared = store.prepare(changes)?;
        let built = chain.next_block(prepared.root());
        store.commit(&built.block, &built.certificate, &built.receipts, prepared)?;
    }
    Ok(())
}

fn check(blocks: &[StateChanges]) -> Result<(), TestCaseError> {
    let (_dir_a, a) = open_store().map_err(fail)?;
    let (_dir_b, b) = open_store().map_err(fail)?;
    commit_all(&a, blocks).map_err(fail)?;
    commit_all(&b, blocks).map_err(fail)?;

    let mut tree = MemoryStateTree::new();
    let mut model = MemoryState::new();
    let genesis = TestChain::genesis_changes();
    tree.apply(&genesis).map_err(fail)?;
    apply_changes(&mut model, &genesis);
    let mut keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    keys.extend(genesis.keys().cloned());

    for height in 0..=blocks.len() as u64 {
        if height > 0 {
            let changes = &blocks[height as usize - 1];
            tree.apply(changes).map_err(fail)?;
            apply_changes(&mut model, changes);
        }
        let root = a.state_root(height).map_err(fail)?;
        prop_assert_eq!(
            root,
            b.state_root(height).map_err(fail)?,
            "stores disagree at {}",
            height
        );
        prop_assert_eq!(
            Some(root),
            tree.root(height).map_err(fail)?,
            "memory tree disagrees at {}",
            height
        );
        let state = a.state_at(height).map_err(fail)?;
        for k in &keys {
            let value = state.get(k).map_err(fail)?;
            prop_assert_eq!(
                value.as_ref(),
                model.get(k),
                "height {} key {:?}",
                height,
                k
            );
            let (proved, proof) = a.get_with_proof(k, height).map_err(fail)?;
            prop_assert_eq!(&proved, &value);
            verify_state_proof(root, k, proved.as_deref(), &proof).map_err(fail)?;
        }
    }
    let latest = a.latest_state().map_err(fail)?;
    for k in &keys {
        let value = latest.get(k).map_err(fail)?;
        prop_assert_eq!(value.as_ref(), model.get(k));
    }
    Ok(())
}

fn fail(e: LedgerError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

proptest! {
    // Integration tests have no lib.rs for proptest's regression files: failures print the
    // minimal case instead.
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn stores_agree_with_each_other_and_the_model(blocks in vec(changes_strategy(), 0..8)) {
        check(&blocks)?;
    }
}
