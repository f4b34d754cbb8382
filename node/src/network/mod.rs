//! Peer-to-peer layer of a Gongzhi node: libp2p over TCP + Noise + Yamux on tokio.
//!
//! [`Network::start`] builds the swarm, binds the listen addresses and spawns one task that owns
//! the swarm. The host talks to that task through a cloneable [`NetworkHandle`] (bounded command
//! queue) and receives [`NetworkEvent`]s on a bounded channel.
//!
//! What it provides:
//! - identity: the libp2p key is the organisation's ed25519 node key ([`keypair_from_node_key`],
//!   [`peer_id_from_node_key`]);
//! - membership gating: only peers in the allowed set hold connections; [`NetworkHandle::
//!   set_allowed_peers`] closes the connections of peers removed from it;
//! - gossip on `gongzhi/<chain_id>/txs/1` and `gongzhi/<chain_id>/consensus/1` (anonymous and
//!   unsigned — payloads carry their own signatures — with content-addressed ids so duplicates
//!   are delivered once);
//! - block sync by request-response (`/gongzhi/<chain_id>/sync/1`), served from the host's
//!   [`BlockSource`];
//! - reconnection of configured peers with capped exponential backoff;
//! - with `manual_validation`, gossip is forwarded only once the host accepts it, and a peer
//!   whose messages are rejected too often is disconnected and refused for a while
//!   ([`BanPolicy`], `misbehaviour`).
//!
//! Invariants: nothing a peer sends can stop the task or the node — bad frames, bad gossip,
//! non-members and protocol failures are logged with the peer and dropped. Queues are bounded:
//! commands (backpressure on the caller), events (a bounded backlog, then events are dropped
//! with a warning: the host must keep draining its receiver), gossip per connection (`gossip_queue_len`), sync streams per connection.
//! A node does not receive its own gossip back: the host handles what it publishes itself.

mod behaviour;
mod codec;
mod dialer;
mod error;
mod events;
mod gating;
mod misbehaviour;
mod sync;
mod task;
mod transport;
mod tx_batch;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use behaviour::GossipTopic;
pub use codec::{SyncRequest, SyncResponse, DEFAULT_MAX_RESPONSE_BYTES};
pub use error::NetworkError;
pub use gating::{keypair_from_node_key, peer_id_from_node_key};
pub use misbehaviour::BanPolicy;
// Re-exported so the host needs no direct libp2p dependency.
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};
pub use sync::{BlockSource, NoBlocks};
pub use tx_batch::{
    decode_tx_batch, encode_tx_batch, TxBatchError, TxBatchLimits, MAX_BATCH_TXS,
    MAX_BATCH_TX_BYTES, TX_BATCH_VERSION,
};

use task::Command;

/// Default gossip message limit: 4 MiB.
pub const DEFAULT_MAX_TRANSMIT_SIZE: usize = 4 * 1024 * 1024;

/// A peer this node dials and keeps connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// Its identity (from its node key).
    pub peer_id: PeerId,
    /// Where it listens, e.g. `/ip4/10.0.0.2/tcp/26656`.
    pub address: Multiaddr,
}

/// Configuration of [`Network::start`]. Build with [`NetworkConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct NetworkConfig {
    /// Chain id; part of every topic and protocol name.
    pub chain_id: String,
    /// 32-byte ed25519 secret seed of this organisation's node key.
    pub node_key: [u8; 32],
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/26656` (port 0: OS-assigned).
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers to dial and to redial when their connection drops.
    pub peers: Vec<PeerAddress>,
    /// Peers allowed to connect (current members' node keys); this node's own id is ignored.
    pub allowed_peers: HashSet<PeerId>,
    /// Answers peers' block-sync requests. Default: [`NoBlocks`].
    pub block_source: Arc<dyn BlockSource>,
    /// Largest gossip message, in bytes. Default 4 MiB.
    pub max_transmit_size: usize,
    /// Largest block-sync response frame accepted or sent, in bytes. Default 64 MiB.
    pub max_sync_response_bytes: usize,
    /// Most blocks served per request, whatever the peer asks. Default 128.
    pub max_blocks_per_response: u32,
    /// Deadline of a block-sync request. Default 30 s.
    pub request_timeout: Duration,
    /// Concurrent block-sync streams per connection. Default 16.
    pub max_concurrent_sync_streams: usize,
    /// Gossip messages buffered per connection before dropping. Default 2048.
    pub gossip_queue_len: usize,
    /// Commands buffered between handles and the task. Default 1024.
    pub command_queue_len: usize,
    /// Events buffered for the host (channel, then as much again in a backlog). Default 4096.
    pub event_queue_len: usize,
    /// First reconnection delay. Default 250 ms.
    pub initial_backoff: Duration,
    /// Cap of the reconnection delay. Default 10 s.
    pub max_backoff: Duration,
    /// A connection with no protocol activity is closed after this. Default 1 hour.
    pub idle_connection_timeout: Duration,
    /// When the pending tx batch is published. Default: 1,024 txs, 1 MiB (at most
    /// `max_transmit_size`) or 10 ms after its first tx, whichever comes first.
    pub tx_batch: TxBatchLimits,
    /// When true, gossip is forwarded only after the host calls
    /// [`NetworkHandle::report_validation`] with `Accept`, and rejected messages count
    /// against the peer they came from ([`Self::ban`]). Default false (forward at once; no
    /// peer is ever banned).
    pub manual_validation: bool,
    /// When a peer whose messages are rejected is disconnected and refused, and for how
    /// long (only with `manual_validation`). Default: 10 within a minute, for 5 minutes.
    pub ban: BanPolicy,
}

impl NetworkConfig {
    /// Defaults for chain `chain_id` and node key `node_key`; no listen address, no peers.
    pub fn new(chain_id: impl Into<String>, node_key: [u8; 32]) -> Self {
        Self {
            chain_id: chain_id.into(),
            node_key,
            listen_addrs: Vec::new(),
            peers: Vec::new(),
            allowed_peers: HashSet::new(),
            block_source: Arc::new(NoBlocks),
            max_transmit_size: DEFAULT_MAX_TRANSMIT_SIZE,
            max_sync_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_blocks_per_response: 128,
            request_timeout: Duration::from_secs(30),
            max_concurrent_sync_streams: 16,
            gossip_queue_len: 2048,
            command_queue_len: 1024,
            event_queue_len: 4096,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            idle_connection_timeout: Duration::from_secs(3600),
            manual_validation: false,
            ban: BanPolicy::default(),
            tx_batch: TxBatchLimits {
                max_txs: 1024,
                max_bytes: 1024 * 1024,
                interval: Duration::from_millis(crate::config::DEFAULT_TX_GOSSIP_INTERVAL_MS),
            },
        }
    }

    fn validate(&self) -> Result<(), NetworkError> {
        let invalid = |message: String| Err(NetworkError::InvalidConfig(message));
        let chain_id_ok = !self.chain_id.is_empty()
            && self
                .chain_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !chain_id_ok {
            return invalid(format!(
                "chain id {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                self.chain_id
            ));
        }
        if self.max_transmit_size < 1024 {
            return invalid(format!(
                "max_transmit_size is {} bytes; it must be at least 1024",
                self.max_transmit_size
            ));
        }
        if self.max_sync_response_bytes < 1024 || self.max_sync_response_bytes > u32::MAX as usize {
            return invalid(format!(
                "max_sync_response_bytes is {}; it must be between 1 KiB and 4 GiB",
                self.max_sync_response_bytes
            ));
        }
        let batch = &self.tx_batch;
        if batch.max_txs == 0 || batch.max_txs > MAX_BATCH_TXS {
            return invalid(format!(
                "tx_batch.max_txs is {}; it must be between 1 and {MAX_BATCH_TXS}",
                batch.max_txs
            ));
        }
        if batch.max_bytes < 1024 {
            return invalid(format!(
                "tx_batch.max_bytes is {}; it must be at least 1024 (it is capped at \
                 max_transmit_size)",
                batch.max_bytes
            ));
        }
        let queues = [
            ("command_queue_len", self.command_queue_len),
            ("event_queue_len", self.event_queue_len),
            ("gossip_queue_len", self.gossip_queue_len),
            (
                "max_concurrent_sync_streams",
                self.max_concurrent_sync_streams,
            ),
        ];
        if let Some((name, _)) = queues.iter().find(|(_, len)| *len == 0) {
            return invalid(format!("{name} must be at least 1"));
        }
        if self.initial_backoff.is_zero() || self.request_timeout.is_zero() {
            return invalid("initial_backoff and request_timeout must be positive".to_owned());
        }
        if self.ban.limit > 0 && (self.ban.window.is_zero() || self.ban.duration.is_zero()) {
            return invalid(
                "ban.window and ban.duration must be positive when ban.limit is set (0 never bans)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The node key is a secret: never printed.
        f.debug_struct("NetworkConfig")
            .field("chain_id", &self.chain_id)
            .field("node_key", &"<secret>")
            .field("listen_addrs", &self.listen_addrs)
            .field("peers", &self.peers)
            .field("allowed_peers", &self.allowed_peers.len())
            .field("max_transmit_size", &self.max_transmit_size)
            .field("max_sync_response_bytes", &self.max_sync_response_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("manual_validation", &self.manual_validation)
            .field("ban", &self.ban)
            .field("tx_batch", &self.tx_batch)
            .finish_non_exhaustive()
    }
}

/// What the network tells the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A listener is bound to this address (with the OS-assigned port when the port was 0).
    ListeningOn(Multiaddr),
    /// A peer is connected and identified: both sides accepted the connection (both are in
    /// each other's allowed set) and it is on the same chain. Once per peer, however many
    /// connections it has.
    PeerConnected(PeerId),
    /// The last connection to a peer reported by `PeerConnected` closed.
    PeerDisconnected(PeerId),
    /// A peer sent too many rejected gossip messages ([`BanPolicy`]): it is disconnected and
    /// refused until its ban ends.
    PeerBanned(PeerId),
    /// A batch of transactions gossiped on the txs topic (framing checked, see
    /// [`decode_tx_batch`]; the txs themselves are not yet decoded nor verified).
    Txs {
        /// Peer that forwarded it to us (pass it to [`NetworkHandle::report_validation`]).
        via: PeerId,
        /// Content-addressed message id of the batch.
        id: MessageId,
        /// Canonical encodings of the txs, in batch order.
        txs: Vec<Vec<u8>>,
    },
    /// A consensus message gossiped on the consensus topic. Gossip is anonymous: the author
    /// is whoever signed the payload, not something the network vouches for.
    Consensus {
        /// Peer that forwarded it to us.
        via: PeerId,
        /// Content-addressed message id.
        id: MessageId,
        /// The payload, not yet validated.
        bytes: Vec<u8>,
    },
}

/// The host's verdict on a gossip message (meaningful with `manual_validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Valid: forward it to the mesh.
    Accept,
    /// Invalid whatever the node's state: drop it and count it against the forwarding peer.
    Reject,
    /// Drop it without penalty (e.g. stale).
    Ignore,
}

/// Entry point.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Builds the swarm, binds every listen address, starts dialing the configured peers and
    /// spawns the swarm task on the current tokio runtime.
    pub fn start(
        config: NetworkConfig,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetworkError::NoRuntime)?;
        let (command_tx, command_rx) = mpsc::channel(config.command_queue_len);
        let (event_tx, event_rx) = mpsc::channel(config.event_queue_len);
        let spawned = task::SwarmTask::build(&config, command_rx, event_tx)?;
        let handle = NetworkHandle {
            commands: command_tx,
            local_peer_id: spawned.local_peer_id(),
            request_timeout: config.request_timeout,
        };
        runtime.spawn(spawned.run());
        Ok((handle, event_rx))
    }
}

/// Cloneable handle to the swarm task. Every method fails with [`NetworkError::Stopped`] once
/// the task has stopped.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    request_timeout: Duration,
}

impl NetworkHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Queues a transaction (its canonical encoding) for gossip in the next tx batch, which
    /// goes out when full or `tx_batch.interval` after its first tx. Fails only when the tx is
    /// larger than [`MAX_BATCH_TX_BYTES`] or the network has stopped; a batch that cannot be
    /// published later (no peers yet) is logged and dropped.
    pub async fn publish_tx(&self, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.publish(GossipTopic::Txs, bytes).await
    }

    /// Gossips a consensus message. Publishing bytes already seen is a no-op.
    pub async fn publish_consensus(&self, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.publish(GossipTopic::Consensus, bytes).await
    }

    /// Gossips `bytes` on `topic` (on [`GossipTopic::Txs`], `bytes` is one tx, batched as by
    /// [`Self::publish_tx`]).
    pub async fn publish(&self, topic: GossipTopic, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Publish {
            topic,
            bytes,
            reply,
        })
        .await?
    }

    /// Asks `peer` for its latest committed height.
    pub async fn request_status(&self, peer: PeerId) -> Result<u64, NetworkError> {
        match self.request(peer, SyncRequest::Status).await? {
            SyncResponse::Status { height } => Ok(height),
            other => Err(NetworkError::UnexpectedResponse {
                peer,
                request: "Status",
                response: other.kind(),
            }),
        }
    }

    /// Asks `peer` for at most `max` blocks from height `from` (each an encoded block +
    /// certificate; the peer may send fewer).
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        max: u32,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        match self
            .request(peer, SyncRequest::Blocks { from, max })
            .await?
        {
            SyncResponse::Blocks(blocks) => Ok(blocks),
            other => Err(NetworkError::UnexpectedResponse {
                peer,
                request: "Blocks",
                response: other.kind(),
            }),
        }
    }

    async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetworkError> {
        // The swarm enforces `request_timeout`; this outer deadline only guards against a
        // response that never comes back from the task.
        let deadline = self.request_timeout + Duration::from_secs(5);
        let call = self.call(|reply| Command::Request {
            peer,
            request,
            reply,
        });
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result?,
            Err(_) => Err(NetworkError::SyncTimeout {
                peer,
                after: self.request_timeout,
            }),
        }
    }

    /// Replaces the set of peers allowed to connect; connections of removed peers are closed
    /// and configured peers that became allowed are dialed.
    pub async fn set_allowed_peers(&self, peers: HashSet<PeerId>) -> Result<(), NetworkError> {
        self.call(|reply| Command::SetAllowedPeers { peers, reply })
            .await
    }

    /// Peers with at least one established connection, sorted.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        self.call(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Connected peers subscribed to `topic` (those a publish reaches directly), sorted.
    pub async fn topic_peers(&self, topic: GossipTopic) -> Result<Vec<PeerId>, NetworkError> {
        self.call(|reply| Command::TopicPeers { topic, reply })
            .await
    }

    /// Addresses the node listens on (with OS-assigned ports resolved).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Reports the host's verdict on gossip message `id` received `via` a peer. Only has an
    /// effect with `manual_validation`: `Accept` forwards the message, `Reject` and `Ignore`
    /// drop it, and `Reject` also counts against `via` (see [`BanPolicy`]). Reject only what
    /// every honest node would reject whatever its state and configuration.
    pub async fn report_validation(
        &self,
        id: MessageId,
        via: PeerId,
        validation: Validation,
    ) -> Result<(), NetworkError> {
        self.commands
            .send(Command::ReportValidation {
                id,
                via,
                validation,
            })
            .await
            .map_err(|_| NetworkError::Stopped)
    }

    /// [`Self::report_validation`] without waiting, for callers that cannot: when the command
    /// queue is full the report is dropped (the message is then neither forwarded nor
    /// counted against the peer) and `false` is returned.
    pub fn try_report_validation(
        &self,
        id: MessageId,
        via: PeerId,
        validation: Validation,
    ) -> bool {
        self.commands
            .try_send(Command::ReportValidation {
                id,
                via,
                validation,
            })
            .is_ok()
    }

    /// Stops the swarm task, closing listeners and connections; returns once they are closed.
    /// Calling it on a stopped network succeeds.
    pub async fn shutdown(&self) -> Result<(), NetworkError> {
        match self.call(|reply| Command::Shutdown { reply }).await {
            Ok(()) | Err(NetworkError::Stopped) => Ok(()),
            Err(other) => Err(other),
        }
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let config = NetworkConfig::new("gongzhi-dev", [1; 32]);
        assert!(config.validate().is_ok());
        assert_eq!(config.max_transmit_size, 4 * 1024 * 1024);

        let mut bad_chain = config.clone();
        bad_chain.chain_id = "a/b".to_owned();
        let message = bad_chain.validate().expect_err("slash").to_string();
        assert!(message.contains("chain id"), "{message}");

        let mut no_queue = config.clone();
        no_queue.event_queue_len = 0;
        let message = no_queue.validate().expect_err("zero").to_string();
        assert!(message.contains("event_queue_len"), "{message}");
    }

    #[test]
    fn debug_output_hides_the_node_key() {
        let config = NetworkConfig::new("gongzhi-dev", [0xab; 32]);
        let printed = format!("{config:?}");
        assert!(printed.contains("<secret>"));
        assert!(!printed.contains("171"), "{printed}");
    }

    #[test]
    fn start_outside_a_runtime_is_an_error() {
        let result = Network::start(NetworkConfig::new("gongzhi-dev", [1; 32]));
        assert!(matches!(result, Err(NetworkError::NoRuntime)));
    }
}
