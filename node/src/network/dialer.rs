//! Reconnection schedule for the configured peers (pure logic, no I/O, time is an input).
//!
//! Every configured peer is in exactly one state: `Connected` since an instant, `Dialing`, or
//! `Waiting` until an instant. A peer that disconnects or whose dial fails waits `backoff`
//! before the next dial; the backoff doubles after each attempt up to `max_backoff`, and resets
//! to `initial_backoff` only after a connection that stayed up at least `max_backoff`. (A peer
//! that accepts the handshake and then drops us — e.g. because we are not in its allowed set —
//! would otherwise be redialed every `initial_backoff` forever.)
//!
//! Invariants:
//! - at most one dial per peer is in flight (a peer is `Dialing` until a result comes back);
//! - a connected peer is never dialed;
//! - a peer that is not allowed (membership gating) is never dialed; it keeps its place in the
//!   schedule so that re-allowing it dials it again at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

/// Where a configured peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialState {
    Connected { since: Instant },
    Dialing,
    Waiting { until: Instant },
}

#[derive(Debug, Clone)]
struct ScheduledPeer {
    address: Multiaddr,
    state: DialState,
    /// Delay applied after the next failure.
    backoff: Duration,
    allowed: bool,
}

/// The reconnection schedule of all configured peers.
#[derive(Debug)]
pub(crate) struct Redialer {
    peers: BTreeMap<PeerId, ScheduledPeer>,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Redialer {
    /// A schedule where every peer is due immediately.
    pub(crate) fn new(
        peers: impl IntoIterator<Item = (PeerId, Multiaddr)>,
        initial_backoff: Duration,
        max_backoff: Duration,
        now: Instant,
    ) -> Self {
        let peers = peers
            .into_iter()
            .map(|(peer, address)| {
                let scheduled = ScheduledPeer {
                    address,
                    state: DialState::Waiting { until: now },
                    backoff: initial_backoff,
                    allowed: true,
                };
                (peer, scheduled)
            })
            .collect();
        Self {
            peers,
            initial_backoff,
            max_backoff: max_backoff.max(initial_backoff),
        }
    }

    /// Peers whose next dial is due at `now`; they move to `Dialing`.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let mut due = Vec::new();
        for (peer, scheduled) in &mut self.peers {
            if let DialState::Waiting { until } = scheduled.state {
                if scheduled.allowed && until <= now {
                    scheduled.state = DialState::Dialing;
                    due.push((*peer, scheduled.address.clone()));
                }
            }
        }
        due
    }

    /// The earliest instant at which some allowed peer becomes due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter(|scheduled| scheduled.allowed)
            .filter_map(|scheduled| match scheduled.state {
                DialState::Waiting { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// A connection to `peer` is established (inbound or outbound).
    pub(crate) fn on_connected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(scheduled) = self.peers.get_mut(peer) {
            if !matches!(scheduled.state, DialState::Connected { .. }) {
                scheduled.state = DialState::Connected { since: now };
            }
        }
    }

    /// The last connection to `peer` closed, or a dial to it failed while not connected.
    /// Returns the delay before the next attempt, if `peer` is a configured peer.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId, now: Instant) -> Option<Duration> {
        let scheduled = self.peers.get_mut(peer)?;
        if let DialState::Connected { since } = scheduled.state {
            if now.saturating_duration_since(since) >= self.max_backoff {
                scheduled.backoff = self.initial_backoff;
            }
        }
        let delay = scheduled.backoff;
        scheduled.state = DialState::Waiting { until: now + delay };
        scheduled.backoff = (delay * 2).min(self.max_backoff);
        Some(delay)
    }

    /// A dial was not started because the swarm found it unnecessary (already connected or
    /// already dialing); the outcome will arrive as a connection event.
    pub(crate) fn on_dial_skipped(&mut self, peer: &PeerId, now: Instant) {
        if let Some(scheduled) = self.peers.get_mut(peer) {
            if scheduled.state == DialState::Dialing {
                scheduled.state = DialState::Connected { since: now };
            }
        }
    }

    /// Membership changed: stop or resume dialing `peer`. A peer allowed again is due at `now`.
    pub(crate) fn set_allowed(&mut self, peer: &PeerId, allowed: bool, now: Instant) {
        if let Some(scheduled) = self.peers.get_mut(peer) {
            if allowed && !scheduled.allowed {
                scheduled.state = DialState::Waiting { until: now };
                scheduled.backoff = self.initial_backoff;
            }
            scheduled.allowed = allowed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::keypair_from_node_key;
    use std::sync::atomic::{AtomicU8, Ordering};

    const INITIAL: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(10);

    fn peer() -> PeerId {
        static NEXT_SEED: AtomicU8 = AtomicU8::new(1);
        let seed = NEXT_SEED.fetch_add(1, Ordering::Relaxed);
        keypair_from_node_key([seed; 32])
            .expect("any seed is a valid key")
            .public()
            .to_peer_id()
    }

    fn address() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/26656".parse().expect("valid multiaddr")
    }

    #[test]
    fn configured_peers_are_due_at_start_and_dialed_once() {
        let now = Instant::now();
        let (a, b) = (peer(), peer());
        let mut redialer = Redialer::new([(a, address()), (b, address())], INITIAL, MAX, now);
        assert_eq!(redialer.next_deadline(), Some(now));
        assert_eq!(redialer.take_due(now).len(), 2);
        assert!(redialer.take_due(now + MAX).is_empty(), "in flight");
        assert_eq!(redialer.next_deadline(), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_connect() {
        let start = Instant::now();
        let a = peer();
        let mut redialer = Redialer::new([(a, address())], INITIAL, MAX, start);
        let mut now = start;
        let mut delays = Vec::new();
        for _ in 0..8 {
            assert_eq!(redialer.take_due(now).len(), 1);
            let delay = redialer.on_disconnected(&a, now).expect("configured");
            delays.push(delay.as_millis());
            assert!(redialer
                .take_due(now + delay - Duration::from_millis(1))
                .is_empty());
            now += delay;
        }
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);

        // A connection dropped at once (the peer refuses us) does not reset the backoff...
        redialer.take_due(now);
        redialer.on_connected(&a, now);
        assert!(redialer.take_due(now + MAX).is_empty(), "connected");
        let delay = redialer.on_disconnected(&a, now).expect("configured");
        assert_eq!(delay, MAX);
        // ...a connection that stayed up does.
        now += delay;
        redialer.take_due(now);
        redialer.on_connected(&a, now);
        let delay = redialer.on_disconnected(&a, now + MAX).expect("configured");
        assert_eq!(delay, INITIAL);
    }

    #[test]
    fn disallowed_peers_are_not_dialed_until_allowed_again() {
        let now = Instant::now();
        let a = peer();
        let mut redialer = Redialer::new([(a, address())], INITIAL, MAX, now);
        redialer.set_allowed(&a, false, now);
        assert!(redialer.take_due(now + MAX).is_empty());
        assert_eq!(redialer.next_deadline(), None);
        let later = now + Duration::from_secs(1);
        redialer.set_allowed(&a, true, later);
        assert_eq!(redialer.take_due(later), vec![(a, address())]);
    }

    #[test]
    fn unknown_peers_are_ignored() {
        let now = Instant::now();
        let mut redialer = Redialer::new([], INITIAL, MAX, now);
        let stranger = peer();
        assert_eq!(redialer.on_disconnected(&stranger, now), None);
        redialer.on_connected(&stranger, now);
        assert_eq!(redialer.next_deadline(), None);
    }
}
