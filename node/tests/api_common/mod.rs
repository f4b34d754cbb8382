//! Shared setup of the API tests: a one-validator devnet of real node processes and a client
//! that signs and submits calls with the devnet's operator keys.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use gongzhi_contracts::{Call, CallOutput, GrantId};
use gongzhi_devnet::{Devnet, DevnetOptions};
use gongzhi_ledger::{Canonical, Keypair, Timestamp};
use gongzhi_node::cli::api_client::ApiClient;
use gongzhi_proto::v1::{SubmitTxRequest, TxReceipt};

/// A running devnet with a client of node 0.
pub struct TestNet {
    pub devnet: Devnet,
    pub dir: tempfile::TempDir,
    pub client: ApiClient,
    pub keys: BTreeMap<String, Keypair>,
    pub chain_id: String,
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = self.devnet.stop_all(Duration::from_secs(5));
    }
}

/// Start a one-validator devnet (`yuetan-street` validates; members `health-commission`,
/// `police-xicheng`, `sanlihe-service`, `audit-bureau`).
pub async fn start() -> TestNet {
    let dir = tempfile::tempdir().unwrap();
    let options = DevnetOptions {
        dir: dir.path().join("net"),
        validators: 1,
        chain_id: "api-test-1".into(),
        seed: "api-test".into(),
        binary: env!("CARGO_BIN_EXE_gongzhi").into(),
        empty_block_interval_ms: 300,
        timeout_propose_ms: 300,
        observers: 0,
    };
    let mut devnet = tokio::task::spawn_blocking(move || {
        let mut devnet = Devnet::create(&options).unwrap();
        devnet.start_all().unwrap();
        devnet.wait_ready(Duration::from_secs(60)).unwrap();
        devnet.wait_height(0, 1, Duration::from_secs(60)).unwrap();
        devnet
    })
    .await
    .unwrap();
    let keys = devnet.operator_keys();
    let client = ApiClient::connect(&devnet.nodes[0].rpc_addr).await.unwrap();
    let _ = &mut devnet;
    TestNet {
        devnet,
        dir,
        client,
        keys,
        chain_id: "api-test-1".into(),
    }
}

impl TestNet {
    /// gRPC address of node 0.
    pub fn addr(&self) -> String {
        self.devnet.nodes[0].rpc_addr.clone()
    }

    /// Sign `call` as `org`, submit it, wait for its commit; the receipt.
    pub async fn submit(&mut self, org: &str, call: Call) -> TxReceipt {
        let key = self
            .keys
            .get(org)
            .unwrap_or_else(|| panic!("no key for {org}"));
        let nonce = self.client.next_nonce(&key.public()).await.unwrap();
        let tx = call.sign(key, &self.chain_id, nonce);
        let response = self
            .client
            .ledger
            .submit_tx(SubmitTxRequest {
                tx: tx.encode(),
                wait_for_commit: true,
            })
            .await
            .unwrap_or_else(|s| panic!("{} by {org} not accepted: {s}", call.name()))
            .into_inner();
        response.receipt.unwrap()
    }

    /// Like [`TestNet::submit`], and the call must succeed; its output.
    pub async fn must(&mut self, org: &str, call: Call) -> (u64, CallOutput) {
        let name = call.name();
        let receipt = self.submit(org, call).await;
        assert!(
            receipt.success,
            "{name} by {org} failed: {} {}",
            receipt.error_name, receipt.error_message
        );
        (
            receipt.height,
            CallOutput::from_data(&receipt.result).unwrap(),
        )
    }

    /// A call that creates a grant; its id and height.
    pub async fn grant(&mut self, org: &str, call: Call) -> (GrantId, u64) {
        match self.must(org, call).await {
            (height, CallOutput::Grant(id)) => (id, height),
            (_, other) => panic!("expected a grant, got {other:?}"),
        }
    }
}

/// Wall-clock now.
pub fn now() -> Timestamp {
    gongzhi_node::driver::now()
}
