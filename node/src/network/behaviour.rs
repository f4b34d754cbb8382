//! The composed libp2p behaviour of a Gongzhi node and the construction of its parts.
//!
//! Order matters: `allowed` comes first, so membership gating denies a non-member's connection
//! before gossipsub, block sync or identify allocate anything for it.
//!
//! Invariants:
//! - gossip messages are anonymous and unsigned (`ValidationMode::Anonymous`: a message that
//!   carries an author, sequence number or signature is rejected). Connections are already
//!   Noise-authenticated and only members may connect, and every payload (tx, proposal, vote)
//!   carries its own ed25519 signature, so a per-message libp2p signature would only cost a
//!   sign on publish and a verify per received copy;
//! - a gossip message's id is `blake3("gongzhi/gossip/v1" ‖ len(topic) ‖ topic ‖ data)`, so
//!   the same payload on the same topic is delivered and forwarded once, whoever published it;
//! - both protocols carry the chain id, so nodes of different chains never exchange messages.

use std::time::Duration;

use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, request_response, StreamProtocol};

use super::codec::SyncCodec;
use super::{NetworkConfig, NetworkError};

/// Domain tag of gossip message ids.
const GOSSIP_ID_TAG: &[u8] = b"gongzhi/gossip/v1";

/// The two gossip topics of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GossipTopic {
    /// Signed transactions: `gongzhi/<chain_id>/txs/1`.
    Txs,
    /// Consensus messages (proposals, votes): `gongzhi/<chain_id>/consensus/1`.
    Consensus,
}

impl GossipTopic {
    /// Both topics.
    pub const ALL: [GossipTopic; 2] = [GossipTopic::Txs, GossipTopic::Consensus];

    /// The topic name on the chain `chain_id`.
    pub fn name(self, chain_id: &str) -> String {
        match self {
            GossipTopic::Txs => format!("gongzhi/{chain_id}/txs/1"),
            GossipTopic::Consensus => format!("gongzhi/{chain_id}/consensus/1"),
        }
    }

    pub(crate) fn ident(self, chain_id: &str) -> IdentTopic {
        IdentTopic::new(self.name(chain_id))
    }
}

/// Name of the block-sync protocol on the chain `chain_id`.
pub(crate) fn sync_protocol_name(chain_id: &str) -> String {
    format!("/gongzhi/{chain_id}/sync/1")
}

/// Protocol version announced by identify; peers announcing another are disconnected.
pub(crate) fn identify_protocol_version(chain_id: &str) -> String {
    format!("gongzhi/{chain_id}/1")
}

/// Content-addressed gossip message id (see the module invariants).
pub(crate) fn gossip_message_id(message: &gossipsub::Message) -> MessageId {
    let topic = message.topic.as_str().as_bytes();
    let mut hasher = blake3::Hasher::new();
    hasher.update(GOSSIP_ID_TAG);
    hasher.update(&(topic.len() as u64).to_be_bytes());
    hasher.update(topic);
    hasher.update(&message.data);
    MessageId::from(hasher.finalize().as_bytes().to_vec())
}

/// Everything a Gongzhi node speaks, in gating order.
#[derive(NetworkBehaviour)]
pub(crate) struct NodeBehaviour {
    pub(crate) allowed: allow_block_list::Behaviour<AllowedPeers>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    pub(crate) identify: identify::Behaviour,
}

impl NodeBehaviour {
    /// Builds the behaviour of the node owning `keypair` and subscribes to both topics.
    pub(crate) fn new(keypair: &Keypair, config: &NetworkConfig) -> Result<Self, NetworkError> {
        let local = keypair.public().to_peer_id();
        let mut allowed = allow_block_list::Behaviour::<AllowedPeers>::default();
        for peer in config.allowed_peers.iter().filter(|peer| **peer != local) {
            allowed.allow_peer(*peer);
        }

        let mut gossipsub = build_gossipsub(config)?;
        for topic in GossipTopic::ALL {
            gossipsub
                .subscribe(&topic.ident(&config.chain_id))
                .map_err(|error| {
                    NetworkError::InvalidConfig(format!(
                        "cannot subscribe to {}: {error:?}",
                        topic.name(&config.chain_id)
                    ))
                })?;
        }

        let protocol = StreamProtocol::try_from_owned(sync_protocol_name(&config.chain_id))
            .map_err(|error| {
                NetworkError::InvalidConfig(format!(
                    "chain id unusable in a protocol name: {error}"
                ))
            })?;
        let sync = request_response::Behaviour::with_codec(
            SyncCodec::new(config.max_sync_response_bytes),
            [(protocol, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(config.max_concurrent_sync_streams),
        );

        let identify = identify::Behaviour::new(
            identify::Config::new(
                identify_protocol_version(&config.chain_id),
                keypair.public(),
            )
            .with_agent_version(format!("gongzhi/{}", env!("CARGO_PKG_VERSION"))),
        );

        Ok(Self {
            allowed,
            gossipsub,
            sync,
            identify,
        })
    }
}

fn build_gossipsub(config: &NetworkConfig) -> Result<gossipsub::Behaviour, NetworkError> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(gossip_message_id)
        .max_transmit_size(config.max_transmit_size)
        .connection_handler_queue_len(config.gossip_queue_len)
        .heartbeat_interval(Duration::from_millis(700))
        .duplicate_cache_time(Duration::from_secs(120));
    if config.manual_validation {
        builder.validate_messages();
    }
    let gossip_config = builder
        .build()
        .map_err(|error| NetworkError::InvalidConfig(format!("gossipsub: {error}")))?;
    gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)
        .map_err(|reason| NetworkError::InvalidConfig(format!("gossipsub: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, data: &[u8], source_seed: u64) -> gossipsub::Message {
        gossipsub::Message {
            source: None,
            data: data.to_vec(),
            sequence_number: Some(source_seed),
            topic: IdentTopic::new(topic).hash(),
        }
    }

    #[test]
    fn topic_names_carry_the_chain_id() {
        assert_eq!(GossipTopic::Txs.name("dev-1"), "gongzhi/dev-1/txs/1");
        assert_eq!(
            GossipTopic::Consensus.name("dev-1"),
            "gongzhi/dev-1/consensus/1"
        );
        assert_eq!(sync_protocol_name("dev-1"), "/gongzhi/dev-1/sync/1");
    }

    #[test]
    fn message_id_depends_on_topic_and_data_only() {
        let a = gossip_message_id(&message("t", b"payload", 1));
        let same_payload_other_sequence = gossip_message_id(&message("t", b"payload", 2));
        let other_topic = gossip_message_id(&message("u", b"payload", 1));
        let other_data = gossip_message_id(&message("t", b"payloae", 1));
        assert_eq!(a, same_payload_other_sequence);
        assert_ne!(a, other_topic);
        assert_ne!(a, other_data);
        assert_eq!(a.0.len(), 32);
    }

    #[test]
    fn topic_and_data_boundary_is_unambiguous() {
        let left = gossip_message_id(&message("ab", b"c", 1));
        let right = gossip_message_id(&message("a", b"bc", 1));
        assert_ne!(left, right);
    }
}
