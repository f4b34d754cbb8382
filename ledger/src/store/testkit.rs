//! Deterministic chains for tests, benchmarks and the crash test. Not for production use.
//!
//! A [`TestChain`] builds the same blocks every time: block h has `txs_per_block` txs signed by
//! one fixed key, each writing `keys_per_tx` state keys chosen by a fixed mix of (h, tx, slot),
//! and every third block deletes one key. Certificates are signed by one fixed validator key
//! over the consensus precommit sign bytes, so they verify like real ones. Replaying a chain in
//! a [`MemoryStateTree`](super::MemoryStateTree) gives the roots a store must hold.

use gongzhi_consensus::VOTE_SIGN_TAG;

use super::Store;
use crate::block::{Block, Header, Timestamp};
use crate::certificate::{CommitCertificate, CommitSignature};
use crate::crypto::{Keypair, PublicKey};
use crate::hash::{tags, Hash};
use crate::receipt::{Outcome, Receipt};
use crate::state::StateChanges;
use crate::tx::Tx;
use crate::LedgerError;

/// BFT time of genesis (2026-01-01); block h is h seconds later.
const GENESIS_MILLIS: u64 = 1_767_225_600_000;

/// The chain id of every test chain.
pub const TEST_CHAIN_ID: &str = "gongzhi-test";

/// A block with everything [`Store::commit`] needs besides its prepared state.
#[derive(Debug, Clone)]
pub struct TestBlock {
    /// The block.
    pub block: Block,
    /// A certificate for it, signed by the test validator.
    pub certificate: CommitCertificate,
    /// One success receipt per tx.
    pub receipts: Vec<Receipt>,
}

/// A deterministic chain generator: the same parameters give the same blocks.
#[derive(Debug, Clone)]
pub struct TestChain {
    validator: Keypair,
    sender: Keypair,
    txs_per_block: usize,
    keys_per_tx: usize,
    key_space: u64,
    height: u64,
    prev_block_hash: Hash,
    last_commit: Option<CommitCertificate>,
}

impl TestChain {
    /// A chain whose blocks carry `txs_per_block` txs writing `keys_per_tx` keys each, drawn
    /// from `key_space` distinct keys.
    pub fn new(txs_per_block: usize, keys_per_tx: usize, key_space: u64) -> TestChain {
        TestChain {
            validator: Keypair::from_secret([0x11; 32]),
            sender: Keypair::from_secret([0x22; 32]),
            txs_per_block,
            keys_per_tx,
            key_space: key_space.max(1),
            height: 0,
            prev_block_hash: Self::genesis_hash(),
            last_commit: None,
        }
    }

    /// The same chain, continuing after the latest block in `store` (which must hold this
    /// chain: the crash test restarts its writer this way).
    pub fn resume(
        txs_per_block: usize,
        keys_per_tx: usize,
        key_space: u64,
        store: &Store,
    ) -> Result<TestChain, LedgerError> {
        let mut chain = TestChain::new(txs_per_block, keys_per_tx, key_space);
        let height = store.latest_height();
        if height > 0 {
            chain.height = height;
            chain.prev_block_hash = store.latest_block_hash()?;
            chain.last_commit = Some(store.certificate(height)?);
        }
        Ok(chain)
    }

    /// The genesis hash of every test chain.
    pub fn genesis_hash() -> Hash {
        Hash::tagged(tags::GENESIS, TEST_CHAIN_ID.as_bytes())
    }

    /// The genesis state: three fixed keys.
    pub fn genesis_changes() -> StateChanges {
        (0..3u8)
            .map(|i| (format!("genesis/{i}").into_bytes(), Some(vec![i; 4])))
            .collect()
    }

    /// The validator key that signs every certificate.
    pub fn validator_public(&self) -> PublicKey {
        self.validator.public()
    }

    /// The height of the last block built (0 before the first).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The state key written by (height, tx, slot).
    pub fn key(&self, height: u64, tx: usize, slot: usize) -> Vec<u8> {
        let mixed = mix(height, tx as u64, slot as u64) % self.key_space;
        format!("acct/{mixed:08}").into_bytes()
    }

    /// The state changes of block `height`.
    pub fn changes(&self, height: u64) -> StateChanges {
        let mut changes = StateChanges::new();
        for tx in 0..self.txs_per_block {
            for slot in 0..self.keys_per_tx {
                let value = format!("h{height}/t{tx}/s{slot}").into_bytes();
                changes.insert(self.key(height, tx, slot), Some(value));
            }
        }
        if height.is_multiple_of(3) {
            let gone = mix(height, u64::MAX, 0) % self.key_space;
            changes.insert(format!("acct/{gone:08}").into_bytes(), None);
        }
        changes
    }

    /// The txs of block `height`, signed, with nonces continuing across blocks.
    pub fn txs(&self, height: u64) -> Vec<Tx> {
        let per_block = self.txs_per_block as u64;
        (0..per_block)
            .map(|i| {
                let nonce = height.saturating_sub(1) * per_block + i + 1;
                let call = crate::codec::to_bytes(&(height, i));
                Tx::sign(&self.sender, TEST_CHAIN_ID, nonce, call)
            })
            .collect()
    }

    /// Build the next block, whose header carries `state_root` (the caller's
    /// [`Store::prepare`] or in-memory replay of [`TestChain::changes`]).
    pub fn next_block(&mut self, state_root: Hash) -> TestBlock {
        let height = self.height + 1;
        let txs = self.txs(height);
        self.finish_block(height, txs, state_root)
    }

    /// Like [`TestChain::next_block`] with txs built beforehand (benchmarks sign outside the
    /// timed part). `txs` must be [`TestChain::txs`] of the next height.
    pub fn next_block_with_txs(&mut self, txs: Vec<Tx>, state_root: Hash) -> TestBlock {
        let height = self.height + 1;
        self.finish_block(height, txs, state_root)
    }

    fn finish_block(&mut self, height: u64, txs: Vec<Tx>, state_root: Hash) -> TestBlock {
        let receipts: Vec<Receipt> = txs
            .iter()
            .map(|tx| Receipt {
                tx_hash: tx.hash(),
                outcome: Outcome::Success { data: Vec::new() },
            })
            .collect();
        let validator_set_hash = Hash::tagged(tags::VALIDATOR_SET, &self.validator.public().0);
        let header = Header {
            chain_id: TEST_CHAIN_ID.to_string(),
            height,
            time: Timestamp(GENESIS_MILLIS + height * 1000),
            prev_block_hash: self.prev_block_hash,
            last_commit_hash: Block::compute_last_commit_hash(self.last_commit.as_ref()),
            tx_root: Block::compute_tx_root(&txs),
            receipts_root: Block::compute_receipts_root(&receipts),
            state_root,
            validator_set_hash,
            next_validator_set_hash: validator_set_hash,
            proposer: self.validator.public(),
        };
        let block = Block {
            header,
            txs,
            last_commit: self.last_commit.take(),
        };
        let certificate = self.certify(&block);
        self.height = height;
        self.prev_block_hash = block.hash();
        self.last_commit = Some(certificate.clone());
        TestBlock {
            block,
            certificate,
            receipts,
        }
    }

    /// A certificate for `block`, round 0, signed by the test validator.
    pub fn certify(&self, block: &Block) -> CommitCertificate {
        let mut certificate = CommitCertificate {
            height: block.height(),
            round: 0,
            block_hash: block.hash(),
            signatures: Vec::new(),
        };
        let validator = self.validator.public();
        let sign_bytes = certificate.precommit_for(&validator).sign_bytes();
        certificate.signatures.push(CommitSignature {
            validator,
            signature: self
                .validator
                .sign(TEST_CHAIN_ID, VOTE_SIGN_TAG, &sign_bytes),
        });
        certificate
    }

    /// Prepare, build and commit the next block on `store`; returns it.
    pub fn commit_next(&mut self, store: &Store) -> Result<TestBlock, LedgerError> {
        let prepared = store.prepare(&self.changes(self.height + 1))?;
        let built = self.next_block(prepared.root());
        store.commit(&built.block, &built.certificate, &built.receipts, prepared)?;
        Ok(built)
    }
}

/// Initialise `store` with the test chain's genesis.
pub fn init_test_genesis(store: &Store) -> Result<Hash, LedgerError> {
    store.init_genesis(
        TEST_CHAIN_ID,
        TestChain::genesis_hash(),
        &TestChain::genesis_changes(),
    )
}

/// splitmix64 over three words: a fixed, well-spread mix.
fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(c.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// State changes from text pairs (`None` deletes): `changes(&[("a", Some("1")), ("b", None)])`.
pub fn changes(pairs: &[(&str, Option<&str>)]) -> StateChanges {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
        .collect()
}
