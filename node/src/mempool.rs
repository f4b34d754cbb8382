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
//! - Committed nonces read from the [`AccountView`] are cached until the next `update` (the
//!   committed state only changes by commits, and the driver calls `update` after each), so
//!   admitting a signer's txs costs one state read per signer per block, not one per tx.
//! - The expensive checks (decoding, chain id, signature) need no pool state: [`TxVerifier`]
//!   runs them without the pool's lock (batch-verifying gossiped txs) and yields a
//!   [`VerifiedTx`], which only [`TxVerifier`] can make; [`Mempool::admit_verified`] then runs
//!   only the cheap checks under the lock.

use std::collections::{BTreeMap, HashMap};

use gongzhi_ledger::crypto::{verify_batch, SignedMessage};
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
///
/// Its answers must change only between [`Mempool::update`] calls (the pool caches them until
/// the next one): read the latest committed state, and call `update` after every commit.
pub trait AccountView {
    /// The signer's last committed nonce (0 if none), or `None` when the key is not an
    /// operator key of an active organisation.
    fn committed_nonce(&self, signer: &PublicKey) -> Option<u64>;

    /// [`AccountView::committed_nonce`] of each of `signers`, in order. A view over a store
    /// answers them all from one snapshot.
    fn committed_nonces(&self, signers: &[PublicKey]) -> Vec<Option<u64>> {
        signers.iter().map(|s| self.committed_nonce(s)).collect()
    }
}

/// Committed nonces of signers, read after a commit and before taking the pool's lock
/// ([`SignerFloors::read`]), then applied under it ([`Mempool::apply_floors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerFloors(Vec<(PublicKey, Option<u64>)>);

impl SignerFloors {
    /// The committed nonces of `touched` (in any order, repeated).
    pub fn read(mut touched: Vec<PublicKey>, accounts: &dyn AccountView) -> SignerFloors {
        touched.sort();
        touched.dedup();
        let nonces = accounts.committed_nonces(&touched);
        SignerFloors(touched.into_iter().zip(nonces).collect())
    }
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
    /// Committed nonces (None: not a member's key) read by or since the last `update`; the
    /// cache holds until the next commit, whose `update` clears it.
    nonces: HashMap<PublicKey, Option<u64>>,
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
            nonces: HashMap::new(),
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

    /// The checks that need no pool state, to run without the pool's lock.
    pub fn verifier(&self) -> TxVerifier {
        TxVerifier {
            chain_id: self.chain_id.clone(),
            max_tx_bytes: self.limits.max_tx_bytes,
        }
    }

    /// Decode and admit raw tx bytes (from a client or a peer).
    pub fn admit_bytes(
        &mut self,
        bytes: &[u8],
        accounts: &dyn AccountView,
    ) -> Result<Hash, MempoolError> {
        let tx = self.verifier().decode(bytes)?;
        self.admit(tx, bytes.len(), accounts)
    }

    /// Admit a decoded tx whose encoding is `size` bytes.
    pub fn admit(
        &mut self,
        tx: Tx,
        size: usize,
        accounts: &dyn AccountView,
    ) -> Result<Hash, MempoolError> {
        let verifier = self.verifier();
        verifier.check_size(size)?;
        verifier.check_chain(&tx)?;
        let hash = tx.hash();
        self.check_admissible(&tx, hash, size, accounts)?;
        // Signature last: it is the expensive check.
        tx.verify(&self.chain_id)
            .map_err(|_| MempoolError::BadSignature(tx.body.signer))?;
        self.insert(VerifiedTx { tx, hash, size });
        Ok(hash)
    }

    /// Admit a tx whose stateless checks (size, chain, signature) already passed: only the
    /// checks against the pool and the committed nonces run here.
    pub fn admit_verified(
        &mut self,
        verified: VerifiedTx,
        accounts: &dyn AccountView,
    ) -> Result<Hash, MempoolError> {
        if verified.tx.body.chain_id != self.chain_id {
            // Verified for another chain (a verifier of another pool): not admissible here.
            return Err(MempoolError::WrongChain {
                expected: self.chain_id.clone(),
                found: verified.tx.body.chain_id,
            });
        }
        self.check_admissible(&verified.tx, verified.hash, verified.size, accounts)?;
        let hash = verified.hash;
        self.insert(verified);
        Ok(hash)
    }

    /// The signer's committed nonce, read once per signer between `update`s.
    fn committed_nonce(&mut self, signer: &PublicKey, accounts: &dyn AccountView) -> Option<u64> {
        *self
            .nonces
            .entry(*signer)
            .or_insert_with(|| accounts.committed_nonce(signer))
    }

    /// Duplicate, membership, nonce and limit checks.
    fn check_admissible(
        &mut self,
        tx: &Tx,
        hash: Hash,
        size: usize,
        accounts: &dyn AccountView,
    ) -> Result<(), MempoolError> {
        if self.hashes.contains_key(&hash) {
            return Err(MempoolError::Duplicate(hash));
        }
        let signer = tx.body.signer;
        let committed = self
            .committed_nonce(&signer, accounts)
            .ok_or(MempoolError::UnknownSigner(signer))?;
        let nonce = tx.body.nonce;
        if nonce <= committed {
            return Err(MempoolError::NonceUsed {
                signer,
                nonce,
                next: committed + 1,
            });
        }
        let queue = self.by_signer.get(&signer);
        if queue.is_some_and(|q| q.contains_key(&nonce)) {
            return Err(MempoolError::NoncePending { signer, nonce });
        }
        if queue.map_or(0, BTreeMap::len) >= self.limits.max_txs_per_signer {
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
        Ok(())
    }

    fn insert(&mut self, verified: VerifiedTx) {
        let VerifiedTx { tx, hash, size } = verified;
        let (signer, nonce) = (tx.body.signer, tx.body.nonce);
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
    }

    /// Txs for a block: per signer a gap-free nonce run after the committed nonce, signers
    /// taken in order of their oldest pending tx, within `max_txs` and `max_bytes`.
    pub fn reap(&self, max_txs: usize, max_bytes: usize, accounts: &dyn AccountView) -> Vec<Tx> {
        self.reap_counting_gaps(max_txs, max_bytes, accounts).0
    }

    /// [`Mempool::reap`], and how many pending txs it left out because an earlier nonce of
    /// their signer is missing (not arrived yet): each of them waits at least one more block.
    pub fn reap_counting_gaps(
        &self,
        max_txs: usize,
        max_bytes: usize,
        accounts: &dyn AccountView,
    ) -> (Vec<Tx>, usize) {
        let mut held_back = 0;
        let mut runs: Vec<(u64, Vec<&Pending>)> = Vec::new();
        for (signer, queue) in &self.by_signer {
            let committed = match self.nonces.get(signer) {
                Some(cached) => *cached,
                None => accounts.committed_nonce(signer),
            };
            let Some(mut expected) = committed.map(|n| n + 1) else {
                continue;
            };
            let mut run = Vec::new();
            let mut after = queue.range(expected..);
            for (nonce, pending) in after.by_ref() {
                if *nonce != expected {
                    held_back += 1;
                    break;
                }
                run.push(pending);
                expected += 1;
            }
            held_back += after.count();
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
        (out, held_back)
    }

    /// After a commit: drop the committed txs and everything with a nonce that is now used.
    pub fn update(&mut self, committed: &[Tx], accounts: &dyn AccountView) {
        self.update_signers(
            committed.iter().map(|tx| tx.body.signer).collect(),
            accounts,
        );
    }

    /// [`Mempool::update`] given only the committed txs' signers (in any order, repeated).
    pub fn update_signers(&mut self, touched: Vec<PublicKey>, accounts: &dyn AccountView) {
        self.apply_floors(SignerFloors::read(touched, accounts));
    }

    /// After a commit: drop each signer's txs at or below its committed nonce (all of them for a
    /// signer that is no longer an active member).
    pub fn apply_floors(&mut self, floors: SignerFloors) {
        self.nonces.clear();
        for (signer, floor) in floors.0 {
            // Read after the commit: the next admission from this signer can use it.
            self.nonces.insert(signer, floor);
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

/// A tx that passed the checks needing no pool state: size, encoding, chain id, signature.
#[derive(Debug, Clone)]
pub struct VerifiedTx {
    tx: Tx,
    hash: Hash,
    size: usize,
}

impl VerifiedTx {
    /// The tx.
    pub fn tx(&self) -> &Tx {
        &self.tx
    }

    /// Its hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }
}

/// Runs the stateless checks of admission, without the pool (see [`Mempool::verifier`]).
#[derive(Debug, Clone)]
pub struct TxVerifier {
    chain_id: String,
    max_tx_bytes: usize,
}

impl TxVerifier {
    fn check_size(&self, size: usize) -> Result<(), MempoolError> {
        if size > self.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.max_tx_bytes,
            });
        }
        Ok(())
    }

    fn check_chain(&self, tx: &Tx) -> Result<(), MempoolError> {
        if tx.body.chain_id != self.chain_id {
            return Err(MempoolError::WrongChain {
                expected: self.chain_id.clone(),
                found: tx.body.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// Size and encoding.
    fn decode(&self, bytes: &[u8]) -> Result<Tx, MempoolError> {
        self.check_size(bytes.len())?;
        Tx::decode(bytes).map_err(|e| MempoolError::Malformed(e.to_string()))
    }

    /// Size, encoding and chain id, then the signature alone.
    pub fn verify(&self, bytes: &[u8]) -> Result<VerifiedTx, MempoolError> {
        let tx = self.decode(bytes)?;
        self.check_chain(&tx)?;
        tx.verify(&self.chain_id)
            .map_err(|_| MempoolError::BadSignature(tx.body.signer))?;
        Ok(VerifiedTx {
            hash: tx.hash(),
            size: bytes.len(),
            tx,
        })
    }

    /// Checks many txs (e.g. a gossiped batch): one result per input, in order. Signatures of
    /// the txs that decode are verified in one batch, with the same check a block's txs get;
    /// only when that fails is each verified alone to find the bad ones.
    pub fn verify_batch(&self, txs: &[Vec<u8>]) -> Vec<Result<VerifiedTx, MempoolError>> {
        let mut results: Vec<Result<VerifiedTx, MempoolError>> = txs
            .iter()
            .map(|bytes| {
                let tx = self.decode(bytes)?;
                self.check_chain(&tx)?;
                Ok(VerifiedTx {
                    hash: tx.hash(),
                    size: bytes.len(),
                    tx,
                })
            })
            .collect();
        // Chain ids are checked above, so each signed message is framed with ours.
        let signed: Vec<SignedMessage> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|v| v.tx.signed_message()))
            .collect();
        if verify_batch(&signed).is_ok() {
            return results;
        }
        let mut signed = signed.iter();
        for result in &mut results {
            let signer = match result {
                Ok(verified) => verified.tx.body.signer,
                Err(_) => continue,
            };
            let Some(item) = signed.next() else { break };
            if verify_batch(std::slice::from_ref(item)).is_err() {
                *result = Err(MempoolError::BadSignature(signer));
            }
        }
        results
    }
}

impl MempoolError {
    /// Whether the tx is invalid in itself (malformed, oversize, another chain, bad
    /// signature), whatever the pool and chain state: a peer that relays it misbehaves.
    pub fn is_invalid_tx(&self) -> bool {
        matches!(
            self,
            MempoolError::Malformed(_)
                | MempoolError::TooLarge { .. }
                | MempoolError::WrongChain { .. }
                | MempoolError::BadSignature(_)
        )
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

    fn admit(pool: &mut Mempool, tx: Tx, accounts: &dyn AccountView) -> Result<Hash, MempoolError> {
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
        pool.update(&[], &used); // the committed state changed: a commit happened
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
        assert_eq!(
            pool.reap_counting_gaps(100, usize::MAX, &accounts).1,
            1,
            "nonce 4 is held back by the gap"
        );
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

    #[test]
    fn batch_verification_types_each_failure_and_admits_the_rest() {
        let (mut pool, key, accounts) = setup();
        let verifier = pool.verifier();
        let mut forged = Tx::sign(&key, "test-chain", 3, vec![1]);
        forged.body.call = vec![2];
        let batch = vec![
            Tx::sign(&key, "test-chain", 1, vec![1]).encode(),
            vec![0xff, 0x00, 0x13],
            forged.encode(),
            Tx::sign(&key, "other", 4, vec![1]).encode(),
            vec![0; 70_000],
            Tx::sign(&key, "test-chain", 2, vec![1]).encode(),
        ];
        let results = verifier.verify_batch(&batch);
        assert_eq!(results.len(), batch.len());
        assert!(matches!(results[1], Err(MempoolError::Malformed(_))));
        assert!(matches!(results[2], Err(MempoolError::BadSignature(_))));
        assert!(matches!(results[3], Err(MempoolError::WrongChain { .. })));
        assert!(matches!(results[4], Err(MempoolError::TooLarge { .. })));
        let invalid = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(MempoolError::is_invalid_tx))
            .count();
        assert_eq!(invalid, 4);
        for result in results.into_iter().flatten() {
            pool.admit_verified(result, &accounts)
                .expect("valid tx admitted");
        }
        let reaped: Vec<u64> = pool
            .reap(100, usize::MAX, &accounts)
            .iter()
            .map(|t| t.body.nonce)
            .collect();
        assert_eq!(reaped, vec![1, 2]);
    }

    #[test]
    fn a_valid_batch_verifies_at_once_and_admission_still_checks_state() {
        let (mut pool, key, accounts) = setup();
        let txs: Vec<Vec<u8>> = (1..=20)
            .map(|nonce| Tx::sign(&key, "test-chain", nonce, vec![7]).encode())
            .collect();
        let verified: Vec<VerifiedTx> = pool
            .verifier()
            .verify_batch(&txs)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("all valid");
        let again = verified[0].clone();
        for tx in verified {
            pool.admit_verified(tx, &accounts).expect("admitted");
        }
        assert_eq!(pool.len(), 20);
        assert!(matches!(
            pool.admit_verified(again, &accounts),
            Err(MempoolError::Duplicate(_))
        ));
        let other_pool = Mempool::new("other-chain", MempoolSection::default());
        let foreign = other_pool
            .verifier()
            .verify(&Tx::sign(&key, "other-chain", 21, vec![]).encode())
            .expect("valid on its chain");
        assert!(matches!(
            pool.admit_verified(foreign, &accounts),
            Err(MempoolError::WrongChain { .. })
        ));
    }

    #[test]
    fn committed_nonces_are_read_once_per_signer_between_updates() {
        use std::cell::Cell;
        struct Counting(u64, Cell<usize>);
        impl AccountView for Counting {
            fn committed_nonce(&self, _: &PublicKey) -> Option<u64> {
                self.1.set(self.1.get() + 1);
                Some(self.0)
            }
        }
        let key = Keypair::from_secret([3; 32]);
        let mut pool = Mempool::new("test-chain", MempoolSection::default());
        let accounts = Counting(0, Cell::new(0));
        for nonce in 1..=5 {
            admit(
                &mut pool,
                Tx::sign(&key, "test-chain", nonce, vec![]),
                &accounts,
            )
            .expect("admit");
        }
        assert_eq!(accounts.1.get(), 1);
        let block = pool.reap(2, usize::MAX, &accounts);
        assert_eq!(accounts.1.get(), 1, "reap reads through the cache");
        let after = Counting(2, Cell::new(0));
        pool.update(&block, &after);
        assert_eq!(pool.len(), 3);
        assert_eq!(
            after.1.get(),
            1,
            "update reads the committed signer's nonce"
        );
        let stale = Tx::sign(&key, "test-chain", 2, vec![9]);
        assert!(matches!(
            admit(&mut pool, stale, &after),
            Err(MempoolError::NonceUsed { next: 3, .. })
        ));
        assert_eq!(after.1.get(), 1, "and the next admission uses that read");
    }
}
