//! The consensus driver: runs the pure consensus core with real time, the network, the
//! mempool and the chain.
//!
//! One task owns the core and processes, in order: network messages, timeouts, sync results
//! and commands. For each `Vec<Output>` of the core it performs the outputs front to back:
//! - `PersistSafetyState` is appended to the WAL and fsynced *before* anything later in the
//!   list is broadcast (the core emits it first), so a restarted validator cannot double-sign;
//! - `Decide` commits block + certificate in one fsynced batch *before* the next height starts.
//!
//! Blocks travel with their proposal (`ConsensusWire::Proposal`); a block is executed before we
//! prevote for it (`VerifyValue`) and the proposer executes its own before proposing, so the
//! header's state root is checked by every validator. The next height starts once txs wait and
//! `min_block_interval_ms` has passed since the commit (at once if a full block waits); with no
//! pending txs, only after `empty_block_interval_ms` (or when a peer's message shows it started).
//! A node that is behind (or an observer) catches up by block sync, verifying each certificate.
//!
//! Gossiped tx batches never touch this task's time: they go to a separate ingest task that
//! batch-verifies their signatures on the blocking pool, without the mempool lock, and only
//! then admits them under the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use gongzhi_consensus::{
    Consensus, ConsensusConfig, Height, Input, Output, SafetyModule, SafetyState, SignedProposal,
    SignedVote, ValueId,
};
use gongzhi_ledger::wal::Wal;
use gongzhi_ledger::{Block, Canonical, CommitCertificate, Hash, PublicKey, Timestamp, Tx};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::chain::{certificate_from_votes, Chain, Executed, SyncedBlock};
use crate::config::ConsensusSection;
use crate::mempool::{AccountView, Mempool, MempoolError, SignerFloors, TxVerifier};
use crate::metrics::{ConsensusStep, Execution, Metrics};
use crate::network::{MessageId, NetworkEvent, NetworkHandle, PeerId, Validation};
use crate::signer::{ChainSigner, ChainVerifier};

/// A consensus message on the wire. Proposals carry their block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ConsensusWire {
    /// A signed proposal and the block it proposes.
    Proposal {
        /// The proposal.
        proposal: SignedProposal,
        /// The block whose hash is `proposal.value` (boxed: blocks dwarf votes).
        block: Box<Block>,
    },
    /// A signed vote.
    Vote(SignedVote),
}

impl Canonical for ConsensusWire {
    const KIND: &'static str = "consensus message";
    const MAX_BYTES: usize = 16 * 1024 * 1024;
}

/// A consensus message as gossiped: `resend` makes a re-broadcast distinct bytes, so gossip
/// (which drops content it has seen) carries it again to peers that missed the first copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsensusEnvelope {
    /// 0 for the first send, then 1, 2, … for re-broadcasts.
    pub resend: u64,
    /// The message.
    pub message: ConsensusWire,
}

impl Canonical for ConsensusEnvelope {
    const KIND: &'static str = "consensus envelope";
    const MAX_BYTES: usize = 16 * 1024 * 1024;
}

/// WAL size past which a commit compacts it to the current safety state. A safety state is
/// about a hundred bytes and a height appends two or three, so this is hundreds of heights.
const WAL_CHECKPOINT_BYTES: u64 = 256 * 1024;

/// How long a height may go without progress before our signed messages are sent again.
const REBROADCAST_AFTER: Duration = Duration::from_millis(1500);

/// What the driver publishes about itself (read by the API and the status line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// Latest committed height.
    pub height: u64,
    /// Hash of the latest block.
    pub block_hash: Hash,
    /// Time of the latest block.
    pub block_time: Timestamp,
    /// Round the core is in (validators).
    pub round: u32,
    /// Connected peers.
    pub peers: usize,
    /// Whether the node is catching up by block sync.
    pub syncing: bool,
}

/// A committed block, announced to API streams and waiting clients.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// Tx hashes in the block.
    pub txs: Vec<Hash>,
}

/// Handles the rest of the node uses to talk to the driver.
#[derive(Debug, Clone)]
pub struct DriverHandles {
    /// Latest status.
    pub status: watch::Receiver<NodeStatus>,
    /// Commit announcements.
    pub commits: broadcast::Sender<Committed>,
}

enum Event {
    Timeout(Input),
    /// Blocks fetched from a peer, and the height that peer reported.
    Synced(Vec<SyncedBlock>, u64),
    SyncFailed,
}

/// Wall-clock now as a block timestamp. The only clock read of the node's consensus path;
/// it never enters the core, only proposals' times and their timeliness check.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp(millis)
}

/// The driver task's state.
pub struct Driver {
    chain: Chain,
    core: Option<Consensus<ChainSigner, ChainVerifier>>,
    our_key: Option<PublicKey>,
    mempool: Arc<Mutex<Mempool>>,
    accounts: Arc<dyn AccountView + Send + Sync>,
    network: NetworkHandle,
    wal: Option<Wal>,
    config: ConsensusSection,
    metrics: Arc<Metrics>,
    /// Blocks received with proposals for the current height, by hash.
    blocks: BTreeMap<ValueId, Block>,
    /// Blocks executed against our tip, by hash.
    executed: BTreeMap<ValueId, Executed>,
    /// Blocks the core asked us to verify that have not arrived yet.
    awaiting: BTreeMap<ValueId, Height>,
    /// A decision whose block we do not have yet.
    undelivered: Option<(ValueId, CommitCertificate)>,
    last_commit: Option<CommitCertificate>,
    /// Next height to start, when waiting for txs.
    pending_start: Option<u64>,
    last_commit_at: Instant,
    /// The step the current height is in, for `gongzhi_consensus_step_seconds`.
    step_clock: StepClock,
    /// A sync request is in flight.
    syncing: bool,
    /// Known to be more than two blocks behind a peer (what `Status.syncing` reports).
    catching_up: bool,
    last_progress: Instant,
    status: watch::Sender<NodeStatus>,
    commits: broadcast::Sender<Committed>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    /// Signed messages to publish, in the order the core produced them (after their persist).
    outbox: Vec<Vec<u8>>,
    /// Our signed messages of the current height (latest last), re-sent while it stalls.
    own_messages: Vec<ConsensusWire>,
    resends: u64,
    last_send: Instant,
    peers: BTreeSet<libp2p::PeerId>,
    /// Gossiped tx batches for the ingest task.
    tx_ingest: mpsc::Sender<GossipedTxs>,
    /// The ingest task's end of `tx_ingest`, until `run` spawns it.
    tx_ingest_rx: Option<mpsc::Receiver<GossipedTxs>>,
}

/// A gossiped tx batch waiting for verification.
struct GossipedTxs {
    via: PeerId,
    id: MessageId,
    txs: Vec<Vec<u8>>,
}

/// Gossiped tx batches waiting for the ingest task; past this they are dropped (the txs still
/// reach a block through the node they were submitted to).
const TX_INGEST_QUEUE: usize = 256;

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("height", &self.chain.height())
            .field("validator", &self.our_key)
            .finish()
    }
}

/// Everything the driver is built from.
#[derive(Debug)]
pub struct DriverParts {
    /// The chain.
    pub chain: Chain,
    /// Validator key (None for observers).
    pub validator_key: Option<gongzhi_ledger::Keypair>,
    /// Path of the consensus WAL (validators).
    pub wal_path: std::path::PathBuf,
    /// Shared mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Nonce/membership view for the mempool.
    pub accounts: Arc<dyn AccountView + Send + Sync>,
    /// The network.
    pub network: NetworkHandle,
    /// Consensus settings.
    pub config: ConsensusSection,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for dyn AccountView + Send + Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountView")
    }
}

impl Driver {
    /// Build the driver: load the safety state from the WAL and resume after the store's tip.
    pub fn new(parts: DriverParts) -> Result<(Driver, DriverHandles)> {
        let chain_id = parts.chain.chain_id().to_string();
        let (core, wal, our_key) = match parts.validator_key {
            Some(key) => {
                let (wal, contents) = Wal::open(&parts.wal_path).with_context(|| {
                    format!("cannot open the consensus WAL {}", parts.wal_path.display())
                })?;
                if contents.truncated_bytes > 0 {
                    tracing::warn!(
                        bytes = contents.truncated_bytes,
                        "truncated a torn record at the end of the WAL"
                    );
                }
                let safety: SafetyState = match contents.records.last() {
                    Some(bytes) => postcard::from_bytes(bytes).context(
                        "the last WAL record is not a safety state; refusing to start rather than risk double-signing",
                    )?,
                    None => SafetyState::default(),
                };
                let public = key.public();
                let signer = ChainSigner::new(&chain_id, key);
                let safety = SafetyModule::new(signer.validator_id(), signer, safety);
                let config = ConsensusConfig {
                    timeouts: parts.config.timeouts(),
                    ..ConsensusConfig::default()
                };
                let core = Consensus::new(config, safety, ChainVerifier::new(&chain_id));
                (Some(core), Some(wal), Some(public))
            }
            None => (None, None, None),
        };
        let height = parts.chain.height();
        let last_commit = if height > 0 {
            Some(parts.chain.store().certificate(height)?)
        } else {
            None
        };
        let (status_tx, status_rx) = watch::channel(NodeStatus::default());
        let (commits, _) = broadcast::channel(1024);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (tx_ingest, tx_ingest_rx) = mpsc::channel(TX_INGEST_QUEUE);
        let driver = Driver {
            chain: parts.chain,
            core,
            our_key,
            mempool: parts.mempool,
            accounts: parts.accounts,
            network: parts.network,
            wal,
            config: parts.config,
            metrics: parts.metrics,
            blocks: BTreeMap::new(),
            executed: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            undelivered: None,
            last_commit,
            pending_start: Some(height + 1),
            last_commit_at: Instant::now(),
            step_clock: StepClock::default(),
            syncing: false,
            catching_up: false,
            last_progress: Instant::now(),
            status: status_tx,
            commits: commits.clone(),
            events_tx,
            events_rx,
            outbox: Vec::new(),
            own_messages: Vec::new(),
            resends: 0,
            last_send: Instant::now(),
            peers: BTreeSet::new(),
            tx_ingest,
            tx_ingest_rx: Some(tx_ingest_rx),
        };
        driver.publish_status();
        Ok((
            driver,
            DriverHandles {
                status: status_rx,
                commits,
            },
        ))
    }

    /// Run until `shutdown` fires.
    pub async fn run(
        mut self,
        mut network_events: mpsc::Receiver<NetworkEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        // Polls for a block's worth of txs and for stalls; rebroadcasts keep their own pace.
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync_tick = tokio::time::interval(Duration::from_millis(if self.core.is_some() {
            1000
        } else {
            250
        }));
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(batches) = self.tx_ingest_rx.take() {
            let verifier = self
                .mempool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .verifier();
            tokio::spawn(ingest_gossiped_txs(
                batches,
                Arc::new(verifier),
                Arc::clone(&self.mempool),
                Arc::clone(&self.accounts),
                Arc::clone(&self.metrics),
                self.network.clone(),
            ));
        }
        // Wakes the driver the moment `min_block_interval_ms` has passed since a commit, rather
        // than at the next tick (up to 20 ms later, on every height).
        let start_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(start_timer);
        let mut start_due: Option<Instant> = None;
        loop {
            let due = self.next_start_due();
            if due != start_due {
                if let Some(at) = due {
                    start_timer
                        .as_mut()
                        .reset(tokio::time::Instant::from_std(at));
                }
                start_due = due;
            }
            let timer_armed = start_due.is_some_and(|at| at > Instant::now());
            tokio::select! {
                _ = shutdown.changed() => break,
                () = &mut start_timer, if timer_armed => self.maybe_start_height()?,
                event = network_events.recv() => match event {
                    Some(event) => self.on_network(event)?,
                    None => break,
                },
                Some(event) = self.events_rx.recv() => self.on_event(event)?,
                _ = tick.tick() => {
                    self.maybe_start_height()?;
                    self.maybe_rebroadcast();
                }
                _ = sync_tick.tick() => self.maybe_sync(),
            }
            self.flush().await;
        }
        tracing::info!(height = self.chain.height(), "driver stopped");
        Ok(())
    }

    async fn flush(&mut self) {
        for bytes in std::mem::take(&mut self.outbox) {
            if let Err(e) = self.network.publish_consensus(bytes).await {
                tracing::debug!(error = %e, "could not publish a consensus message");
            }
        }
    }

    fn publish_status(&self) {
        let (height, block_hash, block_time) = match self.chain.tip() {
            Ok(tip) if tip.height > 0 => (tip.height, tip.hash, tip.time),
            Ok(tip) => (0, Hash::ZERO, tip.time),
            Err(_) => (self.chain.height(), Hash::default(), Timestamp::default()),
        };
        let round = self
            .core
            .as_ref()
            .and_then(|c| c.round())
            .map_or(0, |r| r.0);
        self.status.send_replace(NodeStatus {
            height,
            block_hash,
            block_time,
            round,
            peers: self.peers.len(),
            syncing: self.catching_up,
        });
    }

    fn on_network(&mut self, event: NetworkEvent) -> Result<()> {
        match event {
            NetworkEvent::Txs { via, id, txs } => {
                let count = txs.len();
                if let Err(mpsc::error::TrySendError::Full(batch)) =
                    self.tx_ingest.try_send(GossipedTxs { via, id, txs })
                {
                    tracing::warn!(peer = %via, txs = count, "tx ingest is behind; dropped a gossiped tx batch");
                    // Our own backlog, not the peer's fault: neither forwarded nor counted.
                    self.network
                        .try_report_validation(batch.id, via, Validation::Ignore);
                }
            }
            // Accepted once it decodes: its signatures and relevance are the core's business,
            // and forwarding a stale or badly signed vote harms no one. Bytes that do not
            // decode are garbage on every node, so they count against the peer.
            NetworkEvent::Consensus { via, id, bytes } => match ConsensusEnvelope::decode(&bytes) {
                Ok(envelope) => {
                    self.network
                        .try_report_validation(id, via, Validation::Accept);
                    self.on_consensus_message(envelope.message)?
                }
                Err(e) => {
                    tracing::warn!(peer = %via, error = %e, "dropped malformed consensus message");
                    self.network
                        .try_report_validation(id, via, Validation::Reject);
                }
            },
            NetworkEvent::ListeningOn(address) => tracing::info!(%address, "listening for peers"),
            NetworkEvent::PeerConnected(peer) => {
                self.peers.insert(peer);
                self.metrics.set_peers(self.peers.len());
                self.publish_status();
            }
            // The network task has logged the ban and why.
            NetworkEvent::PeerBanned(_) => {
                self.metrics
                    .peers_banned
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            NetworkEvent::PeerDisconnected(peer) => {
                self.peers.remove(&peer);
                self.metrics.set_peers(self.peers.len());
                self.publish_status();
            }
        }
        Ok(())
    }

    fn on_consensus_message(&mut self, message: ConsensusWire) -> Result<()> {
        let next = self.chain.height() + 1;
        let height = match &message {
            ConsensusWire::Proposal { proposal, .. } => proposal.proposal.height.0,
            ConsensusWire::Vote(vote) => vote.vote.height.0,
        };
        if height < next {
            return Ok(()); // already committed
        }
        if self.pending_start == Some(height) {
            self.start_height(height)?; // a peer started this height: join it
        }
        let input = match message {
            ConsensusWire::Proposal { proposal, block } => {
                let value = proposal.proposal.value;
                if block.hash().0 != value.0 {
                    tracing::warn!(
                        height,
                        "dropped proposal whose block does not match its hash"
                    );
                    return Ok(());
                }
                // Keep blocks for the next two heights (a validator finishing height h may already
                // see proposals for h+1), bounded so a flood of proposals cannot grow memory.
                if height <= next + 1 && self.blocks.len() < 64 {
                    self.blocks.insert(value, *block);
                }
                if let Some(h) = self.awaiting.remove(&value) {
                    self.verify_value(h, value)?;
                }
                if self.undelivered.as_ref().is_some_and(|(v, _)| *v == value) {
                    self.try_commit_undelivered()?;
                }
                Input::Proposal(proposal)
            }
            ConsensusWire::Vote(vote) => Input::Vote(vote),
        };
        self.feed(input)
    }

    fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Timeout(input) => self.feed(input),
            Event::Synced(blocks, peer_height) => {
                self.syncing = false;
                let mut applied = Vec::new();
                for synced in blocks {
                    let height = synced.block.header.height;
                    if height != self.chain.height() + 1 {
                        continue;
                    }
                    let txs = synced.block.txs.clone();
                    let hash = synced.block.hash();
                    match tokio::task::block_in_place(|| {
                        self.chain.apply_synced(synced.block, &synced.certificate)
                    }) {
                        Ok(()) => {
                            tracing::info!(height, "synced block");
                            self.last_commit = Some(synced.certificate);
                            let _ = self.commits.send(Committed {
                                height,
                                hash,
                                txs: txs.iter().map(gongzhi_ledger::Tx::hash).collect(),
                            });
                            applied.push(txs);
                        }
                        Err(e) => {
                            tracing::warn!(height, error = %format!("{e:#}"), "rejected a block from sync");
                            break;
                        }
                    }
                }
                if !applied.is_empty() {
                    let mut pool = self.mempool.lock().unwrap_or_else(PoisonError::into_inner);
                    for txs in &applied {
                        pool.update(txs, self.accounts.as_ref());
                    }
                    drop(pool);
                    self.after_commit_bookkeeping()?;
                    let next = self.chain.height() + 1;
                    self.start_height(next)?;
                }
                self.catching_up = peer_height > self.chain.height() + 2;
                self.metrics.syncing.store(
                    u64::from(self.catching_up),
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.publish_status();
                Ok(())
            }
            Event::SyncFailed => {
                self.syncing = false;
                Ok(())
            }
        }
    }

    fn maybe_start_height(&mut self) -> Result<()> {
        let Some(next) = self.pending_start else {
            return Ok(());
        };
        let (has_txs, full_block) = {
            let pool = self.mempool.lock().unwrap_or_else(PoisonError::into_inner);
            (!pool.is_empty(), pool.len() >= self.config.max_block_txs)
        };
        let since_commit = self.last_commit_at.elapsed();
        let min_interval = Duration::from_millis(self.config.min_block_interval_ms);
        let txs_due = has_txs && (full_block || since_commit >= min_interval);
        let interval = self.config.empty_block_interval_ms;
        let idle_due = interval > 0 && since_commit >= Duration::from_millis(interval);
        if txs_due || idle_due {
            self.start_height(next)?;
        }
        Ok(())
    }

    /// When the next height may start with the txs waiting (`min_block_interval_ms` after the
    /// last commit), if a height is waiting to start.
    fn next_start_due(&self) -> Option<Instant> {
        self.pending_start?;
        Some(self.last_commit_at + Duration::from_millis(self.config.min_block_interval_ms))
    }

    /// Start consensus at `height` (always the chain's next height) unless the core is there.
    fn start_height(&mut self, height: u64) -> Result<()> {
        self.pending_start = None;
        self.last_progress = Instant::now();
        let Some(core) = self.core.as_ref() else {
            return Ok(()); // observers follow by sync only
        };
        if core.height().is_some_and(|h| h.0 >= height) {
            return Ok(());
        }
        let validators = self.chain.next_validator_set()?;
        self.feed(Input::StartHeight {
            height: Height(height),
            validators,
        })
    }

    fn feed(&mut self, input: Input) -> Result<()> {
        let Some(core) = self.core.as_mut() else {
            return Ok(());
        };
        let outputs = core.handle(input);
        // Read before the outputs run: a decision's commit is timed as the commit step.
        if let (Some(height), Some(round), Some(step)) = (core.height(), core.round(), core.step())
        {
            self.enter_step(height.0, round.0, ConsensusStep::from(step));
        }
        for output in outputs {
            self.perform(output)?;
        }
        Ok(())
    }

    /// Note that the height is now in `step` of `round`, timing the step it leaves.
    /// Also keeps the `round` gauge current and counts rounds started past a height's first.
    fn enter_step(&mut self, height: u64, round: u32, step: ConsensusStep) {
        let new_round = self.step_clock.round_of(height) != Some(round);
        if let Some((left, lasted)) = self.step_clock.enter(height, round, step) {
            self.metrics.observe_step(left, lasted);
        }
        if new_round {
            self.metrics.set_round(round);
        }
    }

    fn perform(&mut self, output: Output) -> Result<()> {
        match output {
            Output::PersistSafetyState(state) => {
                let bytes = postcard::to_stdvec(&state).context("cannot encode safety state")?;
                if let Some(wal) = self.wal.as_mut() {
                    wal.append(&bytes)
                        .context("cannot persist the safety state; stopping before signing")?;
                }
            }
            Output::BroadcastProposal(proposal) => {
                let Some(executed) = self.executed.get(&proposal.proposal.value) else {
                    tracing::error!("core proposed a block we have not built; not broadcasting");
                    return Ok(());
                };
                let wire = ConsensusWire::Proposal {
                    proposal,
                    block: Box::new(executed.block.clone()),
                };
                self.send(wire);
            }
            Output::BroadcastVote(vote) => self.send(ConsensusWire::Vote(vote)),
            Output::ScheduleTimeout {
                kind,
                height,
                round,
                duration,
            } => {
                let events = self.events_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(duration).await;
                    let _ = events.send(Event::Timeout(Input::TimeoutElapsed {
                        kind,
                        height,
                        round,
                    }));
                });
            }
            Output::RequestValue { height, round } => {
                let value = self.build_block()?;
                self.feed(Input::ValueReady {
                    height,
                    round,
                    value,
                })?;
            }
            Output::VerifyValue { height, value, .. } => self.verify_value(height, value)?,
            Output::Decide {
                height,
                round,
                value,
                certificate,
            } => {
                let cert = certificate_from_votes(height.0, round.0, Hash(value.0), &certificate);
                self.undelivered = Some((value, cert));
                self.try_commit_undelivered()?;
            }
            Output::Evidence(evidence) => {
                self.metrics
                    .evidence
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    validator = ?evidence.first.vote.validator,
                    height = evidence.first.vote.height.0,
                    round = evidence.first.vote.round.0,
                    "validator signed two different votes (equivocation)"
                );
            }
        }
        Ok(())
    }

    /// Queue a signed message for gossip and remember it for re-broadcast.
    fn send(&mut self, message: ConsensusWire) {
        self.outbox.push(
            ConsensusEnvelope {
                resend: 0,
                message: message.clone(),
            }
            .encode(),
        );
        self.own_messages.push(message);
        // Keep the latest few: enough for the current round's proposal and both votes.
        if self.own_messages.len() > 6 {
            self.own_messages.remove(0);
        }
        self.last_send = Instant::now();
    }

    /// While a height stalls (peers restarted, messages lost), send our latest signed messages
    /// again so peers can count them and align rounds (Tendermint assumes eventual delivery).
    fn maybe_rebroadcast(&mut self) {
        if self.own_messages.is_empty() || self.last_send.elapsed() < REBROADCAST_AFTER {
            return;
        }
        self.resends += 1;
        for message in &self.own_messages {
            self.outbox.push(
                ConsensusEnvelope {
                    resend: self.resends,
                    message: message.clone(),
                }
                .encode(),
            );
        }
        self.last_send = Instant::now();
    }

    fn build_block(&mut self) -> Result<ValueId> {
        let (txs, held_back) = {
            let pool = self.mempool.lock().unwrap_or_else(PoisonError::into_inner);
            pool.reap_counting_gaps(
                self.config.max_block_txs,
                self.config.max_block_bytes,
                self.accounts.as_ref(),
            )
        };
        self.metrics.add_nonce_gap_txs(held_back);
        let proposer = self.our_key.context("only validators build blocks")?;
        let started = Instant::now();
        let executed = tokio::task::block_in_place(|| {
            self.chain
                .build_block(txs, now(), proposer, self.last_commit.clone())
        })?;
        self.metrics
            .observe_execution(Execution::Build, started.elapsed());
        let value = ValueId(executed.block.hash().0);
        tracing::debug!(
            height = executed.block.header.height,
            txs = executed.block.txs.len(),
            "built block"
        );
        self.executed.insert(value, executed);
        Ok(value)
    }

    /// Which of `block`'s txs (by index) are in the mempool, which admits only txs whose
    /// signature it verified: such txs need no second signature check in the proposal. Each tx
    /// is hashed once, and the mempool locked once per block, not once per tx, so the ingest
    /// task is not held up.
    fn admitted_txs(&self, block: &Block) -> impl Fn(usize, &Tx) -> bool {
        // Hashed before locking: the lock covers only the lookups.
        let hashes: Vec<Hash> = block.txs.iter().map(Tx::hash).collect();
        let admitted: Vec<bool> = {
            let pool = self.mempool.lock().unwrap_or_else(PoisonError::into_inner);
            hashes.iter().map(|hash| pool.contains(hash)).collect()
        };
        move |index: usize, _: &Tx| admitted.get(index).copied().unwrap_or(false)
    }

    fn verify_value(&mut self, height: Height, value: ValueId) -> Result<()> {
        let valid = if self.executed.contains_key(&value) {
            true
        } else if let Some(block) = self.blocks.get(&value).cloned() {
            let drift = self.config.max_clock_drift_ms;
            let in_mempool = self.admitted_txs(&block);
            let started = Instant::now();
            let result = tokio::task::block_in_place(|| {
                self.chain
                    .execute_proposal(block, Some((now(), drift)), &in_mempool)
            });
            self.metrics
                .observe_execution(Execution::Verify, started.elapsed());
            match result {
                Ok(executed) => {
                    self.executed.insert(value, executed);
                    true
                }
                Err(e) => {
                    tracing::warn!(height = height.0, error = %format!("{e:#}"), "proposed block is invalid");
                    false
                }
            }
        } else {
            self.awaiting.insert(value, height);
            return Ok(());
        };
        self.feed(Input::ValueVerified {
            height,
            value,
            valid,
        })
    }

    fn try_commit_undelivered(&mut self) -> Result<()> {
        let Some((value, cert)) = self.undelivered.take() else {
            return Ok(());
        };
        if !self.executed.contains_key(&value) {
            if let Some(block) = self.blocks.get(&value).cloned() {
                let in_mempool = self.admitted_txs(&block);
                let started = Instant::now();
                let result = tokio::task::block_in_place(|| {
                    self.chain.execute_proposal(block, None, &in_mempool)
                });
                self.metrics
                    .observe_execution(Execution::Verify, started.elapsed());
                if let Ok(executed) = result {
                    self.executed.insert(value, executed);
                }
            }
        }
        let Some(executed) = self.executed.remove(&value) else {
            tracing::info!(
                height = cert.height,
                "decided a block we do not have yet; waiting for it or for sync"
            );
            self.undelivered = Some((value, cert));
            return Ok(());
        };
        // Taken before the block moves into the store; the receipts' tx hashes are the txs'
        // (the commit refuses the block otherwise), so no tx is cloned or hashed again here.
        let signers: Vec<PublicKey> = executed.block.txs.iter().map(|tx| tx.body.signer).collect();
        let tx_hashes: Vec<Hash> = executed.receipts.iter().map(|r| r.tx_hash).collect();
        let height = executed.block.header.height;
        let round = cert.round;
        tokio::task::block_in_place(|| self.chain.commit(executed, &cert))?;
        self.enter_step(height, round, ConsensusStep::Wait);
        {
            use std::sync::atomic::Ordering::Relaxed;
            self.metrics
                .committed_txs
                .fetch_add(tx_hashes.len() as u64, Relaxed);
            self.metrics.committed_blocks.fetch_add(1, Relaxed);
            let interval = self.last_commit_at.elapsed().as_millis() as u64;
            self.metrics
                .block_interval_ms_sum
                .fetch_add(interval, Relaxed);
        }
        {
            // Read before locking: gossip ingest and the API admit txs meanwhile.
            let floors = SignerFloors::read(signers, self.accounts.as_ref());
            let mut pool = self.mempool.lock().unwrap_or_else(PoisonError::into_inner);
            pool.apply_floors(floors);
            self.metrics.set_mempool(pool.len(), pool.total_bytes());
        }
        self.last_commit = Some(cert);
        tracing::info!(height, round, txs = tx_hashes.len(), "committed block");
        let _ = self.commits.send(Committed {
            height,
            hash: Hash(value.0),
            txs: tx_hashes,
        });
        self.after_commit_bookkeeping()?;
        self.pending_start = Some(height + 1);
        self.maybe_start_height()
    }

    fn after_commit_bookkeeping(&mut self) -> Result<()> {
        let height = self.chain.height();
        self.blocks.retain(|_, block| block.header.height > height);
        self.own_messages.clear();
        self.executed.clear();
        self.awaiting.clear();
        self.undelivered = None;
        self.last_commit_at = Instant::now();
        self.last_progress = Instant::now();
        self.metrics.set_height(height);
        if let (Some(wal), Some(core)) = (self.wal.as_mut(), self.core.as_ref()) {
            // Only the last record counts at restart; older ones are dead weight. Compact
            // rarely: a checkpoint costs syncs the next height would wait for.
            if wal.len_bytes() >= WAL_CHECKPOINT_BYTES {
                let state = postcard::to_stdvec(core.safety_state())
                    .context("cannot encode safety state")?;
                wal.checkpoint(&state)?;
            }
        }
        self.publish_status();
        Ok(())
    }

    fn maybe_sync(&mut self) {
        self.publish_status();
        if self.syncing {
            return;
        }
        let stalled = self.core.is_none() || self.last_progress.elapsed() > Duration::from_secs(3);
        if !stalled {
            return;
        }
        self.syncing = true;
        let network = self.network.clone();
        let events = self.events_tx.clone();
        let from = self.chain.height() + 1;
        tokio::spawn(async move {
            let mut best: Option<(u64, libp2p::PeerId)> = None;
            for peer in network.connected_peers().await.unwrap_or_default() {
                if let Ok(height) = network.request_status(peer).await {
                    if height >= from && best.is_none_or(|(h, _)| height > h) {
                        best = Some((height, peer));
                    }
                }
            }
            let Some((peer_height, peer)) = best else {
                let _ = events.send(Event::SyncFailed);
                return;
            };
            match network.request_blocks(peer, from, 64).await {
                Ok(raw) => {
                    let mut blocks = Vec::new();
                    for bytes in raw {
                        match SyncedBlock::decode(&bytes) {
                            Ok(b) => blocks.push(b),
                            Err(e) => {
                                tracing::warn!(peer = %peer, error = %e, "peer sent a malformed block");
                                break;
                            }
                        }
                    }
                    let _ = events.send(Event::Synced(blocks, peer_height));
                }
                Err(e) => {
                    tracing::debug!(peer = %peer, error = %e, "block sync request failed");
                    let _ = events.send(Event::SyncFailed);
                }
            }
        });
    }
}

/// Verifies gossiped tx batches off the consensus task — signatures in one batch, on the
/// blocking pool, without the mempool lock — then admits the valid txs under the lock, and
/// reports each gossiped batch's verdict ([`batch_verdict`]); its valid txs are admitted either
/// way. Batches that queued while the previous check ran (up to [`INGEST_COALESCE`]) are
/// checked together: one ed25519 batch of a few dozen signatures costs a third less per
/// signature than the handful a 10 ms gossip batch carries, and nothing waits to fill it.
/// Ends when the driver drops its sender.
async fn ingest_gossiped_txs(
    mut batches: mpsc::Receiver<GossipedTxs>,
    verifier: Arc<TxVerifier>,
    mempool: Arc<Mutex<Mempool>>,
    accounts: Arc<dyn AccountView + Send + Sync>,
    metrics: Arc<Metrics>,
    network: NetworkHandle,
) {
    let mut waiting = Vec::with_capacity(INGEST_COALESCE);
    while batches.recv_many(&mut waiting, INGEST_COALESCE).await > 0 {
        let taken = std::mem::replace(&mut waiting, Vec::with_capacity(INGEST_COALESCE));
        let mut sources = Vec::with_capacity(taken.len());
        let mut txs = Vec::new();
        for GossipedTxs {
            via,
            id,
            txs: batch,
        } in taken
        {
            sources.push((via, id, batch.len()));
            txs.extend(batch);
        }
        let verifier = Arc::clone(&verifier);
        let results = match tokio::task::spawn_blocking(move || verifier.verify_batch(&txs)).await {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, "tx batch verification failed");
                continue;
            }
        };
        let mut results = results.into_iter();
        let mut verdicts = Vec::with_capacity(sources.len());
        {
            let mut pool = mempool.lock().unwrap_or_else(PoisonError::into_inner);
            for (via, id, count) in sources {
                let mut invalid = Vec::new();
                for result in results.by_ref().take(count) {
                    match result.and_then(|tx| pool.admit_verified(tx, accounts.as_ref())) {
                        Ok(_) => {}
                        Err(e) if e.is_invalid_tx() => invalid.push(e),
                        Err(e) => tracing::debug!(error = %e, "gossiped tx not admitted"),
                    }
                }
                verdicts.push((via, id, invalid));
            }
            metrics.set_mempool(pool.len(), pool.total_bytes());
        }
        for (via, id, invalid) in verdicts {
            let verdict = batch_verdict(&invalid);
            if let Some(first) = invalid.first() {
                tracing::warn!(
                    peer = %via, invalid = invalid.len(), error = %first, ?verdict,
                    "gossiped tx batch carries invalid txs; not forwarding it"
                );
            }
            let _ = network.report_validation(id, via, verdict).await;
        }
    }
}

/// The height, round and step the driver last saw, and since when: each change times the step
/// it leaves (`gongzhi_consensus_step_seconds`).
#[derive(Debug)]
struct StepClock {
    at: Option<(u64, u32, ConsensusStep)>,
    since: Instant,
}

impl Default for StepClock {
    fn default() -> Self {
        StepClock {
            at: None,
            since: Instant::now(),
        }
    }
}

impl StepClock {
    /// The round the clock is in at `height`, if it is at `height`.
    fn round_of(&self, height: u64) -> Option<u32> {
        self.at
            .and_then(|(at, round, _)| (at == height).then_some(round))
    }

    /// Enter `step` of (`height`, `round`). Returns the step left and how long it lasted;
    /// `None` when nothing changed or nothing was being timed.
    fn enter(
        &mut self,
        height: u64,
        round: u32,
        step: ConsensusStep,
    ) -> Option<(ConsensusStep, Duration)> {
        let now = Instant::now();
        let next = Some((height, round, step));
        if self.at == next {
            return None;
        }
        let left = self.at.map(|(_, _, left)| (left, now - self.since));
        self.at = next;
        self.since = now;
        left
    }
}

/// The most queued gossip batches [`ingest_gossiped_txs`] checks in one signature batch.
const INGEST_COALESCE: usize = 32;

/// The verdict on a gossiped tx batch given its txs' invalidity errors: `Accept` when there
/// are none; `Reject` (which counts against the peer) when a tx is garbage on every node —
/// malformed, another chain, a bad signature; `Ignore` when the only fault is size, whose
/// limit is each node's own `[mempool] max_tx_bytes`.
pub(crate) fn batch_verdict(invalid: &[MempoolError]) -> Validation {
    if invalid.is_empty() {
        Validation::Accept
    } else if invalid
        .iter()
        .any(|e| !matches!(e, MempoolError::TooLarge { .. }))
    {
        Validation::Reject
    } else {
        Validation::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_clock_times_each_step_it_leaves() {
        let mut clock = StepClock::default();
        assert_eq!(clock.enter(5, 0, ConsensusStep::Propose), None);
        assert_eq!(clock.enter(5, 0, ConsensusStep::Propose), None, "no change");
        assert_eq!(clock.round_of(5), Some(0));
        assert_eq!(clock.round_of(6), None, "another height");
        let (left, _) = clock
            .enter(5, 0, ConsensusStep::Prevote)
            .expect("propose ended");
        assert_eq!(left, ConsensusStep::Propose);
        // A round change ends the step even when the step name is the same.
        clock.enter(5, 1, ConsensusStep::Prevote);
        let (left, _) = clock
            .enter(5, 1, ConsensusStep::Commit)
            .expect("round 1 prevote ended");
        assert_eq!(left, ConsensusStep::Prevote);
        let (left, _) = clock
            .enter(5, 1, ConsensusStep::Wait)
            .expect("commit ended");
        assert_eq!(left, ConsensusStep::Commit);
        let (left, _) = clock
            .enter(6, 0, ConsensusStep::Propose)
            .expect("wait ended");
        assert_eq!(left, ConsensusStep::Wait);
    }

    #[test]
    fn only_garbage_on_every_node_counts_against_the_peer() {
        let too_large = || MempoolError::TooLarge {
            size: 70_000,
            max: 65_536,
        };
        let garbage = || MempoolError::Malformed("trailing bytes".into());
        let other_chain = || MempoolError::WrongChain {
            expected: "a".into(),
            found: "b".into(),
        };
        assert_eq!(batch_verdict(&[]), Validation::Accept);
        assert_eq!(batch_verdict(&[too_large()]), Validation::Ignore);
        assert_eq!(batch_verdict(&[too_large(), garbage()]), Validation::Reject);
        assert_eq!(batch_verdict(&[other_chain()]), Validation::Reject);
    }
}
