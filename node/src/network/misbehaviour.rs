//! Peer misbehaviour: counting the gossip messages this node rejected from each peer, and
//! banning a peer that sends too many of them within a window.
//!
//! Only messages rejected under manual validation count: then an honest peer forwards a
//! message only after its own host accepted it, and the checks that lead to `Reject` (a
//! payload that does not decode, a tx with a bad signature or another chain id) give the same
//! verdict on every node, so the peer a rejected message came from sent or forwarded garbage
//! itself. Checks that depend on a node's state or configuration end in `Ignore`, which never
//! counts.
//!
//! Invariants:
//! - a peer is banned exactly when its `limit`-th strike falls within `window` of its first
//!   counted strike (older strikes are forgotten when the window has passed);
//! - a ban lasts `duration` from the strike that caused it, and a banned peer is never struck
//!   again (its messages no longer arrive);
//! - `limit = 0` never bans. Time is passed in, so the bookkeeping is testable without clocks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// When a peer is banned, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanPolicy {
    /// Rejected messages within `window` that ban a peer; 0 never bans.
    pub limit: u32,
    /// How far back strikes count.
    pub window: Duration,
    /// How long a banned peer is disconnected and refused.
    pub duration: Duration,
}

impl Default for BanPolicy {
    /// 10 rejected messages within a minute ban a peer for 5 minutes.
    fn default() -> Self {
        BanPolicy {
            limit: 10,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(300),
        }
    }
}

/// Strikes and bans by peer. See the module docs.
#[derive(Debug)]
pub(crate) struct Misbehaviour {
    policy: BanPolicy,
    /// Strikes counted in the current window, and when it began.
    strikes: HashMap<PeerId, (u32, Instant)>,
    /// Banned peers and when their ban ends.
    banned: HashMap<PeerId, Instant>,
}

impl Misbehaviour {
    pub(crate) fn new(policy: BanPolicy) -> Self {
        Misbehaviour {
            policy,
            strikes: HashMap::new(),
            banned: HashMap::new(),
        }
    }

    /// Counts one rejected message from `peer` at `now`; returns when its ban ends if this
    /// strike bans it.
    pub(crate) fn strike(&mut self, peer: PeerId, now: Instant) -> Option<Instant> {
        if self.policy.limit == 0 || self.banned.contains_key(&peer) {
            return None;
        }
        let (count, since) = self.strikes.entry(peer).or_insert((0, now));
        if now.saturating_duration_since(*since) > self.policy.window {
            (*count, *since) = (0, now);
        }
        *count += 1;
        if *count < self.policy.limit {
            return None;
        }
        self.strikes.remove(&peer);
        let until = now + self.policy.duration;
        self.banned.insert(peer, until);
        Some(until)
    }

    /// Whether `peer` is banned now (until [`Self::lift_expired`] says otherwise).
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// When the earliest ban ends, if any peer is banned.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.banned.values().min().copied()
    }

    /// Ends the bans due by `now` and returns those peers, sorted.
    pub(crate) fn lift_expired(&mut self, now: Instant) -> Vec<PeerId> {
        let mut lifted: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        lifted.sort();
        for peer in &lifted {
            self.banned.remove(peer);
        }
        lifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: u32) -> BanPolicy {
        BanPolicy {
            limit,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_limit_th_strike_in_the_window_bans_for_the_duration() {
        let (peer, other) = (PeerId::random(), PeerId::random());
        let start = Instant::now();
        let mut m = Misbehaviour::new(policy(3));
        assert_eq!(m.strike(peer, start), None);
        assert_eq!(m.strike(other, start), None);
        assert_eq!(m.strike(peer, start + Duration::from_secs(10)), None);
        let at = start + Duration::from_secs(20);
        assert_eq!(m.strike(peer, at), Some(at + Duration::from_secs(300)));
        assert!(m.is_banned(&peer));
        assert!(!m.is_banned(&other), "strikes are per peer");
        assert_eq!(
            m.strike(peer, at),
            None,
            "a banned peer is not struck again"
        );
        assert_eq!(m.next_expiry(), Some(at + Duration::from_secs(300)));

        assert!(m.lift_expired(at + Duration::from_secs(299)).is_empty());
        assert_eq!(m.lift_expired(at + Duration::from_secs(300)), vec![peer]);
        assert!(!m.is_banned(&peer));
        assert_eq!(m.next_expiry(), None);
        // Readmitted with a clean record: it takes the full limit again.
        let later = at + Duration::from_secs(301);
        assert_eq!(m.strike(peer, later), None);
        assert_eq!(m.strike(peer, later), None);
        assert!(m.strike(peer, later).is_some());
    }

    #[test]
    fn strikes_older_than_the_window_are_forgotten() {
        let peer = PeerId::random();
        let start = Instant::now();
        let mut m = Misbehaviour::new(policy(3));
        m.strike(peer, start);
        m.strike(peer, start + Duration::from_secs(30));
        // The window (60 s from the first strike) has passed: counting starts again.
        assert_eq!(m.strike(peer, start + Duration::from_secs(61)), None);
        assert_eq!(m.strike(peer, start + Duration::from_secs(62)), None);
        assert!(!m.is_banned(&peer));
        assert!(m.strike(peer, start + Duration::from_secs(63)).is_some());
    }

    #[test]
    fn a_zero_limit_never_bans() {
        let peer = PeerId::random();
        let now = Instant::now();
        let mut m = Misbehaviour::new(policy(0));
        for _ in 0..1000 {
            assert_eq!(m.strike(peer, now), None);
        }
        assert!(!m.is_banned(&peer));
    }
}
