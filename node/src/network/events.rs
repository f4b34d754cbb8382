//! Hand-over of [`NetworkEvent`]s from the swarm task to the host.
//!
//! Invariants:
//! - the swarm task never awaits the host: `emit` uses `try_send`;
//! - when the channel is full, events wait in a backlog of at most `backlog_cap`, in order, and
//!   the task drains it as soon as the channel has room (events are never reordered);
//! - past that, events are dropped and counted, with a warning: the host is not keeping up, and
//!   blocking the swarm would stall every peer instead;
//! - once the host has dropped its receiver, events are discarded silently.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use super::NetworkEvent;

/// Events for the host: a bounded channel, then a bounded backlog.
pub(crate) struct EventSink {
    pub(crate) sender: mpsc::Sender<NetworkEvent>,
    pub(crate) backlog: VecDeque<NetworkEvent>,
    backlog_cap: usize,
    dropped: u64,
}

impl EventSink {
    pub(crate) fn new(sender: mpsc::Sender<NetworkEvent>, backlog_cap: usize) -> Self {
        Self {
            sender,
            backlog: VecDeque::new(),
            backlog_cap,
            dropped: 0,
        }
    }

    pub(crate) fn emit(&mut self, event: NetworkEvent) {
        if self.backlog.is_empty() {
            match self.sender.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => return self.push_backlog(event),
            }
        }
        self.push_backlog(event);
    }

    fn push_backlog(&mut self, event: NetworkEvent) {
        if self.backlog.len() < self.backlog_cap {
            self.backlog.push_back(event);
            return;
        }
        self.dropped += 1;
        tracing::warn!(
            dropped = self.dropped,
            "host is not draining network events; dropping one"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::keypair_from_node_key;

    fn connected(seed: u8) -> NetworkEvent {
        let keypair = keypair_from_node_key([seed; 32]).expect("valid seed");
        NetworkEvent::PeerConnected(keypair.public().to_peer_id())
    }

    #[test]
    fn overflow_waits_in_order_then_is_dropped() {
        let (sender, mut receiver) = mpsc::channel(1);
        let mut sink = EventSink::new(sender, 2);
        for seed in 1..=4 {
            sink.emit(connected(seed));
        }
        assert_eq!(
            sink.backlog.len(),
            2,
            "one in the channel, two waiting, one dropped"
        );
        assert_eq!(sink.dropped, 1);

        assert_eq!(receiver.try_recv().ok(), Some(connected(1)));
        // Room in the channel does not let a new event overtake the backlog (it is full, so
        // the new event is dropped).
        sink.emit(connected(5));
        assert_eq!(receiver.try_recv().ok(), None);
        assert_eq!(sink.dropped, 2);
        let waiting: Vec<NetworkEvent> = sink.backlog.iter().cloned().collect();
        assert_eq!(waiting, vec![connected(2), connected(3)]);
    }

    #[test]
    fn closed_receiver_discards_events() {
        let (sender, receiver) = mpsc::channel(1);
        drop(receiver);
        let mut sink = EventSink::new(sender, 2);
        sink.emit(connected(1));
        sink.emit(connected(2));
        assert!(sink.backlog.is_empty());
    }
}
