//! The one error type of the network module.
//!
//! Invariant: every variant names what failed and carries the data an operator needs to act
//! (the address, the peer, the size and the limit). Misbehaving peers never produce a
//! `NetworkError` that stops the node: they are logged and dropped inside the swarm task; these
//! errors are only returned to the local caller of a [`super::NetworkHandle`] method or of
//! [`super::Network::start`].

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

/// Errors returned by [`super::Network::start`] and [`super::NetworkHandle`] methods.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The 32-byte node key (secret seed or public key) is not a valid ed25519 key.
    #[error("invalid ed25519 node key: {reason}; check the node key file of this organisation")]
    InvalidNodeKey {
        /// Why the key was rejected.
        reason: String,
    },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),

    /// `Network::start` was called outside a tokio runtime.
    #[error(
        "the network must be started from inside a tokio runtime (call it from an async task)"
    )]
    NoRuntime,

    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The configured listen address.
        addr: Multiaddr,
        /// The transport's explanation (e.g. "Address already in use").
        reason: String,
    },

    /// The TCP + Noise + Yamux transport or a behaviour could not be built.
    #[error("cannot build the libp2p transport: {0}")]
    Transport(String),

    /// The swarm task has stopped (after `shutdown()` or because it failed); nothing more can
    /// be sent through this handle.
    #[error("the network task has stopped; restart the network to send or receive again")]
    Stopped,

    /// A gossip message is larger than the configured `max_transmit_size`.
    #[error("gossip message of {size} bytes on topic {topic} exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Topic the message was published on.
        topic: String,
        /// Size of the payload in bytes.
        size: usize,
        /// Configured limit.
        max: usize,
    },

    /// No connected peer is subscribed to the topic yet, so the message went nowhere.
    #[error(
        "no connected peer is subscribed to topic {topic}; the message was not sent \
         (wait for peers to connect, or check that peers are configured and allowed)"
    )]
    NoPeersSubscribed {
        /// Topic the message was published on.
        topic: String,
    },

    /// Gossipsub refused the message for another reason.
    #[error("cannot publish on topic {topic}: {reason}")]
    Publish {
        /// Topic the message was published on.
        topic: String,
        /// The gossipsub explanation.
        reason: String,
    },

    /// A block-sync request failed (dial failure, closed connection, oversized or malformed
    /// response, protocol not supported by the peer).
    #[error("block-sync request to peer {peer} failed: {reason}")]
    SyncFailed {
        /// The peer that was asked.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },

    /// A block-sync request got no answer in time.
    #[error("block-sync request to peer {peer} got no answer within {after:?}")]
    SyncTimeout {
        /// The peer that was asked.
        peer: PeerId,
        /// The configured request timeout.
        after: Duration,
    },

    /// The peer answered a request with a response of the wrong kind (e.g. blocks to `Status`).
    #[error("peer {peer} answered a {request} request with a {response} response")]
    UnexpectedResponse {
        /// The peer that answered.
        peer: PeerId,
        /// Kind of the request sent.
        request: &'static str,
        /// Kind of the response received.
        response: &'static str,
    },
}
