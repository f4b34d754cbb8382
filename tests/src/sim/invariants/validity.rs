//! Validity (paper, "Validity"): a decided value was proposed (by a signed
//! proposal, honest or not) at that height, and the host judged it valid.

use std::collections::{BTreeMap, BTreeSet};

use gongzhi_consensus::{Height, ValueId};

use super::Violation;

/// Values proposed per height.
#[derive(Debug, Default)]
pub struct Validity {
    proposed: BTreeMap<Height, BTreeSet<ValueId>>,
}

impl Validity {
    /// A signed proposal for `value` at `height` was broadcast.
    pub fn on_proposal(&mut self, height: Height, value: ValueId) {
        self.proposed.entry(height).or_default().insert(value);
    }

    /// An honest node decided `value` at `height`; `valid` is the host's judgement.
    pub fn on_decide(
        &self,
        node: usize,
        height: Height,
        value: ValueId,
        valid: bool,
    ) -> Result<(), Violation> {
        let proposed = self
            .proposed
            .get(&height)
            .is_some_and(|s| s.contains(&value));
        if !proposed || !valid {
            return Err(Violation {
                invariant: "validity",
                detail: format!(
                    "node {node} decided {value:?} at height {} (proposed: {proposed}, valid: {valid})",
                    height.0
                ),
            });
        }
        Ok(())
    }
}
