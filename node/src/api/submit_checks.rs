//! The stateless checks of `SubmitTx` (size, encoding, chain id, signature), batched across
//! the calls that arrive together.
//!
//! One ed25519 signature checked alone costs about twice its share of a batch. Each call sends
//! its tx bytes to one checking task and awaits its own verdict; the task takes every call
//! already waiting (up to [`MAX_BATCH`]) and checks them with [`TxVerifier::verify_batch`] on
//! the blocking pool — the check gossiped txs get. Nothing waits to fill a batch: a call that
//! finds the task idle is checked at once, alone; under load, the calls that arrive while a
//! batch is being checked form the next one.
//!
//! Invariants:
//! - every call gets exactly the verdict [`TxVerifier::verify`] would give it, and its own
//!   bytes back: a batch that fails is re-checked tx by tx (`verify_batch`), so one bad
//!   signature never refuses its neighbours;
//! - a call whose client went away is dropped without harm (its reply has no receiver);
//! - the task ends when the last [`SubmitChecks`] handle is dropped.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::mempool::{Mempool, MempoolError, TxVerifier, VerifiedTx};

/// The most calls checked in one batch.
pub const MAX_BATCH: usize = 256;

/// Calls waiting for the checking task; beyond this the callers wait to enqueue.
const QUEUE: usize = 4 * MAX_BATCH;

/// A verdict, with the tx bytes handed back for gossip.
pub type Verdict = (Vec<u8>, Result<VerifiedTx, MempoolError>);

struct Call {
    tx: Vec<u8>,
    reply: oneshot::Sender<Verdict>,
}

/// A handle on the checking task; cheap to clone.
#[derive(Debug, Clone)]
pub struct SubmitChecks {
    calls: mpsc::Sender<Call>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("bytes", &self.tx.len())
            .finish()
    }
}

impl SubmitChecks {
    /// Start the checking task on the current tokio runtime. The verifier is taken from the
    /// pool (chain id and size limit never change while a node runs).
    pub fn spawn(mempool: &Arc<Mutex<Mempool>>) -> SubmitChecks {
        let verifier = mempool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .verifier();
        let (calls, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(verifier, queue));
        SubmitChecks { calls }
    }

    /// Check `tx`; returns its bytes with the verdict.
    pub async fn check(&self, tx: Vec<u8>) -> Result<Verdict, Status> {
        let (reply, verdict) = oneshot::channel();
        self.calls
            .send(Call { tx, reply })
            .await
            .map_err(|_| stopped())?;
        verdict.await.map_err(|_| stopped())
    }
}

fn stopped() -> Status {
    Status::unavailable("the node is shutting down: its transaction checks have stopped")
}

async fn run(verifier: TxVerifier, mut queue: mpsc::Receiver<Call>) {
    let mut calls = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut calls, MAX_BATCH).await > 0 {
        let batch = std::mem::replace(&mut calls, Vec::with_capacity(MAX_BATCH));
        let verifier = verifier.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let (txs, replies): (Vec<Vec<u8>>, Vec<_>) =
                batch.into_iter().map(|call| (call.tx, call.reply)).unzip();
            let verdicts = verifier.verify_batch(&txs);
            for ((tx, verdict), reply) in txs.into_iter().zip(verdicts).zip(replies) {
                // The caller may have gone (client cancelled): nothing to tell it.
                let _ = reply.send((tx, verdict));
            }
        })
        .await;
        if let Err(e) = checked {
            // A panic in the checks: its callers see their reply dropped ("shutting down")
            // rather than a verdict; later calls are still checked.
            tracing::error!(error = %e, "the check of submitted txs failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MempoolSection;
    use gongzhi_ledger::{Canonical, Keypair, Tx};

    /// Many calls at once, good and bad mixed: each gets the verdict a lone check gives it,
    /// with its own bytes, and a bad signature in a batch refuses only its own tx.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_get_their_own_verdicts() {
        let mempool = Arc::new(Mutex::new(Mempool::new(
            "test-chain",
            MempoolSection::default(),
        )));
        let verifier = mempool.lock().expect("pool").verifier();
        let checks = SubmitChecks::spawn(&mempool);
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_secret([i; 32])).collect();
        let mut inputs: Vec<Vec<u8>> = (0..300u64)
            .map(|i| Tx::sign(&keys[(i % 4) as usize], "test-chain", i + 1, vec![i as u8]).encode())
            .collect();
        let mut forged = Tx::sign(&keys[0], "test-chain", 1_000, vec![1]);
        forged.body.call = vec![2];
        inputs[37] = forged.encode();
        inputs[150] = Tx::sign(&keys[1], "other-chain", 2_000, vec![1]).encode();
        inputs[151] = vec![0xff; 40];
        inputs[299] = Tx::sign(&keys[2], "test-chain", 3_000, vec![0; 70_000]).encode();

        let calls = inputs.iter().map(|tx| checks.check(tx.clone()));
        let verdicts = futures::future::join_all(calls).await;

        let mut refused = 0;
        for (input, verdict) in inputs.iter().zip(verdicts) {
            let (bytes, verdict) = verdict.expect("the checking task answers");
            assert_eq!(&bytes, input, "a call got another call's bytes back");
            match (verdict, verifier.verify(input)) {
                (Ok(got), Ok(alone)) => assert_eq!(got.hash(), alone.hash()),
                (Err(got), Err(alone)) => {
                    assert_eq!(got, alone);
                    refused += 1;
                }
                (got, alone) => panic!("batched {got:?}, alone {alone:?}"),
            }
        }
        assert_eq!(refused, 4, "exactly the four bad txs are refused");
    }
}
