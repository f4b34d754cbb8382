//! Every equivocation seen becomes evidence: if an honest node was handed two
//! different votes of one validator for the same height, round and kind while
//! it was working on that height (and the round was not in its future, where
//! the bounded buffer may legitimately drop messages), the node must have
//! emitted an `Evidence` output for that (validator, height, round, kind).
//! A node that crashed before performing that output is judged once it is
//! back (its restart replays its WAL, which re-derives the evidence).

use std::collections::{BTreeMap, BTreeSet};

use gongzhi_consensus::{Height, Round, SignedVote, ValidatorId, VoteKind};

use super::Violation;

type Key = (usize, ValidatorId, Height, Round, VoteKind);

/// Votes seen and evidence reported, per honest node.
#[derive(Debug, Default)]
pub struct EvidenceRecorded {
    seen: BTreeMap<Key, BTreeSet<SignedVote>>,
    reported: BTreeSet<Key>,
    pending: Vec<Key>,
    /// Equivocations detected by honest nodes.
    pub reports: u64,
}

fn key(node: usize, vote: &SignedVote) -> Key {
    let v = vote.vote;
    (node, v.validator, v.height, v.round, v.kind)
}

impl EvidenceRecorded {
    /// Honest `node`, working on the vote's height at a round ≥ the vote's, was handed `vote`.
    pub fn on_seen(&mut self, node: usize, vote: SignedVote) {
        let key = key(node, &vote);
        let set = self.seen.entry(key).or_default();
        set.insert(vote);
        let values: BTreeSet<_> = set.iter().map(|v| v.vote.value).collect();
        if values.len() > 1 {
            self.pending.push(key);
        }
    }

    /// Honest `node` emitted evidence containing `vote`.
    pub fn on_evidence(&mut self, node: usize, vote: &SignedVote) {
        if self.reported.insert(key(node, vote)) {
            self.reports += 1;
        }
    }

    /// Checked after every step; `alive(node)` is false for crashed nodes.
    pub fn check(&mut self, alive: impl Fn(usize) -> bool) -> Result<(), Violation> {
        let pending = std::mem::take(&mut self.pending);
        for key in pending {
            if !alive(key.0) {
                self.pending.push(key);
            } else if !self.reported.contains(&key) {
                return Err(Violation {
                    invariant: "evidence_recorded",
                    detail: format!(
                        "node {} saw conflicting votes of {:?} at height {} round {} {:?} without evidence",
                        key.0, key.1, key.2 .0, key.3 .0, key.4
                    ),
                });
            }
        }
        Ok(())
    }
}
