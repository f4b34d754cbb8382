//! No honest signer ever signs conflicting messages: for each validator key
//! run by honest code, at most one message per (height, round, step) ever
//! leaves it, across crashes and restarts. Also checks the persist-then-send
//! contract: when a signed message is sent, the durable safety state already
//! covers its position.

use std::collections::BTreeMap;

use gongzhi_consensus::{Height, Round, SafetyState, SignedMessage, Step, ValidatorId};

use super::Violation;

/// Every message sent by honest signers, by position.
#[derive(Debug, Default)]
pub struct NoConflictingSignatures {
    signed: BTreeMap<(ValidatorId, Height, Round, Step), SignedMessage>,
}

impl NoConflictingSignatures {
    /// Honest instance `node` sends `message`; `durable` is its persisted state.
    pub fn on_send(
        &mut self,
        node: usize,
        message: SignedMessage,
        durable: &SafetyState,
    ) -> Result<(), Violation> {
        let position = (message.height(), message.round(), message.step());
        if durable.last_position().is_none_or(|p| p < position) {
            return Err(Violation {
                invariant: "no_conflicting_signatures",
                detail: format!(
                    "node {node} sent {position:?} before persisting it (durable: {:?})",
                    durable.last_position()
                ),
            });
        }
        let key = (message.signer(), position.0, position.1, position.2);
        let first = self.signed.entry(key).or_insert(message);
        if *first != message {
            return Err(Violation {
                invariant: "no_conflicting_signatures",
                detail: format!(
                    "node {node} signed two messages at {position:?}: {first:?} and {message:?}"
                ),
            });
        }
        Ok(())
    }
}
