//! Heights only grow: each instance's current height never decreases (also
//! across restarts, which resume from the durable chain), and each decides
//! every height at most once, in increasing order.

use std::collections::BTreeMap;

use gongzhi_consensus::Height;

use super::Violation;

/// Last height seen and last height decided per instance.
#[derive(Debug, Default)]
pub struct HeightsGrow {
    current: BTreeMap<usize, Height>,
    decided: BTreeMap<usize, Height>,
}

impl HeightsGrow {
    /// After a step, instance `node` is at `height`.
    pub fn on_step(&mut self, node: usize, height: Height) -> Result<(), Violation> {
        let last = self.current.entry(node).or_insert(height);
        if height < *last {
            return Err(Violation {
                invariant: "heights_grow",
                detail: format!(
                    "node {node} went from height {} back to {}",
                    last.0, height.0
                ),
            });
        }
        *last = height;
        Ok(())
    }

    /// Instance `node` decided `height`.
    pub fn on_decide(&mut self, node: usize, height: Height) -> Result<(), Violation> {
        if let Some(last) = self.decided.get(&node) {
            if height <= *last {
                return Err(Violation {
                    invariant: "heights_grow",
                    detail: format!("node {node} decided height {} after {}", height.0, last.0),
                });
            }
        }
        self.decided.insert(node, height);
        Ok(())
    }
}
