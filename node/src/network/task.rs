//! The swarm task: the only owner of the libp2p `Swarm`.
//!
//! One `tokio::select!` loop multiplexes swarm events, host commands, answers computed by the
//! [`BlockSource`] on the blocking pool, the event backlog, and the reconnection timer.
//!
//! Invariants:
//! - the loop never awaits the host: events are handed over with `try_send`, overflow goes to a
//!   bounded backlog drained when the channel has room, and past that events are dropped with a
//!   warning (see `events.rs`);
//! - every outbound sync request has exactly one reply: the response, the failure, or
//!   `Stopped` (its sender is dropped when the task ends);
//! - everything a peer does wrong ends here as a log line with the peer id, never as an error
//!   that stops the loop;
//! - on shutdown the swarm (listeners, connections) is dropped *before* the caller is answered,
//!   so the same port can be bound again at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError, TopicHash};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{identify_protocol_version, GossipTopic, NodeBehaviour, NodeBehaviourEvent};
use super::codec::{SyncRequest, SyncResponse};
use super::dialer::Redialer;
use super::events::EventSink;
use super::gating::AllowedSetChange;
use super::misbehaviour::Misbehaviour;
use super::sync::{serve, BlockSource, ServeLimits};
use super::transport::build_swarm;
use super::tx_batch::{decode_tx_batch, TxBatchLimits, TxBatcher, MAX_BATCH_TX_BYTES};
use super::{NetworkConfig, NetworkError, NetworkEvent, Validation};

/// A request from a [`super::NetworkHandle`].
pub(crate) enum Command {
    Publish {
        topic: GossipTopic,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetworkError>>,
    },
    SetAllowedPeers {
        peers: HashSet<PeerId>,
        reply: oneshot::Sender<()>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    TopicPeers {
        topic: GossipTopic,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ReportValidation {
        id: MessageId,
        via: PeerId,
        validation: Validation,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Publish { .. } => "Publish",
            Command::Request { .. } => "Request",
            Command::SetAllowedPeers { .. } => "SetAllowedPeers",
            Command::ConnectedPeers { .. } => "ConnectedPeers",
            Command::TopicPeers { .. } => "TopicPeers",
            Command::ListenAddrs { .. } => "ListenAddrs",
            Command::ReportValidation { .. } => "ReportValidation",
            Command::Shutdown { .. } => "Shutdown",
        };
        f.write_str(name)
    }
}

/// An answer computed off the loop, to be sent on its response channel.
struct Answer {
    peer: PeerId,
    channel: ResponseChannel<SyncResponse>,
    response: SyncResponse,
}

pub(crate) struct SwarmTask {
    swarm: Swarm<NodeBehaviour>,
    chain_id: String,
    commands: mpsc::Receiver<Command>,
    events: EventSink,
    redialer: Redialer,
    /// Peers reported to the host with `PeerConnected` and not yet `PeerDisconnected`.
    announced: HashSet<PeerId>,
    topics: HashMap<TopicHash, GossipTopic>,
    pending_requests: HashMap<OutboundRequestId, PendingRequest>,
    request_timeout: Duration,
    max_transmit_size: usize,
    manual_validation: bool,
    /// Peers allowed by membership (the allow list holds these minus the banned ones).
    members: HashSet<PeerId>,
    /// Rejected gossip per peer, and bans.
    misbehaviour: Misbehaviour,
    /// Txs waiting to be gossiped as one batch.
    tx_batcher: TxBatcher,
    block_source: Arc<dyn BlockSource>,
    serve_limits: ServeLimits,
    answers_tx: mpsc::Sender<Answer>,
    answers_rx: mpsc::Receiver<Answer>,
}

struct PendingRequest {
    peer: PeerId,
    reply: oneshot::Sender<Result<SyncResponse, NetworkError>>,
}

impl SwarmTask {
    /// Builds the swarm and binds the listeners; nothing runs until [`Self::run`].
    pub(crate) fn build(
        config: &NetworkConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
    ) -> Result<Self, NetworkError> {
        let mut swarm = build_swarm(config)?;

        let now = Instant::now();
        let mut redialer = Redialer::new(
            config
                .peers
                .iter()
                .map(|peer| (peer.peer_id, peer.address.clone())),
            config.initial_backoff,
            config.max_backoff,
            now,
        );
        for peer in &config.peers {
            swarm.add_peer_address(peer.peer_id, peer.address.clone());
            let allowed = config.allowed_peers.contains(&peer.peer_id);
            redialer.set_allowed(&peer.peer_id, allowed, now);
        }

        let topics = GossipTopic::ALL
            .into_iter()
            .map(|topic| (topic.ident(&config.chain_id).hash(), topic))
            .collect();
        let (answers_tx, answers_rx) = mpsc::channel(config.max_concurrent_sync_streams.max(8));
        tracing::info!(
            peer = %swarm.local_peer_id(),
            chain_id = %config.chain_id,
            configured_peers = config.peers.len(),
            allowed_peers = config.allowed_peers.len(),
            "network starting"
        );
        Ok(Self {
            swarm,
            chain_id: config.chain_id.clone(),
            commands,
            events: EventSink::new(events, config.event_queue_len),
            redialer,
            announced: HashSet::new(),
            topics,
            pending_requests: HashMap::new(),
            request_timeout: config.request_timeout,
            max_transmit_size: config.max_transmit_size,
            manual_validation: config.manual_validation,
            members: config.allowed_peers.clone(),
            misbehaviour: Misbehaviour::new(config.ban),
            tx_batcher: TxBatcher::new(TxBatchLimits {
                max_bytes: config.tx_batch.max_bytes.min(config.max_transmit_size),
                ..config.tx_batch
            }),
            block_source: Arc::clone(&config.block_source),
            serve_limits: ServeLimits {
                max_blocks_per_response: config.max_blocks_per_response,
                max_response_bytes: config.max_sync_response_bytes,
            },
            answers_tx,
            answers_rx,
        })
    }

    pub(crate) fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until `shutdown()` or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let far_future = Duration::from_secs(3600);
        let shutdown_reply = loop {
            let next_dial = self
                .redialer
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + far_future);
            let batch_due = self.tx_batcher.deadline();
            let batch_deadline = batch_due.unwrap_or_else(|| Instant::now() + far_future);
            let ban_ends = self.misbehaviour.next_expiry();
            let ban_deadline = ban_ends.unwrap_or_else(|| Instant::now() + far_future);
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    None => break None,
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command),
                },
                Some(answer) = self.answers_rx.recv() => self.send_answer(answer),
                // An owned permit, so no borrow of `self` outlives the select.
                permit = self.events.sender.clone().reserve_owned(),
                    if !self.events.backlog.is_empty() => {
                    match (permit, self.events.backlog.pop_front()) {
                        (Ok(permit), Some(event)) => {
                            permit.send(event);
                        }
                        (Err(_), _) => self.events.backlog.clear(),
                        (Ok(_), None) => {}
                    }
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(next_dial)) => {
                    self.dial_due();
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(batch_deadline)),
                    if batch_due.is_some() => {
                    if let Some(batch) = self.tx_batcher.take() {
                        self.publish_tx_batch(batch);
                    }
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(ban_deadline)),
                    if ban_ends.is_some() => self.lift_bans(),
            }
        };
        let local = self.local_peer_id();
        drop(self);
        tracing::info!(peer = %local, "network stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn dial_due(&mut self) {
        for (peer, address) in self.redialer.take_due(Instant::now()) {
            let options = DialOpts::peer_id(peer)
                .addresses(vec![address.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(options) {
                Ok(()) => tracing::debug!(%peer, %address, "dialing"),
                Err(DialError::DialPeerConditionFalse(_)) => {
                    self.redialer.on_dial_skipped(&peer, Instant::now())
                }
                Err(error) => {
                    let retry_in = self.redialer.on_disconnected(&peer, Instant::now());
                    tracing::warn!(%peer, %address, %error, ?retry_in, "cannot dial peer");
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                topic,
                bytes,
                reply,
            } => {
                let _ = reply.send(self.publish(topic, bytes));
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                tracing::debug!(%peer, kind = request.kind(), "sync request");
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending_requests
                    .insert(id, PendingRequest { peer, reply });
            }
            Command::SetAllowedPeers { peers, reply } => {
                self.set_allowed_peers(&peers);
                let _ = reply.send(());
            }
            Command::ConnectedPeers { reply } => {
                let mut peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                peers.sort();
                let _ = reply.send(peers);
            }
            Command::TopicPeers { topic, reply } => {
                let hash = topic.ident(&self.chain_id).hash();
                let mut peers: Vec<PeerId> = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(peer, _)| *peer)
                    .collect();
                peers.sort();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::ReportValidation { via, .. } if !self.manual_validation => {
                tracing::trace!(peer = %via, "validation report ignored: manual validation is off");
            }
            Command::ReportValidation {
                id,
                via,
                validation,
            } => {
                let acceptance = match validation {
                    Validation::Accept => MessageAcceptance::Accept,
                    Validation::Reject => MessageAcceptance::Reject,
                    Validation::Ignore => MessageAcceptance::Ignore,
                };
                let known = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &via, acceptance);
                tracing::debug!(peer = %via, message_id = %id, ?validation, known, "gossip validated");
                if validation == Validation::Reject {
                    self.strike(via);
                }
            }
            // Handled by the loop itself.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    fn publish(&mut self, topic: GossipTopic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        if topic == GossipTopic::Txs {
            return self.queue_tx(bytes);
        }
        self.publish_now(topic, bytes)
    }

    /// Adds one tx to the pending batch and publishes the batches it completes.
    fn queue_tx(&mut self, tx: Vec<u8>) -> Result<(), NetworkError> {
        if tx.len() > MAX_BATCH_TX_BYTES {
            return Err(NetworkError::MessageTooLarge {
                topic: GossipTopic::Txs.name(&self.chain_id),
                size: tx.len(),
                max: MAX_BATCH_TX_BYTES,
            });
        }
        for batch in self.tx_batcher.push(tx, Instant::now()) {
            self.publish_tx_batch(batch);
        }
        Ok(())
    }

    /// Publishes an encoded tx batch; a failure is logged (the txs stay in our mempool, so
    /// they still reach a block when we propose).
    fn publish_tx_batch(&mut self, batch: Vec<u8>) {
        if let Err(error) = self.publish_now(GossipTopic::Txs, batch) {
            tracing::debug!(%error, "tx batch not gossiped");
        }
    }

    fn publish_now(&mut self, topic: GossipTopic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        let name = topic.name(&self.chain_id);
        let size = bytes.len();
        if size > self.max_transmit_size {
            return Err(NetworkError::MessageTooLarge {
                topic: name,
                size,
                max: self.max_transmit_size,
            });
        }
        let ident = topic.ident(&self.chain_id);
        match self.swarm.behaviour_mut().gossipsub.publish(ident, bytes) {
            Ok(id) => {
                tracing::debug!(topic = %name, bytes = size, message_id = %id, "published");
                Ok(())
            }
            Err(PublishError::Duplicate) => {
                tracing::debug!(topic = %name, bytes = size, "already published; not sent again");
                Ok(())
            }
            Err(PublishError::NoPeersSubscribedToTopic) => {
                Err(NetworkError::NoPeersSubscribed { topic: name })
            }
            Err(PublishError::MessageTooLarge) => Err(NetworkError::MessageTooLarge {
                topic: name,
                size,
                max: self.max_transmit_size,
            }),
            Err(error) => Err(NetworkError::Publish {
                topic: name,
                reason: error.to_string(),
            }),
        }
    }

    fn set_allowed_peers(&mut self, peers: &HashSet<PeerId>) {
        self.members.clone_from(peers);
        self.apply_allowed();
        tracing::info!(allowed = peers.len(), "allowed peers updated");
    }

    /// Brings the allow list to the members minus the banned peers: connections of peers
    /// leaving it are closed, configured peers entering it are dialed.
    fn apply_allowed(&mut self) {
        let local = self.local_peer_id();
        let target: HashSet<PeerId> = self
            .members
            .iter()
            .filter(|peer| !self.misbehaviour.is_banned(peer))
            .copied()
            .collect();
        let change = AllowedSetChange::between(
            self.swarm.behaviour().allowed.allowed_peers(),
            &target,
            &local,
        );
        let now = Instant::now();
        for peer in &change.removed {
            // Closes every connection with `peer` and denies new ones.
            self.swarm.behaviour_mut().allowed.disallow_peer(*peer);
            self.redialer.set_allowed(peer, false, now);
        }
        for peer in &change.added {
            self.swarm.behaviour_mut().allowed.allow_peer(*peer);
            self.redialer.set_allowed(peer, true, now);
        }
        if !change.added.is_empty() || !change.removed.is_empty() {
            tracing::debug!(added = ?change.added, removed = ?change.removed, "allow list changed");
        }
    }

    /// Counts a rejected message against `peer`; at the policy's limit, bans it (only under
    /// manual validation, where honest peers forward nothing the host has not accepted).
    fn strike(&mut self, peer: PeerId) {
        if !self.manual_validation {
            return;
        }
        if let Some(until) = self.misbehaviour.strike(peer, Instant::now()) {
            let seconds = until.saturating_duration_since(Instant::now()).as_secs();
            tracing::warn!(
                %peer, ban_seconds = seconds,
                "peer banned: too many of its gossip messages were invalid; disconnected and \
                 refused until the ban ends"
            );
            self.apply_allowed();
            self.events.emit(NetworkEvent::PeerBanned(peer));
        }
    }

    /// Readmits peers whose ban has ended (if they are still members).
    fn lift_bans(&mut self) {
        let lifted = self.misbehaviour.lift_expired(Instant::now());
        for peer in &lifted {
            tracing::info!(%peer, member = self.members.contains(peer), "peer ban ended");
        }
        if !lifted.is_empty() {
            self.apply_allowed();
        }
    }

    fn send_answer(&mut self, answer: Answer) {
        let Answer {
            peer,
            channel,
            response,
        } = answer;
        let kind = response.kind();
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(%peer, kind, "sync answer not sent: the peer closed the stream");
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<NodeBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(NodeBehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(NodeBehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(NodeBehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(NodeBehaviourEvent::Allowed(never)) => match never {},
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.events.emit(NetworkEvent::ListeningOn(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                self.redialer.on_connected(&peer_id, Instant::now());
                // `PeerConnected` waits for identify: only then do we know the peer accepted
                // the connection too and is on our chain.
                tracing::debug!(
                    peer = %peer_id, address = %endpoint.get_remote_address(),
                    connections = num_established.get(), "connection established"
                );
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                if num_established == 0 {
                    let retry_in = self.redialer.on_disconnected(&peer_id, Instant::now());
                    let cause = cause.map(|error| error.to_string());
                    if self.announced.remove(&peer_id) {
                        tracing::info!(peer = %peer_id, ?cause, ?retry_in, "peer disconnected");
                        self.events.emit(NetworkEvent::PeerDisconnected(peer_id));
                    } else {
                        tracing::debug!(peer = %peer_id, ?cause, ?retry_in, "connection closed before identification");
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let Some(peer) = peer_id else {
                    tracing::debug!(%error, "dial failed");
                    return;
                };
                if self.swarm.is_connected(&peer) {
                    tracing::debug!(%peer, %error, "extra dial failed; already connected");
                    return;
                }
                let retry_in = self.redialer.on_disconnected(&peer, Instant::now());
                tracing::warn!(%peer, %error, ?retry_in, "dial failed");
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                send_back_addr,
                error,
                ..
            } => match error {
                ListenError::Denied { cause }
                    if peer_id.is_some_and(|p| self.misbehaviour.is_banned(&p)) =>
                {
                    tracing::debug!(
                        peer = ?peer_id, address = %send_back_addr, %cause,
                        "refused connection from a banned peer"
                    );
                }
                ListenError::Denied { cause } => tracing::warn!(
                    peer = %peer_id.map_or_else(|| "unknown".to_owned(), |peer| peer.to_string()),
                    address = %send_back_addr, %cause,
                    "refused connection from a peer that is not a member"
                ),
                other => tracing::debug!(
                    peer = ?peer_id, address = %send_back_addr, error = %other,
                    "incoming connection failed"
                ),
            },
            SwarmEvent::ListenerError { error, .. } => {
                tracing::error!(%error, "listener error");
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::warn!(?addresses, ?reason, "listener closed");
            }
            other => tracing::trace!(event = ?other, "swarm event"),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(topic) = self.topics.get(&message.topic).copied() else {
                    tracing::debug!(peer = %propagation_source, topic = %message.topic, "gossip on an unknown topic dropped");
                    return;
                };
                tracing::debug!(
                    peer = %propagation_source, topic = ?topic,
                    bytes = message.data.len(), "gossip received"
                );
                let (via, id, bytes) = (propagation_source, message_id, message.data);
                match topic {
                    GossipTopic::Consensus => {
                        self.events.emit(NetworkEvent::Consensus { via, id, bytes });
                    }
                    GossipTopic::Txs => match decode_tx_batch(&bytes) {
                        Ok(txs) => self.events.emit(NetworkEvent::Txs { via, id, txs }),
                        Err(error) => {
                            tracing::warn!(peer = %via, %error, "dropped a malformed tx batch");
                            self.reject_gossip(&id, &via);
                        }
                    },
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "peer subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::warn!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::warn!(peer = %peer_id, ?failed_messages, "slow peer: gossip queue full");
            }
        }
    }

    /// Rejects a message we will not deliver (under manual validation it is then neither
    /// forwarded nor kept; without, it was already forwarded and this is a no-op).
    fn reject_gossip(&mut self, id: &MessageId, via: &PeerId) {
        if self.manual_validation {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(id, via, MessageAcceptance::Reject);
            self.strike(*via);
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.answer_later(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(pending) = self.pending_requests.remove(&request_id) {
                        tracing::debug!(%peer, kind = response.kind(), "sync response");
                        let _ = pending.reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::warn!(%peer, %error, "sync request failed");
                if let Some(pending) = self.pending_requests.remove(&request_id) {
                    let error = match error {
                        OutboundFailure::Timeout => NetworkError::SyncTimeout {
                            peer: pending.peer,
                            after: self.request_timeout,
                        },
                        other => NetworkError::SyncFailed {
                            peer: pending.peer,
                            reason: other.to_string(),
                        },
                    };
                    let _ = pending.reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, "serving a sync request failed");
            }
            request_response::Event::ResponseSent { peer, .. } => {
                tracing::trace!(%peer, "sync response sent");
            }
        }
    }

    /// Computes the answer on the blocking pool and hands it back to the loop.
    fn answer_later(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        tracing::debug!(%peer, kind = request.kind(), "serving sync request");
        let source = Arc::clone(&self.block_source);
        let limits = self.serve_limits;
        let answers = self.answers_tx.clone();
        tokio::spawn(async move {
            let computed =
                tokio::task::spawn_blocking(move || serve(source.as_ref(), &request, limits)).await;
            match computed {
                Ok(response) => {
                    let _ = answers
                        .send(Answer {
                            peer,
                            channel,
                            response,
                        })
                        .await;
                }
                Err(error) => tracing::error!(%peer, %error, "block source failed"),
            }
        });
    }

    fn on_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event {
            let expected = identify_protocol_version(&self.chain_id);
            if info.protocol_version != expected {
                tracing::warn!(
                    peer = %peer_id, theirs = %info.protocol_version, ours = %expected,
                    "peer is on another chain; disconnecting"
                );
                let _ = self.swarm.disconnect_peer_id(peer_id);
                return;
            }
            if !self.swarm.is_connected(&peer_id) || !self.announced.insert(peer_id) {
                return;
            }
            tracing::info!(peer = %peer_id, agent = %info.agent_version, "peer connected");
            self.events.emit(NetworkEvent::PeerConnected(peer_id));
        }
    }
}
