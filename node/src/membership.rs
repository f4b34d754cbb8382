//! Keeps the network's allowed peers equal to the node keys of the current members.
//!
//! At start the allowed set comes from the latest committed state ([`crate::run::member_peers`]).
//! After every committed block this task recomputes it; when governance admitted or removed an
//! organisation (or rotated a node key), it hands the new set to the network, which closes the
//! connections of peers that are no longer members and refuses them from then on.
//!
//! Invariant: the allowed set is only ever derived from committed state, so every honest node
//! applies the same membership at the same height.

use std::collections::HashSet;

use tokio::sync::{broadcast, watch};

use crate::chain::Chain;
use crate::driver::Committed;
use crate::network::{NetworkHandle, PeerId};
use crate::run::member_peers;

/// Follow commits until shutdown, updating the network's allowed peers when membership changes.
pub async fn follow(
    chain: Chain,
    network: NetworkHandle,
    mut commits: broadcast::Receiver<Committed>,
    mut shutdown: watch::Receiver<bool>,
    mut allowed: HashSet<PeerId>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            event = commits.recv() => match event {
                // A lagged receiver missed some commits; the latest state covers them.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        let members = match member_peers(&chain) {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "cannot read the member node keys");
                continue;
            }
        };
        if members == allowed {
            continue;
        }
        let removed = allowed.difference(&members).count();
        let added = members.difference(&allowed).count();
        match network.set_allowed_peers(members.clone()).await {
            Ok(()) => {
                tracing::info!(
                    height = chain.height(),
                    added,
                    removed,
                    "membership changed: allowed peers updated"
                );
                allowed = members;
            }
            Err(error) => tracing::error!(%error, "cannot update the allowed peers"),
        }
    }
}
