//! The demo district's story runs to its end on the demo genesis for any validator count,
//! executed by the real contracts (one tx per block, a second of chain time per block).
//! `gongzhi devnet up --validators 1` once failed here: the story needs all four core
//! organisations, and a one-validator genesis had dropped three of them.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use gongzhi_contracts::{execute_block, genesis_changes, BlockContext, Call};
use gongzhi_devnet::demo::{self, Submitter};
use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::{MemoryState, Receipt, Timestamp};

/// Executes each call as its own block on an in-memory state.
struct LocalChain {
    chain_id: String,
    seed: String,
    state: MemoryState,
    height: u64,
    time: Timestamp,
    nonces: BTreeMap<String, u64>,
}

impl Submitter for LocalChain {
    fn submit(&mut self, org: &str, call: Call) -> Result<(u64, Receipt)> {
        let nonce = self.nonces.entry(org.to_string()).or_insert(0);
        *nonce += 1;
        let key = demo::demo_key(&self.seed, org, "operator");
        let tx = call.sign(&key, &self.chain_id, *nonce);
        self.height += 1;
        self.time = self.time.plus_millis(1000);
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: self.height,
            time: self.time,
        };
        let outcome = execute_block(&self.state, &ctx, &[tx])?;
        apply_changes(&mut self.state, &outcome.changes);
        let Some(receipt) = outcome.receipts.into_iter().next() else {
            bail!("no receipt");
        };
        Ok((self.height, receipt))
    }

    fn chain_time(&mut self) -> Result<Timestamp> {
        Ok(self.time)
    }
}

#[test]
fn the_story_runs_for_one_to_five_validators() -> Result<()> {
    for validators in 1..=5 {
        let genesis = demo::genesis("story", "story", validators, Timestamp(1_700_000_000_000));
        genesis.validate()?;
        let set = genesis.validator_set()?;
        assert_eq!(set.len(), validators, "validators in genesis");
        let mut state = MemoryState::new();
        apply_changes(&mut state, &genesis_changes(&genesis)?);
        let mut chain = LocalChain {
            chain_id: "story".into(),
            seed: "story".into(),
            state,
            height: 0,
            time: genesis.time(),
            nonces: BTreeMap::new(),
        };
        let story = demo::tell_story(&mut chain)?;
        assert!(
            story.len() > 20,
            "{validators} validators: the story told only {} steps",
            story.len()
        );
    }
    Ok(())
}
