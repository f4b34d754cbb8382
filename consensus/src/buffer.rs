//! Bounded buffer of messages for heights above the current one.
//!
//! Messages are stored unverified (the validator set of a future height is not
//! known yet) and are replayed through the normal edge checks when that height
//! starts. Invariants: at most `max_total` messages overall and
//! `max_per_signer` per claimed signer; only heights within
//! `max_future_heights` of the current height; exact duplicates are stored
//! once; entries below the current height are discarded on every height change.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{Height, SignedMessage, ValidatorId};

/// Messages waiting for their height.
#[derive(Clone, Debug, Default)]
pub struct FutureBuffer {
    by_height: BTreeMap<Height, BTreeSet<SignedMessage>>,
    per_signer: BTreeMap<ValidatorId, usize>,
    total: usize,
}

impl FutureBuffer {
    /// Stores `message` if the limits allow; returns whether it was stored.
    pub fn push(
        &mut self,
        message: SignedMessage,
        max_total: usize,
        max_per_signer: usize,
    ) -> bool {
        let signer = message.signer();
        let count = self.per_signer.get(&signer).copied().unwrap_or(0);
        if self.total >= max_total || count >= max_per_signer {
            return false;
        }
        if !self
            .by_height
            .entry(message.height())
            .or_default()
            .insert(message)
        {
            return false;
        }
        self.per_signer.insert(signer, count + 1);
        self.total += 1;
        true
    }

    /// Removes and returns the messages of `height`; drops all lower heights.
    pub fn take_height(&mut self, height: Height) -> Vec<SignedMessage> {
        let mut keep = self.by_height.split_off(&height);
        let taken = keep
            .remove(&height)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        self.by_height = keep;
        self.recount();
        taken
    }

    fn recount(&mut self) {
        self.per_signer.clear();
        self.total = 0;
        for message in self.by_height.values().flatten() {
            *self.per_signer.entry(message.signer()).or_insert(0) += 1;
            self.total += 1;
        }
    }

    /// Number of buffered messages.
    pub fn count(&self) -> usize {
        self.total
    }
}
