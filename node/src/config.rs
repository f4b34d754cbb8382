//! Node configuration: `<home>/config.toml`, every field documented in the template that
//! `gongzhi init` writes, every field defaulted so an empty file is a valid config.
//!
//! Home layout: `config.toml`, `genesis.toml`, `keys/{operator,node}.key`, `data/` (RocksDB),
//! `data/safety.json` and `data/consensus.wal`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gongzhi_ledger::StoreOptions;
use serde::{Deserialize, Serialize};

/// The whole config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Identity and role.
    pub node: NodeSection,
    /// Peer-to-peer networking.
    pub p2p: P2pSection,
    /// Consensus timing and block limits.
    pub consensus: ConsensusSection,
    /// Transaction pool limits.
    pub mempool: MempoolSection,
    /// gRPC API.
    pub rpc: RpcSection,
    /// Prometheus metrics.
    pub metrics: MetricsSection,
    /// Block store memory.
    pub storage: StorageSection,
}

/// `[node]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// A human name for logs and status.
    pub moniker: String,
    /// `validator` (votes, if its node key has power) or `observer` (follows, serves reads).
    pub role: Role,
    /// Genesis file, relative to the home directory.
    pub genesis_file: PathBuf,
    /// Node key (network identity and consensus votes), relative to home.
    pub node_key_file: PathBuf,
    /// Data directory (block store, safety state, WAL), relative to home.
    pub data_dir: PathBuf,
    /// Log filter (`info`, `gongzhi=debug,info`, …); `RUST_LOG` overrides it.
    pub log: String,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            moniker: "gongzhi-node".into(),
            role: Role::Validator,
            genesis_file: "genesis.toml".into(),
            node_key_file: "keys/node.key".into(),
            data_dir: "data".into(),
            log: "info".into(),
        }
    }
}

/// What a node does in consensus.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes part in consensus when its node key is in the validator set.
    Validator,
    /// Follows the chain without voting.
    Observer,
}

/// `[p2p]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct P2pSection {
    /// Multiaddress to listen on.
    pub listen: String,
    /// Peers to dial: multiaddresses ending in `/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// Largest gossip message, bytes.
    pub max_message_bytes: usize,
    /// Invalid gossip messages from one peer within a minute that get it banned; 0 never bans.
    pub ban_after_invalid: u32,
    /// How long a banned peer is disconnected and refused, seconds.
    pub ban_seconds: u64,
    /// Txs this node admits are gossiped in batches: a batch goes out this many milliseconds
    /// after its first tx (or sooner when full). Longer batches cost peers fewer messages and
    /// let them check more signatures at once, for that much more latency.
    pub tx_gossip_interval_ms: u64,
}

impl Default for P2pSection {
    fn default() -> Self {
        P2pSection {
            listen: "/ip4/127.0.0.1/tcp/26656".into(),
            peers: Vec::new(),
            max_message_bytes: 4 * 1024 * 1024,
            ban_after_invalid: 10,
            ban_seconds: 300,
            tx_gossip_interval_ms: DEFAULT_TX_GOSSIP_INTERVAL_MS,
        }
    }
}

/// `[p2p] tx_gossip_interval_ms` when unset: the interval the node always used. On the 2-core
/// devnet, 50 ms batches did not commit measurably more than 10 ms ones (docs/BENCHMARKS.md,
/// session 12) and add 40 ms of latency.
pub const DEFAULT_TX_GOSSIP_INTERVAL_MS: u64 = 10;

/// Longest accepted `[p2p] tx_gossip_interval_ms`: a tx waits at most this long before its
/// first peer sees it.
pub const MAX_TX_GOSSIP_INTERVAL_MS: u64 = 1_000;

/// Room a proposal message needs beyond its block's tx bytes: header, last commit
/// certificate, proposal signature and framing.
pub const BLOCK_MESSAGE_HEADROOM: usize = 256 * 1024;

/// `[consensus]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSection {
    /// Propose timeout in round 0, milliseconds.
    pub timeout_propose_ms: u64,
    /// Prevote timeout in round 0, milliseconds.
    pub timeout_prevote_ms: u64,
    /// Precommit timeout in round 0, milliseconds.
    pub timeout_precommit_ms: u64,
    /// Added to every timeout per round, milliseconds.
    pub timeout_per_round_ms: u64,
    /// Make an empty block after this many milliseconds without txs (0 = only when txs wait).
    pub empty_block_interval_ms: u64,
    /// Start the next height at least this many milliseconds after a commit unless a full
    /// block of txs is already waiting (CometBFT's `timeout_commit`): fewer, fuller blocks at
    /// moderate load, for at most this much extra latency (0 = start as soon as txs wait).
    pub min_block_interval_ms: u64,
    /// Most txs in one block. The default keeps a block's execution on every validator well
    /// inside the propose timeout on a small (2-core) machine.
    pub max_block_txs: usize,
    /// Most tx bytes in one block; with [`BLOCK_MESSAGE_HEADROOM`] it must fit in
    /// `[p2p] max_message_bytes`, since a proposal carries its block in one gossip message.
    pub max_block_bytes: usize,
    /// Largest accepted difference between a proposed block time and this node's clock.
    pub max_clock_drift_ms: u64,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            timeout_propose_ms: 3000,
            timeout_prevote_ms: 1000,
            timeout_precommit_ms: 1000,
            timeout_per_round_ms: 500,
            empty_block_interval_ms: 5000,
            min_block_interval_ms: 100,
            max_block_txs: 2_000,
            max_block_bytes: 3 * 1024 * 1024,
            max_clock_drift_ms: 10_000,
        }
    }
}

impl ConsensusSection {
    /// The consensus core's timeout configuration.
    pub fn timeouts(&self) -> gongzhi_consensus::TimeoutConfig {
        gongzhi_consensus::TimeoutConfig {
            propose: Duration::from_millis(self.timeout_propose_ms),
            prevote: Duration::from_millis(self.timeout_prevote_ms),
            precommit: Duration::from_millis(self.timeout_precommit_ms),
            per_round: Duration::from_millis(self.timeout_per_round_ms),
        }
    }
}

/// `[mempool]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSection {
    /// Most pending txs.
    pub max_txs: usize,
    /// Most pending bytes.
    pub max_bytes: usize,
    /// Largest single tx, bytes.
    pub max_tx_bytes: usize,
    /// Most pending txs of one signer.
    pub max_txs_per_signer: usize,
}

impl Default for MempoolSection {
    fn default() -> Self {
        MempoolSection {
            max_txs: 100_000,
            max_bytes: 64 * 1024 * 1024,
            max_tx_bytes: gongzhi_ledger::tx::MAX_TX_BYTES,
            max_txs_per_signer: 10_000,
        }
    }
}

/// `[rpc]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSection {
    /// gRPC listen address (`host:port`).
    pub listen: String,
    /// Largest request or response message, bytes.
    pub max_message_bytes: usize,
    /// Requests served at once per connection.
    pub concurrency_limit: usize,
    /// Deadline applied to a request that sets none, milliseconds.
    pub default_deadline_ms: u64,
    /// API threads, each serving its share of the connections on its own runtime; 0 = one
    /// per core.
    pub threads: usize,
}

/// Most API threads a config may ask for.
pub const MAX_RPC_THREADS: usize = 256;

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection {
            listen: "127.0.0.1:9090".into(),
            max_message_bytes: 4 * 1024 * 1024,
            concurrency_limit: 1024,
            default_deadline_ms: 10_000,
            threads: 0,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Prometheus endpoint (`host:port`); empty disables it.
    pub listen: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: "127.0.0.1:9100".into(),
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    /// State-tree positions kept in memory per cache generation (two generations); 0 disables
    /// the cache.
    pub tree_cache_nodes: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            tree_cache_nodes: StoreOptions::default().node_cache_nodes,
        }
    }
}

impl StorageSection {
    /// The block store's options for this section.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            node_cache_nodes: self.tree_cache_nodes,
            ..StoreOptions::default()
        }
    }
}

/// The documented template written by `gongzhi init` (defaults, with comments).
pub const CONFIG_TEMPLATE: &str = include_str!("config_template.toml");

impl NodeConfig {
    /// Load `<home>/config.toml`.
    pub fn load(home: &Path) -> Result<NodeConfig> {
        let path = home.join("config.toml");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (create a home with `gongzhi init --home {}`)",
                path.display(),
                home.display()
            )
        })?;
        let config: NodeConfig = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid config", path.display()))?;
        config
            .validate()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    /// Reject values that cannot work, with the field name.
    pub fn validate(&self) -> Result<()> {
        let c = &self.consensus;
        if c.timeout_propose_ms == 0 || c.timeout_prevote_ms == 0 || c.timeout_precommit_ms == 0 {
            bail!("[consensus] timeouts must be above 0 ms");
        }
        if c.max_block_txs == 0 || c.max_block_bytes == 0 {
            bail!("[consensus] max_block_txs and max_block_bytes must be above 0");
        }
        if c.max_block_bytes.saturating_add(BLOCK_MESSAGE_HEADROOM) > self.p2p.max_message_bytes {
            bail!(
                "[consensus] max_block_bytes = {} does not fit a proposal in [p2p] \
                 max_message_bytes = {} (a proposal carries its block and needs {} bytes more); \
                 lower max_block_bytes or raise max_message_bytes",
                c.max_block_bytes,
                self.p2p.max_message_bytes,
                BLOCK_MESSAGE_HEADROOM
            );
        }
        if self.p2p.ban_after_invalid > 0 && self.p2p.ban_seconds == 0 {
            bail!(
                "[p2p] ban_seconds must be above 0 while ban_after_invalid = {} (set \
                 ban_after_invalid = 0 to never ban)",
                self.p2p.ban_after_invalid
            );
        }
        let interval = self.p2p.tx_gossip_interval_ms;
        if interval == 0 || interval > MAX_TX_GOSSIP_INTERVAL_MS {
            bail!(
                "[p2p] tx_gossip_interval_ms = {interval} must be 1 to {MAX_TX_GOSSIP_INTERVAL_MS} \
                 (milliseconds a tx batch waits for more txs before it is gossiped)"
            );
        }
        if self.rpc.threads > MAX_RPC_THREADS {
            bail!(
                "[rpc] threads = {} is more than {MAX_RPC_THREADS}; use 0 for one per core",
                self.rpc.threads
            );
        }
        let m = &self.mempool;
        if m.max_tx_bytes > gongzhi_ledger::tx::MAX_TX_BYTES {
            bail!(
                "[mempool] max_tx_bytes = {} exceeds the protocol limit of {} bytes",
                m.max_tx_bytes,
                gongzhi_ledger::tx::MAX_TX_BYTES
            );
        }
        if m.max_txs == 0 || m.max_bytes < m.max_tx_bytes {
            bail!("[mempool] max_txs must be above 0 and max_bytes at least max_tx_bytes");
        }
        Ok(())
    }

    /// Resolve a home-relative path.
    pub fn path(home: &Path, relative: &Path) -> PathBuf {
        if relative.is_absolute() {
            relative.to_path_buf()
        } else {
            home.join(relative)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_defaults() -> Result<()> {
        let parsed: NodeConfig = toml::from_str(CONFIG_TEMPLATE)?;
        assert_eq!(parsed, NodeConfig::default());
        parsed.validate()
    }

    #[test]
    fn the_tree_cache_size_reaches_the_store_options() -> Result<()> {
        let parsed: NodeConfig = toml::from_str("[storage]\ntree_cache_nodes = 5000\n")?;
        let options = parsed.storage.store_options();
        assert_eq!(options.node_cache_nodes, 5000);
        assert!(options.sync, "a node's store always syncs its commits");
        assert_eq!(
            NodeConfig::default().storage.store_options(),
            StoreOptions::default()
        );
        Ok(())
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err = toml::from_str::<NodeConfig>("[consensus]\ntimeout_propse_ms = 5\n")
            .expect_err("typo must be rejected");
        assert!(err.to_string().contains("timeout_propse_ms"), "{err}");
        let mut config = NodeConfig::default();
        config.mempool.max_tx_bytes = 10 * 1024 * 1024;
        let err = config.validate().expect_err("over the protocol limit");
        assert!(err.to_string().contains("max_tx_bytes"), "{err}");
        let mut config = NodeConfig::default();
        config.rpc.threads = 10_000;
        let err = config.validate().expect_err("too many API threads");
        assert!(err.to_string().contains("[rpc] threads"), "{err}");
        let mut config = NodeConfig::default();
        config.p2p.ban_seconds = 0;
        let err = config.validate().expect_err("a ban of no time");
        assert!(err.to_string().contains("[p2p] ban_seconds"), "{err}");
        config.p2p.ban_after_invalid = 0;
        assert!(config.validate().is_ok(), "never banning needs no duration");
        for interval in [0, MAX_TX_GOSSIP_INTERVAL_MS + 1] {
            let mut config = NodeConfig::default();
            config.p2p.tx_gossip_interval_ms = interval;
            let err = config.validate().expect_err("gossip interval out of range");
            assert!(
                err.to_string().contains("[p2p] tx_gossip_interval_ms"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_full_block_proposal_must_fit_a_gossip_message() {
        let defaults = NodeConfig::default();
        assert!(
            defaults.consensus.max_block_bytes + BLOCK_MESSAGE_HEADROOM
                <= defaults.p2p.max_message_bytes
        );
        let mut config = NodeConfig::default();
        config.consensus.max_block_bytes = 8 * 1024 * 1024;
        let err = config.validate().expect_err("block over the gossip limit");
        assert!(err.to_string().contains("max_message_bytes"), "{err}");
        config.p2p.max_message_bytes = 16 * 1024 * 1024;
        config.validate().expect("raised limit fits");
    }
}
