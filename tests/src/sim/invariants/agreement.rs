//! Agreement (paper, Lemma "Agreement"; Tendermint's safety property): no two
//! honest nodes decide different values for the same height.

use std::collections::BTreeMap;

use gongzhi_consensus::{Height, ValueId};

use super::Violation;

/// First honest decision per height.
#[derive(Debug, Default)]
pub struct Agreement {
    decided: BTreeMap<Height, (ValueId, usize)>,
}

impl Agreement {
    /// Records that honest instance `node` decided `value` at `height`.
    pub fn on_decide(
        &mut self,
        node: usize,
        height: Height,
        value: ValueId,
    ) -> Result<(), Violation> {
        let (first, by) = *self.decided.entry(height).or_insert((value, node));
        if first != value {
            return Err(Violation {
                invariant: "agreement",
                detail: format!(
                    "height {}: node {by} decided {first:?}, node {node} decided {value:?}",
                    height.0
                ),
            });
        }
        Ok(())
    }

    /// The decided value at `height`, if any.
    pub fn decided(&self, height: Height) -> Option<ValueId> {
        self.decided.get(&height).map(|(v, _)| *v)
    }

    /// Highest height decided by any honest node.
    pub fn highest(&self) -> Option<Height> {
        self.decided.keys().next_back().copied()
    }
}
