//! The transaction pool: admits valid txs, orders them by signer nonce, hands blocks their txs.
//!
//! Invariants:
//! - Every pending tx has a valid signature, this chain's id, a signer that is a current
//!   member, and a nonce above the signer's last committed nonce; nothing else gets in.
//! - Count, total bytes, per-tx size and per-signer count stay within the configured limits;
//!   a tx that would break one is refused with an error saying which.
//! - `reap` returns, for each signer, only a gap-free run of nonces starting right after the
//!   committed one, so a block never carries a tx that must fail for its nonce.
//! - After a block commits, `update` drops the committed txs and every tx made stale by it.

use std::collections::{BTreeMap, HashMap};

use gongzhi_ledger::{Canonical, Hash, PublicKey, Tx};

use crate::config::MempoolSection;

/// Why a tx was not admitted. Every message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The bytes are not a tx.
    #[error("malformed tx: {0}")]
    Malformed(String),
    /// Over the size limit.
    #[error("tx is {size} bytes, over the limit of {max}; split the call or shorten its text")]
    TooLarge {
        /// Tx size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// For another chain.
    #[error("tx is for chain {found:?}, this node runs {expected:?}; sign it with --chain-id {expected}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The tx's chain.
        found: String,
    },
    /// Signature does not verify.
    #[error(
        "signature does not verify for signer {0}; sign the exact bytes with the signer's key"
    )]
    BadSignature(PublicKey),
    /// Signer is not a current member's key.
    #[error(
        "signer {0} is not an operator key of any active organisation; ask governance to admit it"
    )]
    UnknownSigner(PublicKey),
    /// Nonce already used.
    #[error("nonce {nonce} was already used by {signer} (next usable nonce is {next}); this looks like a replay")]
    NonceUsed {
        /// Signer.
        signer: PublicKey,
        /// Offered nonce.
        nonce: u64,
        /// Next usable nonce.
        next: u64,
    },
    /// A tx with the same signer and nonce is already pending.
    #[error("a tx with nonce {nonce} from {signer} is already pending")]
    NoncePending {
        /// Signer.
        signer: PublicKey,
        /// Nonce.
        nonce: u64,
    },
    /// The very same tx is already pending.
    #[error("tx {0} is already pending")]
    Duplicate(Hash),
    /// Pool full by count.
    #[error("mempool is full ({max} txs); retry later")]
    Full {
        /// Limit.
        max: usize,
    },
    /// Pool full by bytes.
    #[error("mempool is full ({max} bytes); retry later")]
    FullBytes {
        /// Limit.
        max: usize,
    },
    /// One signer has too many pending.
    #[error("signer {signer} already has {max} pending txs; wait for some to commit")]
    SignerQueueFull {
        /// Signer.
        signer: PublicKey,
        /// Limit.
        max: usize,
    },
}

/// What the pool needs to know about signers from the latest committed state.
pub trait AccountView {
    /// The signer's last committed nonce (0 if none), or `None` when the key is not an
    /// operator key of an active organisation.
    fn committed_nonce(&self, signer: &PublicKey) -> Option<u64>;
}

#[derive(Debug)]
struct Pending {
    tx: Tx,
    hash: Hash,
    bytes: usize,
    arrival: u64,
}

/// Pending txs by signer and nonce.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolSection,
    chain_id: String,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, Pending>>,
    hashes: HashMap<Hash, (PublicKey, u64)>,
    total_bytes: usize,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool for `chain_id`.
    pub fn new(chain_id: &str, limits: MempoolSection) -> Mempool {
        Mempool {
            limits,
            chain_id: chain_id.to_string(),
            by_signer: BTreeMap::new(),
            hashes: HashMap::new(),
            total_bytes: 0,
            next_arrival: 0,
        }
    }

    /// Number of pending txs.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Total bytes pending.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.hashes.contains_key(hash)
    }

    /// Decode and admit raw tx bytes (from a client or a peer).
    pub fn admit_bytes(
        &mut self,
        bytes: &[u8],
        accounts: &dyn AccountView,
    ) -> Result<Hash, MempoolError> {
        if bytes.len() > self.limits.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                size: bytes.len(),
                max: self.limits.max_tx_bytes,
            });
        }
        let tx = Tx::decode(bytes).map_err(|e| MempoolError::Malformed(e.to_string()))?;
        self.admit(tx, bytes.len(), accounts)
    }

    /// Admit a decoded tx whose encoding is `size` bytes.
    pub fn admit(
        &mut self,
        tx: Tx,
        size: usize,
        accounts: &dyn AccountView,
    ) -> Result<Hash, MempoolError> {
        if size > self.limits.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.limits.max_tx_bytes,
            });
        }
        if tx.body.chain_id != self.chain_id {
            return Err(MempoolError::WrongChain {
                expected: self.chain_id.clone(),
                found: tx.body.chain_id.clone(),
            });
        }
        let hash = tx.hash();
        if self.hashes.contains_key(&hash) {
            return Err(MempoolError::Duplicate(hash));
        }
        let signer = tx.body.signer;
        let committed = accounts
            .committed_nonce(&signer)
            .ok_or(MempoolError::UnknownSigner(signer))?;
        let nonce = tx.body.nonce;
        if nonce <= committed {
            return Err(MempoolError::NonceUsed {
                signer,
                nonce,
                next: committed + 1,
            });
        }
        let queue_len = self.by_signer.get(&signer).map_or(0, BTreeMap::len);
        if self
            .by_signer
            .get(&signer)
            .is_some_and(|q| q.contains_key(&nonce))
        {
            return Err(MempoolError::NoncePending { signer, nonce });
        }
        if queue_len >= self.limits.max_txs_per_signer {
            return Err(MempoolError::SignerQueueFull {
                signer,
                max: self.limits.max_txs_per_signer,
            });
        }
        if self.hashes.len() >= self.limits.max_txs {
            return Err(MempoolError::Full {
                max: self.limits.max_txs,
            });
        }
        if self.total_bytes + size > self.limits.max_bytes {
            return Err(MempoolError::FullBytes {
                max: self.limits.max_bytes,
            });
        }
        // Signature last: it is the expensive check.
        tx.verify(&self.chain_id)
            .map_err(|_| MempoolError::BadSignature(signer))?;
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.by_signer.entry(signer).or_default().insert(
            nonce,
            Pending {
                tx,
                hash,
                bytes: size,
                arrival,
            },
        );
        self.hashes.insert(hash, (signer, nonce));
        self.total_bytes += size;
        Ok(hash)
    }

    /// Txs for a block: per signer a gap-free nonce run after the committed nonce, signers
    /// taken in order of their oldest pending tx, within `max_txs` and `max_bytes`.
    pub fn reap(&self, max_txs: usize, max_bytes: usize, accounts: &dyn AccountView) -> Vec<Tx> {
        let mut runs: Vec<(u64, Vec<&Pending>)> = Vec::new();
        for (signer, queue) in &self.by_signer {
            let Some(mut expected) = accounts.committed_nonce(signer).map(|n| n + 1) else {
                continue;
            };
            let mut run = Vec::new();
            for (nonce, pending) in queue.range(expected..) {
                if *nonce != expected {
                    break;
                }
                run.push(pending);
                expected += 1;
            }
            if let Some(first) = run.first() {
                runs.push((first.arrival, run));
            }
        }
        runs.sort_by_key(|(arrival, _)| *arrival);
        // Round-robin across signers so one busy signer cannot starve the others.
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut cursors: Vec<std::slice::Iter<'_, &Pending>> =
            runs.iter().map(|(_, r)| r.iter()).collect();
        let mut progressed = true;
        while progressed && out.len() < max_txs {
            progressed = false;
            for cursor in cursors.iter_mut() {
                if out.len() >= max_txs {
                    break;
                }
                let Some(next) = cursor.as_slice().first() else {
                    continue;
                };
                if bytes + next.bytes > max_bytes {
                    // This signer's run stops here: later nonces would leave a gap.
                    *cursor = [].iter();
                    continue;
                }
                cursor.next();
                bytes += next.bytes;
                out.push(next.tx.clone());
                progressed = true;
            }
        }
        out
    }

    /// After a commit: drop the committed txs and everything with a nonce that is now used.
    pub fn update(&mut self, committed: &[Tx], accounts: &dyn AccountView) {
        let mut touched: Vec<PublicKey> = committed.iter().map(|tx| tx.body.signer).collect();
        touched.sort();
        touched.dedup();
        for signer in touched {
            let floor = accounts.committed_nonce(&signer);
            let Some(queue) = self.by_signer.get_mut(&signer) else {
                continue;
            };
            let stale: Vec<u64> = match floor {
                Some(n) => queue.range(..=n).map(|(k, _)| *k).collect(),
                None => queue.keys().copied().collect(),
            };
            for nonce in stale {
                if let Some(p) = queue.remove(&nonce) {
                    self.hashes.remove(&p.hash);
                    self.total_bytes -= p.bytes;
                }
            }
            if queue.is_empty() {
                self.by_signer.remove(&signer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gongzhi_ledger::Keypair;
    use std::collections::BTreeMap;

    struct Accounts(BTreeMap<PublicKey, u64>);
    impl AccountView for Accounts {
        fn committed_nonce(&self, signer: &PublicKey) -> Option<u64> {
            self.0.get(signer).copied()
        }
    }

    fn setup() -> (Mempool, Keypair, Accounts) {
        let key = Keypair::from_secret([3; 32]);
        let accounts = Accounts(BTreeMap::from([(key.public(), 0)]));
        (
            Mempool::new("test-chain", MempoolSection::default()),
            key,
            accounts,
        )
    }

    fn admit(pool: &mut Mempool, tx: Tx, accounts: &Accounts) -> Result<Hash, MempoolError> {
        let bytes = tx.encode();
        pool.admit_bytes(&bytes, accounts)
    }

    #[test]
    fn admits_valid_and_rejects_each_bad_case() {
        let (mut pool, key, accounts) = setup();
        let ok = Tx::sign(&key, "test-chain", 1, vec![1]);
        assert!(admit(&mut pool, ok.clone(), &accounts).is_ok());
        assert_eq!(
            admit(&mut pool, ok.clone(), &accounts),
            Err(MempoolError::Duplicate(ok.hash()))
        );
        let same_nonce = Tx::sign(&key, "test-chain", 1, vec![2]);
        assert!(matches!(
            admit(&mut pool, same_nonce, &accounts),
            Err(MempoolError::NoncePending { nonce: 1, .. })
        ));
        let wrong_chain = Tx::sign(&key, "other", 2, vec![1]);
        assert!(matches!(
            admit(&mut pool, wrong_chain, &accounts),
            Err(MempoolError::WrongChain { .. })
        ));
        let stranger = Tx::sign(&Keypair::from_secret([9; 32]), "test-chain", 1, vec![1]);
        assert!(matches!(
            admit(&mut pool, stranger, &accounts),
            Err(MempoolError::UnknownSigner(_))
        ));
        let mut forged = Tx::sign(&key, "test-chain", 2, vec![1]);
        forged.body.call = vec![2];
        assert!(matches!(
            admit(&mut pool, forged, &accounts),
            Err(MempoolError::BadSignature(_))
        ));
        let big = Tx::sign(&key, "test-chain", 3, vec![0; 70_000]);
        assert!(matches!(
            admit(&mut pool, big, &accounts),
            Err(MempoolError::TooLarge { .. })
        ));
        assert!(matches!(
            pool.admit_bytes(&[1, 2, 3], &accounts),
            Err(MempoolError::Malformed(_))
        ));
        let used = Accounts(BTreeMap::from([(key.public(), 5)]));
        let replay = Tx::sign(&key, "test-chain", 5, vec![1]);
        assert!(matches!(
            admit(&mut pool, replay, &used),
            Err(MempoolError::NonceUsed { next: 6, .. })
        ));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn reap_takes_gap_free_runs_and_update_drops_stale() {
        let (mut pool, key, mut accounts) = setup();
        for nonce in [1, 2, 4] {
            admit(
                &mut pool,
                Tx::sign(&key, "test-chain", nonce, vec![]),
                &accounts,
            )
            .expect("admit");
        }
        let reaped: Vec<u64> = pool
            .reap(100, usize::MAX, &accounts)
            .iter()
            .map(|t| t.body.nonce)
            .collect();
        assert_eq!(reaped, vec![1, 2], "nonce 4 waits for 3");
        let block = pool.reap(1, usize::MAX, &accounts);
        accounts.0.insert(key.public(), 1);
        pool.update(&block, &accounts);
        assert_eq!(pool.len(), 2);
        let reaped: Vec<u64> = pool
            .reap(100, usize::MAX, &accounts)
            .iter()
            .map(|t| t.body.nonce)
            .collect();
        assert_eq!(reaped, vec![2]);
    }

    #[test]
    fn limits_are_enforced() {
        let key = Keypair::from_secret([3; 32]);
        let accounts = Accounts(BTreeMap::from([(key.public(), 0)]));
        let limits = MempoolSection {
            max_txs: 2,
            max_txs_per_signer: 2,
            ..MempoolSection::default()
        };
        let mut pool = Mempool::new("test-chain", limits);
        for nonce in 1..=2 {
            admit(
                &mut pool,
                Tx::sign(&key, "test-chain", nonce, vec![]),
                &accounts,
            )
            .expect("admit");
        }
        let third = Tx::sign(&key, "test-chain", 3, vec![]);
        assert!(matches!(
            admit(&mut pool, third, &accounts),
            Err(MempoolError::SignerQueueFull { .. })
        ));
    }
}
