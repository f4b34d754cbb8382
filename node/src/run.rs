//! `gongzhi start`: wire config, keys, chain, mempool, network, driver, API and metrics
//! together, and stop them cleanly on Ctrl-C or SIGTERM.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gongzhi_contracts::Genesis;
use tokio::sync::watch;

use crate::accounts::LatestAccounts;
use crate::chain::Chain;
use crate::config::{NodeConfig, Role};
use crate::driver::{Driver, DriverParts};
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::network::{self, BanPolicy, BlockSource, Network, NetworkConfig, PeerAddress};
use gongzhi_ledger::keyfile;

/// Load a genesis file (TOML).
pub fn load_genesis(path: &Path) -> Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis file {}", path.display()))?;
    let genesis: Genesis = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid genesis file", path.display()))?;
    genesis
        .validate()
        .with_context(|| format!("genesis file {} is invalid", path.display()))?;
    Ok(genesis)
}

/// Serves block sync from the chain.
struct ChainBlocks(Chain);

impl BlockSource for ChainBlocks {
    fn status(&self) -> u64 {
        self.0.height()
    }

    fn blocks(&self, from: u64, max: u32) -> Vec<Vec<u8>> {
        self.0
            .blocks_for_sync(from, max, network::DEFAULT_MAX_RESPONSE_BYTES)
    }
}

/// Everything a running node shares with its API.
#[derive(Debug, Clone)]
pub struct NodeContext {
    /// The chain.
    pub chain: Chain,
    /// The mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Signer view for the mempool.
    pub accounts: Arc<LatestAccounts>,
    /// Gossip.
    pub network: network::NetworkHandle,
    /// Status and commit announcements.
    pub driver: crate::driver::DriverHandles,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Config.
    pub config: NodeConfig,
    /// Whether this node votes.
    pub role: Role,
    /// This node's key.
    pub node_key: gongzhi_ledger::PublicKey,
}

/// Run a node from its home directory until Ctrl-C / SIGTERM.
pub async fn start(home: &Path) -> Result<()> {
    let config = NodeConfig::load(home)?;
    let genesis = load_genesis(&NodeConfig::path(home, &config.node.genesis_file))?;
    let (_, node_key) = keyfile::read_key(&NodeConfig::path(home, &config.node.node_key_file))?;
    let data_dir = NodeConfig::path(home, &config.node.data_dir);
    let chain = Chain::open_with(&data_dir, &genesis, config.storage.store_options())?;
    tracing::info!(
        chain_id = %genesis.chain_id,
        height = chain.height(),
        moniker = %config.node.moniker,
        key = %node_key.public(),
        "opened chain"
    );

    let metrics = Arc::new(Metrics::default());
    metrics.set_height(chain.height());
    let accounts = Arc::new(LatestAccounts::new(chain.clone()));
    let mempool = Arc::new(Mutex::new(Mempool::new(
        &genesis.chain_id,
        config.mempool.clone(),
    )));

    let mut net_config = NetworkConfig::new(genesis.chain_id.clone(), node_key.secret_bytes());
    net_config.listen_addrs = vec![config.p2p.listen.parse().with_context(|| {
        format!(
            "[p2p] listen = {:?} is not a multiaddress",
            config.p2p.listen
        )
    })?];
    net_config.peers = config
        .p2p
        .peers
        .iter()
        .map(|p| parse_peer(p))
        .collect::<Result<_>>()?;
    let members = member_peers(&chain)?;
    net_config.allowed_peers = members.clone();
    net_config.block_source = Arc::new(ChainBlocks(chain.clone()));
    net_config.max_transmit_size = config.p2p.max_message_bytes;
    net_config.tx_batch.interval = Duration::from_millis(config.p2p.tx_gossip_interval_ms);
    // The driver reports a verdict on every gossip message: only checked messages are
    // forwarded, and peers whose messages are garbage get banned.
    net_config.manual_validation = true;
    net_config.ban = BanPolicy {
        limit: config.p2p.ban_after_invalid,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(config.p2p.ban_seconds),
    };
    let (network, events) = Network::start(net_config).context("cannot start networking")?;

    let is_validator = config.node.role == Role::Validator;
    let (driver, handles) = Driver::new(DriverParts {
        chain: chain.clone(),
        validator_key: is_validator.then(|| node_key.clone()),
        wal_path: data_dir.join("consensus.wal"),
        mempool: mempool.clone(),
        accounts: accounts.clone(),
        network: network.clone(),
        config: config.consensus.clone(),
        metrics: metrics.clone(),
    })?;

    let membership_commits = handles.commits.subscribe();
    let context = NodeContext {
        chain: chain.clone(),
        mempool,
        accounts,
        network: network.clone(),
        driver: handles,
        metrics: metrics.clone(),
        config: config.clone(),
        role: config.node.role,
        node_key: node_key.public(),
    };
    if !config.metrics.listen.is_empty() {
        metrics.clone().serve(&config.metrics.listen).await?;
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let api = tokio::spawn(crate::api::serve(context, shutdown_rx.clone()));
    let membership = tokio::spawn(crate::membership::follow(
        chain.clone(),
        network.clone(),
        membership_commits,
        shutdown_rx.clone(),
        members,
    ));
    let driver_task = tokio::spawn(driver.run(events, shutdown_rx));

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    if let Ok(Err(e)) = driver_task.await {
        tracing::error!(error = %format!("{e:#}"), "driver stopped with an error");
    }
    let _ = network.shutdown().await;
    membership.abort();
    api.abort();
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Parse `/ip4/…/tcp/…/p2p/<peer id>`.
pub fn parse_peer(text: &str) -> Result<PeerAddress> {
    let address: network::Multiaddr = text
        .parse()
        .with_context(|| format!("[p2p] peers: {text:?} is not a multiaddress"))?;
    let Some(libp2p::multiaddr::Protocol::P2p(peer_id)) = address.iter().last() else {
        bail!("[p2p] peers: {text:?} must end with /p2p/<peer id>");
    };
    Ok(PeerAddress { peer_id, address })
}

/// Peer ids of every active organisation's node key.
pub fn member_peers(chain: &Chain) -> Result<HashSet<network::PeerId>> {
    let state = chain.store().latest_state()?;
    let mut peers = HashSet::new();
    for key in crate::accounts::member_node_keys(&state)? {
        peers.insert(network::peer_id_from_node_key(key.0)?);
    }
    Ok(peers)
}

/// Resolve `--home`.
pub fn home_dir(home: Option<PathBuf>) -> PathBuf {
    home.unwrap_or_else(|| PathBuf::from(".gongzhi"))
}
