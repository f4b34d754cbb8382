//! `gongzhi.v1.Ledger`: submit txs (optionally waiting for their commit), read txs, receipts,
//! blocks, state proofs, and stream blocks as they commit.

use std::pin::Pin;
use std::sync::PoisonError;
use std::time::Duration;

use futures::Stream;
use gongzhi_ledger::{Canonical, Hash};
use gongzhi_proto::v1::ledger_server::Ledger;
use gongzhi_proto::v1::{
    get_block_request, GetBlockRequest, GetBlockResponse, GetReceiptRequest, GetReceiptResponse,
    GetStateProofRequest, GetStateProofResponse, GetTxRequest, GetTxResponse, StreamBlocksRequest,
    StreamBlocksResponse, SubmitTxRequest, SubmitTxResponse, SubmitTxResult, SubmitTxsRequest,
    SubmitTxsResponse, TxStatus,
};
use gongzhi_proto::MAX_SUBMIT_TXS;
use tonic::{Request, Response, Status};

use super::consistency::{deadline_of, internal, read_store, resolve_height};
use super::convert::{committed_block, hash_field, receipt};
use super::submit_checks::{SubmitChecks, Verdict};
use crate::mempool::MempoolError;
use crate::run::NodeContext;

/// The Ledger service.
#[derive(Debug, Clone)]
pub struct LedgerService {
    context: NodeContext,
    checks: SubmitChecks,
}

impl LedgerService {
    /// Serve from `context`; starts the task that checks submitted txs in batches, on the
    /// current runtime.
    pub fn new(context: NodeContext) -> LedgerService {
        let checks = SubmitChecks::spawn(&context.mempool);
        LedgerService { context, checks }
    }

    fn default_deadline(&self) -> Duration {
        Duration::from_millis(self.context.config.rpc.default_deadline_ms)
    }
}

/// Map a mempool refusal to the status code its meaning calls for.
pub fn mempool_status(e: &MempoolError) -> Status {
    let message = e.to_string();
    match e {
        MempoolError::Full { .. }
        | MempoolError::FullBytes { .. }
        | MempoolError::SignerQueueFull { .. } => Status::resource_exhausted(message),
        MempoolError::TooLarge { .. }
        | MempoolError::Malformed(_)
        | MempoolError::WrongChain { .. } => Status::invalid_argument(format!("tx: {message}")),
        MempoolError::BadSignature(_) => Status::unauthenticated(message),
        MempoolError::UnknownSigner(_) => Status::permission_denied(message),
        MempoolError::NonceUsed { .. }
        | MempoolError::NoncePending { .. }
        | MempoolError::Duplicate(_) => Status::already_exists(message),
    }
}

type BlockStream = Pin<Box<dyn Stream<Item = Result<StreamBlocksResponse, Status>> + Send>>;

/// What became of one submitted tx: its hash if admitted; else why, with its hash if it
/// decoded.
type Admission = Result<Hash, (Option<Hash>, MempoolError)>;

impl LedgerService {
    /// Admit checked txs in order under one lock of the pool, then gossip the admitted ones:
    /// the part of `SubmitTx` and `SubmitTxs` after the stateless checks.
    async fn admit_and_gossip(&self, verdicts: Vec<Verdict>) -> Vec<Admission> {
        let mut admitted = Vec::new();
        let admissions: Vec<Admission> = {
            let mut pool = self
                .context
                .mempool
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let admissions = verdicts
                .into_iter()
                .map(|(tx, verdict)| {
                    let verified = verdict.map_err(|e| (None, e))?;
                    let hash = verified.hash();
                    pool.admit_verified(verified, self.context.accounts.as_ref())
                        .map_err(|e| (Some(hash), e))?;
                    admitted.push(tx);
                    Ok(hash)
                })
                .collect();
            self.context
                .metrics
                .set_mempool(pool.len(), pool.total_bytes());
            admissions
        };
        let network = &self.context.network;
        let gossiped = admitted.into_iter().map(|tx| network.publish_tx(tx));
        for outcome in futures::future::join_all(gossiped).await {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "could not gossip a submitted tx (no peers yet?)");
            }
        }
        admissions
    }

    async fn tx_receipt(&self, hash: Hash) -> Result<Option<gongzhi_proto::v1::TxReceipt>, Status> {
        read_store(&self.context, move |store| {
            let Some((height, index, _)) = store.tx(&hash).map_err(internal)? else {
                return Ok(None);
            };
            let Some(r) = store.receipt(&hash).map_err(internal)? else {
                return Ok(None);
            };
            Ok(Some(receipt(&r, height, index)))
        })
        .await
    }
}

#[tonic::async_trait]
impl Ledger for LedgerService {
    async fn submit_tx(
        &self,
        request: Request<SubmitTxRequest>,
    ) -> Result<Response<SubmitTxResponse>, Status> {
        let deadline = deadline_of(request.metadata(), self.default_deadline());
        let request = request.into_inner();
        if request.tx.is_empty() {
            return Err(Status::invalid_argument(
                "tx is empty: send the tx's canonical bytes",
            ));
        }
        let mut commits = self.context.driver.commits.subscribe();
        // Decode and check the signature before taking the mempool lock, batched with the
        // calls arriving at the same time: only the checks that need the pool's state run
        // under the lock.
        let verdict = self.checks.check(request.tx).await?;
        let hash = self
            .admit_and_gossip(vec![verdict])
            .await
            .pop()
            .ok_or_else(|| Status::internal("no admission verdict for the tx"))?
            .map_err(|(_, e)| mempool_status(&e))?;
        let mut response = SubmitTxResponse {
            tx_hash: hash.0.to_vec(),
            height: None,
            receipt: None,
        };
        if !request.wait_for_commit {
            return Ok(Response::new(response));
        }
        let wait = async {
            loop {
                if let Some(r) = self.tx_receipt(hash).await? {
                    return Ok::<_, Status>(r);
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), commits.recv()).await;
            }
        };
        match tokio::time::timeout(deadline, wait).await {
            Ok(result) => {
                let r = result?;
                response.height = Some(r.height);
                response.receipt = Some(r);
                Ok(Response::new(response))
            }
            Err(_) => Err(Status::deadline_exceeded(format!(
                "tx {hash} was accepted but not committed within {} ms; query it later with GetTx",
                deadline.as_millis()
            ))),
        }
    }

    async fn submit_txs(
        &self,
        request: Request<SubmitTxsRequest>,
    ) -> Result<Response<SubmitTxsResponse>, Status> {
        let txs = request.into_inner().txs;
        if txs.is_empty() {
            return Err(Status::invalid_argument(
                "txs is empty: send each tx's canonical bytes",
            ));
        }
        if txs.len() > MAX_SUBMIT_TXS {
            return Err(Status::invalid_argument(format!(
                "{} txs in one call; at most {MAX_SUBMIT_TXS}: split them over several calls",
                txs.len()
            )));
        }
        // All of the call's txs reach the checking task together, so they are checked as one
        // signature batch (with any other calls' txs waiting there).
        let verdicts = futures::future::join_all(txs.into_iter().map(|tx| self.checks.check(tx)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, Status>>()?;
        let results = self
            .admit_and_gossip(verdicts)
            .await
            .into_iter()
            .map(|admission| {
                let (hash, code, message) = match admission {
                    Ok(hash) => (Some(hash), tonic::Code::Ok, String::new()),
                    Err((hash, e)) => {
                        let status = mempool_status(&e);
                        (hash, status.code(), status.message().to_string())
                    }
                };
                SubmitTxResult {
                    tx_hash: hash.map_or_else(Vec::new, |hash| hash.0.to_vec()),
                    code: code as i32,
                    message,
                }
            })
            .collect();
        Ok(Response::new(SubmitTxsResponse { results }))
    }

    async fn get_tx(
        &self,
        request: Request<GetTxRequest>,
    ) -> Result<Response<GetTxResponse>, Status> {
        let hash = hash_field(&request.into_inner().tx_hash, "tx_hash")?;
        let committed = read_store(&self.context, move |store| {
            store.tx(&hash).map_err(internal)
        })
        .await?;
        if let Some((height, index, tx)) = committed {
            return Ok(Response::new(GetTxResponse {
                tx: tx.encode(),
                tx_hash: hash.0.to_vec(),
                status: TxStatus::Committed as i32,
                height,
                index,
                chain_id: tx.body.chain_id.clone(),
                signer: tx.body.signer.0.to_vec(),
                nonce: tx.body.nonce,
            }));
        }
        let pending = self
            .context
            .mempool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&hash);
        if pending {
            return Ok(Response::new(GetTxResponse {
                tx_hash: hash.0.to_vec(),
                status: TxStatus::Pending as i32,
                ..GetTxResponse::default()
            }));
        }
        Err(Status::not_found(format!(
            "tx {hash} is neither committed nor pending"
        )))
    }

    async fn get_receipt(
        &self,
        request: Request<GetReceiptRequest>,
    ) -> Result<Response<GetReceiptResponse>, Status> {
        let hash = hash_field(&request.into_inner().tx_hash, "tx_hash")?;
        match self.tx_receipt(hash).await? {
            Some(r) => Ok(Response::new(GetReceiptResponse { receipt: Some(r) })),
            None => Err(Status::not_found(format!("no committed tx {hash}"))),
        }
    }

    async fn get_block(
        &self,
        request: Request<GetBlockRequest>,
    ) -> Result<Response<GetBlockResponse>, Status> {
        let latest = self.context.chain.height();
        let wanted = request.into_inner().block;
        let block = read_store(&self.context, move |store| {
            let height = match wanted {
                Some(get_block_request::Block::Height(h)) => {
                    if h == 0 || h > latest {
                        return Err(Status::out_of_range(format!(
                            "no block at height {h} (blocks 1..={latest} exist)"
                        )));
                    }
                    h
                }
                Some(get_block_request::Block::Hash(bytes)) => {
                    let hash = hash_field(&bytes, "hash")?;
                    store
                        .block_height(&hash)
                        .map_err(internal)?
                        .ok_or_else(|| Status::not_found(format!("no block with hash {hash}")))?
                }
                None if latest == 0 => return Err(Status::not_found("no block committed yet")),
                None => latest,
            };
            let block = store.block(height).map_err(internal)?;
            let cert = store.certificate(height).map_err(internal)?;
            Ok(committed_block(&block, &cert))
        })
        .await?;
        Ok(Response::new(GetBlockResponse { block: Some(block) }))
    }

    type StreamBlocksStream = BlockStream;

    async fn stream_blocks(
        &self,
        request: Request<StreamBlocksRequest>,
    ) -> Result<Response<BlockStream>, Status> {
        let mut next = request.into_inner().from_height.max(1);
        let context = self.context.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut commits = context.driver.commits.subscribe();
            loop {
                while next <= context.chain.height() {
                    let height = next;
                    let item = read_store(&context, move |store| {
                        let block = store.block(height).map_err(internal)?;
                        let cert = store.certificate(height).map_err(internal)?;
                        Ok(StreamBlocksResponse {
                            block: Some(committed_block(&block, &cert)),
                        })
                    })
                    .await;
                    if tx.send(item).await.is_err() {
                        return; // client went away
                    }
                    next += 1;
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), commits.recv()).await;
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_state_proof(
        &self,
        request: Request<GetStateProofRequest>,
    ) -> Result<Response<GetStateProofResponse>, Status> {
        let deadline = deadline_of(request.metadata(), self.default_deadline());
        let request = request.into_inner();
        if request.key.is_empty() {
            return Err(Status::invalid_argument("key is empty"));
        }
        let state = resolve_height(&self.context, request.consistency.as_ref(), deadline).await?;
        let key = request.key;
        let height = state.height;
        let (key, value, proof) = read_store(&self.context, move |store| {
            let (value, proof) = store.get_with_proof(&key, height).map_err(internal)?;
            Ok((key, value, proof))
        })
        .await?;
        Ok(Response::new(GetStateProofResponse {
            key,
            value,
            proof: proof.encode(),
            state: Some(state.to_proto()),
        }))
    }
}
