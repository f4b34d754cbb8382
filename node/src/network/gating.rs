//! Membership gating: who may hold a connection to this node.
//!
//! A node's libp2p identity is its organisation's ed25519 *node key*, so the set of peers allowed
//! to connect is derived from the current members' node public keys
//! ([`peer_id_from_node_key`]). Enforcement is done by
//! `libp2p::allow_block_list::Behaviour<AllowedPeers>` inside the swarm: connections with a peer
//! outside the set are denied when they are established (inbound and outbound), before any other
//! behaviour sees them, so gossipsub and block sync never talk to a non-member.
//!
//! Invariants kept here:
//! - replacing the allowed set ([`AllowedSetChange`]) closes every connection of a peer that is
//!   no longer allowed (done by `disallow_peer`) and never touches peers that stay allowed;
//! - the local peer is never part of the set (a node does not connect to itself).

use std::collections::HashSet;

use libp2p::identity::{self, Keypair};
use libp2p::PeerId;

use super::NetworkError;

/// The libp2p keypair of a node from its 32-byte ed25519 node-key seed.
///
/// The seed is copied and the copy is zeroised by libp2p after use.
pub fn keypair_from_node_key(secret_seed: [u8; 32]) -> Result<Keypair, NetworkError> {
    let mut seed = secret_seed;
    Keypair::ed25519_from_bytes(&mut seed).map_err(|error| NetworkError::InvalidNodeKey {
        reason: error.to_string(),
    })
}

/// The `PeerId` of the node whose ed25519 node public key is `pubkey`.
///
/// Fails when the 32 bytes are not a valid compressed Edwards point; this is why it returns a
/// `Result` rather than a bare `PeerId` (the key may come from a governance transaction).
pub fn peer_id_from_node_key(pubkey: [u8; 32]) -> Result<PeerId, NetworkError> {
    let public = identity::ed25519::PublicKey::try_from_bytes(&pubkey).map_err(|error| {
        NetworkError::InvalidNodeKey {
            reason: error.to_string(),
        }
    })?;
    Ok(identity::PublicKey::from(public).to_peer_id())
}

/// The difference between the allowed set in force and a new one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AllowedSetChange {
    /// Peers to allow (not allowed before).
    pub(crate) added: Vec<PeerId>,
    /// Peers to disallow; their connections are closed.
    pub(crate) removed: Vec<PeerId>,
}

impl AllowedSetChange {
    /// Computes the change from `current` to `next`, ignoring `local` (never allowed).
    /// The output is sorted so logs and tests are deterministic.
    pub(crate) fn between(
        current: &HashSet<PeerId>,
        next: &HashSet<PeerId>,
        local: &PeerId,
    ) -> Self {
        let mut added: Vec<PeerId> = next
            .iter()
            .filter(|peer| *peer != local && !current.contains(*peer))
            .copied()
            .collect();
        let mut removed: Vec<PeerId> = current
            .iter()
            .filter(|peer| !next.contains(*peer) || *peer == local)
            .copied()
            .collect();
        added.sort();
        removed.sort();
        Self { added, removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(seed: u8) -> PeerId {
        let keypair = keypair_from_node_key([seed; 32]).expect("any 32-byte seed is a valid key");
        keypair.public().to_peer_id()
    }

    #[test]
    fn peer_id_from_public_key_matches_the_keypair() {
        let keypair = keypair_from_node_key([7; 32]).expect("valid seed");
        let public = keypair
            .public()
            .try_into_ed25519()
            .expect("ed25519 keypair")
            .to_bytes();
        let derived = peer_id_from_node_key(public).expect("valid public key");
        assert_eq!(derived, keypair.public().to_peer_id());
    }

    #[test]
    fn invalid_public_key_is_an_error_not_a_panic() {
        // About half of all y coordinates are not on edwards25519; some of these 64 are not.
        let rejected = (0u8..64)
            .filter(|first| {
                let mut bytes = [0u8; 32];
                bytes[0] = *first;
                matches!(
                    peer_id_from_node_key(bytes),
                    Err(NetworkError::InvalidNodeKey { .. })
                )
            })
            .count();
        assert!(rejected > 0);
    }

    #[test]
    fn change_lists_added_and_removed_peers_only() {
        let (a, b, c, local) = (peer(1), peer(2), peer(3), peer(4));
        let current: HashSet<PeerId> = [a, b].into_iter().collect();
        let next: HashSet<PeerId> = [b, c, local].into_iter().collect();
        let change = AllowedSetChange::between(&current, &next, &local);
        assert_eq!(change.added, vec![c]);
        assert_eq!(change.removed, vec![a]);
        let unchanged = AllowedSetChange::between(&current, &current, &local);
        assert_eq!(unchanged, AllowedSetChange::default());
    }
}
