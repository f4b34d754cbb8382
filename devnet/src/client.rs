//! A small blocking gRPC client for devnets, load generation and tests: submit signed calls
//! and read node status. It owns a tokio runtime so callers stay synchronous.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gongzhi_contracts::Call;
use gongzhi_ledger::{Block, CommitCertificate, Hash};
use gongzhi_ledger::{Canonical, Keypair, Receipt, Timestamp, Tx};
use gongzhi_proto::v1::ledger_client::LedgerClient;
use gongzhi_proto::v1::node_client::NodeClient;
use gongzhi_proto::v1::{
    get_block_request, GetBlockRequest, GetStateProofRequest, GetTxRequest, StatusRequest,
    StatusResponse, SubmitTxRequest, TxStatus,
};
use tonic::transport::Channel;

/// A connection to one node's gRPC API.
#[derive(Debug)]
pub struct NodeClientBlocking {
    runtime: tokio::runtime::Runtime,
    ledger: LedgerClient<Channel>,
    node: NodeClient<Channel>,
}

impl NodeClientBlocking {
    /// Connect to `addr` (`127.0.0.1:9090`), waiting up to `timeout` for it to accept.
    pub fn connect(addr: &str, timeout: Duration) -> Result<NodeClientBlocking> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(timeout)
            .timeout(Duration::from_secs(60));
        let channel = runtime
            .block_on(endpoint.connect())
            .with_context(|| format!("cannot connect to the node API at {addr}"))?;
        Ok(NodeClientBlocking {
            ledger: LedgerClient::new(channel.clone()),
            node: NodeClient::new(channel),
            runtime,
        })
    }

    /// Node status.
    pub fn status(&mut self) -> Result<StatusResponse> {
        let response = self.runtime.block_on(self.node.status(StatusRequest {}))?;
        Ok(response.into_inner())
    }

    /// Block and certificate at `height`, if committed.
    pub fn block(&mut self, height: u64) -> Result<Option<(Block, CommitCertificate)>> {
        let request = GetBlockRequest {
            block: Some(get_block_request::Block::Height(height)),
        };
        match self.runtime.block_on(self.ledger.get_block(request)) {
            Ok(response) => {
                let committed = response
                    .into_inner()
                    .block
                    .context("GetBlock returned no block")?;
                Ok(Some((
                    Block::decode(&committed.block)?,
                    CommitCertificate::decode(&committed.commit_certificate)?,
                )))
            }
            Err(status) if status.code() == tonic::Code::OutOfRange => Ok(None),
            Err(status) => bail!(
                "GetBlock({height}): {}: {}",
                status.code(),
                status.message()
            ),
        }
    }

    /// The last committed nonce of `signer` (0 if it never signed), read from the latest state.
    pub fn nonce(&mut self, signer: &gongzhi_ledger::PublicKey) -> Result<u64> {
        let key = gongzhi_contracts::keys::nonce(signer);
        let response = self
            .runtime
            .block_on(self.ledger.get_state_proof(GetStateProofRequest {
                key: key.clone(),
                consistency: None,
            }))
            .map_err(|status| {
                anyhow::anyhow!("GetStateProof: {}: {}", status.code(), status.message())
            })?
            .into_inner();
        let mut state = gongzhi_ledger::MemoryState::new();
        if let Some(value) = response.value {
            state.insert(key, value);
        }
        Ok(gongzhi_contracts::execute::nonce(&state, signer)?)
    }

    /// Height of a committed tx, `None` if it is pending or unknown.
    pub fn tx_height(&mut self, hash: &Hash) -> Result<Option<u64>> {
        match self.runtime.block_on(self.ledger.get_tx(GetTxRequest {
            tx_hash: hash.0.to_vec(),
        })) {
            Ok(response) => {
                let r = response.into_inner();
                Ok((r.status == TxStatus::Committed as i32).then_some(r.height))
            }
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => bail!("GetTx: {}: {}", status.code(), status.message()),
        }
    }

    /// Submit a tx and return the gRPC status on refusal (for tests of bad input).
    pub fn submit_raw(
        &mut self,
        bytes: Vec<u8>,
        wait: bool,
    ) -> std::result::Result<Option<u64>, tonic::Status> {
        self.runtime
            .block_on(self.ledger.submit_tx(SubmitTxRequest {
                tx: bytes,
                wait_for_commit: wait,
            }))
            .map(|r| r.into_inner().height)
    }

    /// Submit a signed tx; with `wait`, return the committed height and receipt.
    pub fn submit(&mut self, tx: &Tx, wait: bool) -> Result<(Option<u64>, Option<Receipt>)> {
        let response = self
            .runtime
            .block_on(self.ledger.submit_tx(SubmitTxRequest {
                tx: tx.encode(),
                wait_for_commit: wait,
            }))
            .map_err(|status| anyhow::anyhow!("{}: {}", status.code(), status.message()))?
            .into_inner();
        let receipt = match response.receipt {
            Some(r) if !r.canonical.is_empty() => Some(Receipt::decode(&r.canonical)?),
            _ => None,
        };
        Ok((response.height, receipt))
    }
}

/// Submits story calls as organisations, tracking each signer's nonce.
#[derive(Debug)]
pub struct GrpcSubmitter {
    client: NodeClientBlocking,
    chain_id: String,
    keys: BTreeMap<String, Keypair>,
    nonces: BTreeMap<String, u64>,
}

impl GrpcSubmitter {
    /// Sign with `keys` (org id → operator key) on `chain_id`; nonces start after `nonces`.
    pub fn new(
        client: NodeClientBlocking,
        chain_id: &str,
        keys: BTreeMap<String, Keypair>,
    ) -> GrpcSubmitter {
        GrpcSubmitter {
            client,
            chain_id: chain_id.to_string(),
            keys,
            nonces: BTreeMap::new(),
        }
    }
}

impl crate::demo::Submitter for GrpcSubmitter {
    fn submit(&mut self, org: &str, call: Call) -> Result<(u64, Receipt)> {
        let key = self
            .keys
            .get(org)
            .with_context(|| format!("no operator key for {org}"))?;
        let nonce = self.nonces.entry(org.to_string()).or_insert(0);
        *nonce += 1;
        let tx = call.sign(key, &self.chain_id, *nonce);
        match self.client.submit(&tx, true)? {
            (Some(height), Some(receipt)) => Ok((height, receipt)),
            _ => bail!("the node did not return a commit for {}", call.name()),
        }
    }

    fn chain_time(&mut self) -> Result<Timestamp> {
        Ok(Timestamp(self.client.status()?.latest_block_time_ms))
    }
}
