//! Building the swarm: TCP + Noise + Yamux on tokio, the node behaviour, and the listeners.
//!
//! Invariant: when [`build_swarm`] returns, every configured listen address is bound (or the
//! error names the address and why), so a node never runs half-listening.

use std::net::IpAddr;

use libp2p::core::transport::TransportError;
use libp2p::multiaddr::Protocol;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};

use super::behaviour::NodeBehaviour;
use super::gating::keypair_from_node_key;
use super::{NetworkConfig, NetworkError};

/// The swarm of this node, listening on every configured address.
pub(crate) fn build_swarm(config: &NetworkConfig) -> Result<Swarm<NodeBehaviour>, NetworkError> {
    let keypair = keypair_from_node_key(config.node_key)?;
    let behaviour = NodeBehaviour::new(&keypair, config)?;
    let idle = config.idle_connection_timeout;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|error| NetworkError::Transport(error.to_string()))?
        .with_swarm_config(|swarm_config| swarm_config.with_idle_connection_timeout(idle))
        .build();

    for addr in &config.listen_addrs {
        probe_port_free(addr)?;
        swarm.listen_on(addr.clone()).map_err(|error| {
            let reason = match error {
                TransportError::MultiaddrNotSupported(_) => {
                    "unsupported address (expected /ip4/A.B.C.D/tcp/PORT)".to_owned()
                }
                TransportError::Other(io_error) => io_error.to_string(),
            };
            NetworkError::Listen {
                addr: addr.clone(),
                reason,
            }
        })?;
    }

    Ok(swarm)
}

/// Fails if a fixed TCP port in `addr` is already listened on.
///
/// libp2p binds listeners with `SO_REUSEPORT`, so on Linux a second node would silently share
/// the port with the first (the kernel splitting connections between them). A plain bind
/// (`SO_REUSEADDR` only, as std does) fails on a listening port but not on `TIME_WAIT` leftovers
/// of a previous run, which is exactly the check we want.
fn probe_port_free(addr: &Multiaddr) -> Result<(), NetworkError> {
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(IpAddr::V6(v6)),
            Protocol::Tcp(tcp_port) => port = Some(tcp_port),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => std::net::TcpListener::bind((ip, port))
            .map(drop)
            .map_err(|error| NetworkError::Listen {
                addr: addr.clone(),
                reason: error.to_string(),
            }),
        _ => Ok(()),
    }
}
