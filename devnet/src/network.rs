//! A local network of real node processes on loopback: create its files, start, stop, seed.
//!
//! Layout of a devnet directory: `devnet.toml` (what was created: chain id, seed, nodes and
//! their ports), `genesis.toml`, `keys/<org>/{operator,node}.key`, and one home per node
//! (`node0/`, `node1/`, … made by `gongzhi init`, each with its `node.log`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gongzhi_ledger::keyfile::{self, KeyKind};
use gongzhi_ledger::{Keypair, Timestamp};
use serde::{Deserialize, Serialize};

use crate::client::{GrpcSubmitter, NodeClientBlocking};
use crate::demo;
use crate::process::{free_port, wait_until, NodeProcess};

/// How to build a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Directory for all its files.
    pub dir: PathBuf,
    /// Number of validators (≥ 1).
    pub validators: usize,
    /// Chain id.
    pub chain_id: String,
    /// Seed of the deterministic devnet keys.
    pub seed: String,
    /// The `gongzhi` binary to run.
    pub binary: PathBuf,
    /// Empty-block interval for the nodes, ms (0 = only blocks with txs).
    pub empty_block_interval_ms: u64,
    /// Consensus timeouts scale (ms of the propose timeout; the others are derived).
    pub timeout_propose_ms: u64,
    /// Observer nodes (non-voting, run by the audit bureau), 0 or 1.
    pub observers: usize,
}

/// One node of the devnet as recorded in `devnet.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Organisation running it.
    pub org: String,
    /// Home directory.
    pub home: PathBuf,
    /// p2p port.
    pub p2p_port: u16,
    /// gRPC port.
    pub rpc_port: u16,
    /// Metrics port.
    pub metrics_port: u16,
    /// Whether it only follows the chain.
    #[serde(default)]
    pub observer: bool,
}

/// What `devnet.toml` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevnetRecord {
    /// Chain id.
    pub chain_id: String,
    /// Key seed.
    pub seed: String,
    /// Nodes.
    pub nodes: Vec<NodeRecord>,
    /// Whether the demo story was seeded.
    pub seeded: bool,
}

/// A running (or stopped) devnet.
#[derive(Debug)]
pub struct Devnet {
    /// Its directory.
    pub dir: PathBuf,
    /// What it was created with.
    pub record: DevnetRecord,
    /// Node processes, by index.
    pub nodes: Vec<NodeProcess>,
}

fn peer_id(node_key: &Keypair) -> Result<String> {
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(&node_key.public().0)
        .context("invalid node key")?;
    Ok(libp2p::identity::PublicKey::from(public)
        .to_peer_id()
        .to_string())
}

impl Devnet {
    /// Create the files of a new devnet (keys, genesis, node homes). Refuses a non-empty dir.
    pub fn create(options: &DevnetOptions) -> Result<Devnet> {
        let genesis = demo::genesis(&options.chain_id, &options.seed, options.validators, now());
        Devnet::create_with_genesis(options, genesis)
    }

    /// [`Devnet::create`] with a genesis built by the caller from [`demo::genesis`] (for
    /// example with extra operator keys for a load generator). Its organisations must include
    /// the demo organisations of `options.validators`, whose keys the devnet writes.
    pub fn create_with_genesis(
        options: &DevnetOptions,
        genesis: gongzhi_contracts::Genesis,
    ) -> Result<Devnet> {
        if options.validators == 0 {
            bail!("a devnet needs at least one validator");
        }
        if options.dir.join("devnet.toml").exists() {
            bail!(
                "{} already holds a devnet; use it, or choose another --dir",
                options.dir.display()
            );
        }
        std::fs::create_dir_all(&options.dir)
            .with_context(|| format!("cannot create {}", options.dir.display()))?;
        let orgs = demo::organisations(options.validators);
        for org in &orgs {
            let dir = options.dir.join("keys").join(org.id);
            std::fs::create_dir_all(&dir)?;
            for (kind, purpose) in [(KeyKind::Operator, "operator"), (KeyKind::Node, "node")] {
                keyfile::write_key(
                    &dir.join(kind.file_name()),
                    kind,
                    &demo::demo_key(&options.seed, org.id, purpose),
                )?;
            }
        }
        let genesis_path = options.dir.join("genesis.toml");
        std::fs::write(&genesis_path, toml::to_string_pretty(&genesis)?)?;

        let mut runners: Vec<(&str, bool)> = orgs
            .iter()
            .filter(|o| o.validator)
            .map(|o| (o.id, false))
            .collect();
        if options.observers > 1 {
            bail!("a devnet runs at most one observer (the audit bureau's)");
        }
        runners.extend(std::iter::repeat_n(
            ("audit-bureau", true),
            options.observers,
        ));
        let mut nodes = Vec::new();
        for (index, (org, observer)) in runners.into_iter().enumerate() {
            nodes.push(NodeRecord {
                org: org.to_string(),
                home: options.dir.join(format!("node{index}")),
                p2p_port: free_port()?,
                rpc_port: free_port()?,
                metrics_port: free_port()?,
                observer,
            });
        }
        for (index, node) in nodes.iter().enumerate() {
            let mut cmd = Command::new(&options.binary);
            cmd.arg("init")
                .arg("--home")
                .arg(&node.home)
                .arg("--genesis")
                .arg(&genesis_path)
                .arg("--node-key")
                .arg(options.dir.join("keys").join(&node.org).join("node.key"))
                .arg("--moniker")
                .arg(&node.org)
                .arg("--p2p-listen")
                .arg(format!("/ip4/127.0.0.1/tcp/{}", node.p2p_port))
                .arg("--rpc-listen")
                .arg(format!("127.0.0.1:{}", node.rpc_port))
                .arg("--metrics-listen")
                .arg(format!("127.0.0.1:{}", node.metrics_port))
                .arg("--empty-block-interval-ms")
                .arg(options.empty_block_interval_ms.to_string());
            if node.observer {
                cmd.arg("--observer");
            }
            for (other_index, other) in nodes.iter().enumerate() {
                // Everyone dials the validators; observers are dialled by nobody (they connect out).
                if other_index != index && !other.observer {
                    let key = demo::demo_key(&options.seed, &other.org, "node");
                    cmd.arg("--peer").arg(format!(
                        "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                        other.p2p_port,
                        peer_id(&key)?
                    ));
                }
            }
            let output = cmd
                .output()
                .with_context(|| format!("cannot run {}", options.binary.display()))?;
            if !output.status.success() {
                bail!(
                    "gongzhi init for node {index} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            if options.timeout_propose_ms > 0 {
                let config = node.home.join("config.toml");
                let text = std::fs::read_to_string(&config)?;
                let scaled = text
                    .replace(
                        "timeout_propose_ms = 3000",
                        &format!("timeout_propose_ms = {}", options.timeout_propose_ms),
                    )
                    .replace(
                        "timeout_prevote_ms = 1000",
                        &format!("timeout_prevote_ms = {}", options.timeout_propose_ms / 3),
                    )
                    .replace(
                        "timeout_precommit_ms = 1000",
                        &format!("timeout_precommit_ms = {}", options.timeout_propose_ms / 3),
                    );
                std::fs::write(&config, scaled)?;
            }
        }
        let record = DevnetRecord {
            chain_id: options.chain_id.clone(),
            seed: options.seed.clone(),
            nodes,
            seeded: false,
        };
        let devnet = Devnet::from_record(&options.dir, record, &options.binary);
        devnet.save()?;
        Ok(devnet)
    }

    /// Open an existing devnet directory.
    pub fn open(dir: &Path, binary: &Path) -> Result<Devnet> {
        let text = std::fs::read_to_string(dir.join("devnet.toml"))
            .with_context(|| format!("{} holds no devnet (devnet.toml missing)", dir.display()))?;
        let record: DevnetRecord = toml::from_str(&text).context("devnet.toml is damaged")?;
        Ok(Devnet::from_record(dir, record, binary))
    }

    fn from_record(dir: &Path, record: DevnetRecord, binary: &Path) -> Devnet {
        let nodes = record
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                NodeProcess::new(
                    i,
                    binary,
                    n.home.clone(),
                    format!("127.0.0.1:{}", n.rpc_port),
                    format!("127.0.0.1:{}", n.metrics_port),
                )
            })
            .collect();
        Devnet {
            dir: dir.to_path_buf(),
            record,
            nodes,
        }
    }

    fn save(&self) -> Result<()> {
        std::fs::write(
            self.dir.join("devnet.toml"),
            toml::to_string_pretty(&self.record)?,
        )?;
        Ok(())
    }

    /// Start every node.
    pub fn start_all(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            node.start()?;
        }
        Ok(())
    }

    /// Stop every node (SIGTERM, then SIGKILL after `grace`).
    pub fn stop_all(&mut self, grace: Duration) -> Result<()> {
        for node in &mut self.nodes {
            node.stop(grace)?;
        }
        Ok(())
    }

    /// A client of node `index`.
    pub fn client(&self, index: usize, timeout: Duration) -> Result<NodeClientBlocking> {
        NodeClientBlocking::connect(&self.nodes[index].rpc_addr, timeout)
    }

    /// Latest height of node `index`, if its API answers.
    pub fn height(&self, index: usize) -> Option<u64> {
        let mut client = self.client(index, Duration::from_secs(2)).ok()?;
        client.status().ok().map(|s| s.latest_height)
    }

    /// Wait until every running node answers its API.
    pub fn wait_ready(&mut self, deadline: Duration) -> Result<()> {
        for index in 0..self.nodes.len() {
            if !self.nodes[index].is_running() {
                continue;
            }
            let node = &self.nodes[index];
            wait_until(
                &format!("node {index} to answer on {}", node.rpc_addr),
                deadline,
                || self.height(index),
            )
            .with_context(|| {
                format!(
                    "last log lines of node {index}:\n{}",
                    self.nodes[index].log_tail(20)
                )
            })?;
        }
        Ok(())
    }

    /// Wait until node `index` reaches `height`.
    pub fn wait_height(&self, index: usize, height: u64, deadline: Duration) -> Result<u64> {
        wait_until(
            &format!("node {index} to reach height {height}"),
            deadline,
            || self.height(index).filter(|h| *h >= height),
        )
        .with_context(|| {
            format!(
                "last log lines of node {index}:\n{}",
                self.nodes[index].log_tail(20)
            )
        })
    }

    /// Number of validators.
    pub fn validator_count(&self) -> usize {
        self.record.nodes.iter().filter(|n| !n.observer).count()
    }

    /// Operator keys of every organisation.
    pub fn operator_keys(&self) -> BTreeMap<String, Keypair> {
        demo::organisations(self.validator_count())
            .iter()
            .map(|o| {
                (
                    o.id.to_string(),
                    demo::demo_key(&self.record.seed, o.id, "operator"),
                )
            })
            .collect()
    }

    /// Tell the demo story through node `index` (once per devnet).
    pub fn seed(&mut self, index: usize) -> Result<Vec<demo::StoryLine>> {
        if self.record.seeded {
            return Ok(Vec::new());
        }
        let client = self.client(index, Duration::from_secs(10))?;
        let mut submitter = GrpcSubmitter::new(client, &self.record.chain_id, self.operator_keys());
        let story = demo::tell_story(&mut submitter)?;
        self.record.seeded = true;
        self.save()?;
        Ok(story)
    }
}

fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp(millis)
}
