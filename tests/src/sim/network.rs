//! Virtual time, the event queue and the faulty network.
//!
//! Invariants: events run in (time, sequence) order, so a run is a pure
//! function of its seed; a node never receives its own broadcast; after
//! `heal_at` no message is lost (only delayed, duplicated or reordered).

use std::collections::BTreeMap;

use gongzhi_consensus::{Height, Round, SignedMessage, TimeoutKind, ValidatorId, ValueId};
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::scenario::Scenario;

/// Something that happens at a virtual time.
#[derive(Clone, Debug)]
pub enum Event {
    /// A message reaches instance `to`.
    Deliver {
        /// Receiving instance.
        to: usize,
        /// Sending instance.
        from: usize,
        /// The message.
        message: SignedMessage,
    },
    /// A timeout scheduled by instance `node` in its life `epoch` elapses.
    Timeout {
        /// Instance.
        node: usize,
        /// Restart count when scheduled (stale lives are ignored).
        epoch: u32,
        /// Which timeout.
        kind: TimeoutKind,
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// The host built the value asked for.
    ValueReady {
        /// Instance.
        node: usize,
        /// Life.
        epoch: u32,
        /// Height.
        height: Height,
        /// Round.
        round: Round,
        /// Value.
        value: ValueId,
    },
    /// The host executed a proposed value.
    ValueVerified {
        /// Instance.
        node: usize,
        /// Life.
        epoch: u32,
        /// Height.
        height: Height,
        /// Value.
        value: ValueId,
    },
    /// Periodic re-gossip of the instance's messages at its height.
    Retransmit {
        /// Instance.
        node: usize,
    },
    /// Crash an instance.
    Crash {
        /// Instance.
        node: usize,
        /// Cut the next output batch in the middle.
        mid_batch: bool,
    },
    /// Restart a crashed instance from its durable state.
    Restart {
        /// Instance.
        node: usize,
    },
}

/// The event queue in virtual milliseconds.
#[derive(Debug, Default)]
pub struct EventQueue {
    events: BTreeMap<(u64, u64), Event>,
    next_sequence: u64,
    /// Current virtual time.
    pub now: u64,
}

impl EventQueue {
    /// Schedules `event` at `now + delay`.
    pub fn push_after(&mut self, delay: u64, event: Event) {
        self.events
            .insert((self.now + delay, self.next_sequence), event);
        self.next_sequence += 1;
    }

    /// Schedules `event` at absolute time `at`.
    pub fn push_at(&mut self, at: u64, event: Event) {
        self.events.insert((at, self.next_sequence), event);
        self.next_sequence += 1;
    }

    /// The next event, advancing virtual time.
    pub fn pop(&mut self) -> Option<Event> {
        let ((time, _), event) = self.events.pop_first()?;
        self.now = time;
        Some(event)
    }

    /// Pending events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True iff nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The network between instances.
#[derive(Debug)]
pub struct Network {
    /// Validator index of each instance.
    pub validator_of: Vec<usize>,
    /// Validator index of each validator id.
    pub index_of: BTreeMap<ValidatorId, usize>,
    /// Messages sent.
    pub sent: u64,
    /// Messages lost.
    pub dropped: u64,
}

impl Network {
    /// Sends `message` from instance `from` to instance `to` under `scenario`'s faults.
    pub fn send(
        &mut self,
        queue: &mut EventQueue,
        rng: &mut ChaCha20Rng,
        scenario: &Scenario,
        from: usize,
        to: usize,
        message: SignedMessage,
    ) {
        if from == to {
            return;
        }
        self.sent += 1;
        let now = queue.now;
        if now < scenario.heal_at {
            let partitioned = scenario
                .partition
                .as_ref()
                .is_some_and(|(start, end, sides)| {
                    now >= *start && now < *end && sides[from] != sides[to]
                });
            // Rules name the signer, also of forwarded messages.
            let signer = self.index_of.get(&message.signer()).copied();
            let ruled = signer.is_some_and(|signer| {
                scenario
                    .drop_rules
                    .iter()
                    .any(|rule| rule.drops(&message, signer, self.validator_of[to]))
            });
            let lost = scenario.drop_probability > 0.0 && rng.gen_bool(scenario.drop_probability);
            if partitioned || ruled || lost {
                self.dropped += 1;
                return;
            }
        }
        let (min, max) = scenario.delay_ms;
        let copies = if scenario.duplicate_probability > 0.0
            && rng.gen_bool(scenario.duplicate_probability)
        {
            2
        } else {
            1
        };
        for _ in 0..copies {
            queue.push_after(
                rng.gen_range(min..=max),
                Event::Deliver { to, from, message },
            );
        }
    }
}
