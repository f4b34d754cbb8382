//! Exact-output tests, one per rule of Algorithm 1 (arXiv 1807.04938), named
//! after the paper's line numbers. Setup: four validators of power 1; the
//! proposer of (h, r) is validator (h + r) mod 4; the core under test is
//! validator 0 unless a test says otherwise. At height 1 the proposers of
//! rounds 0, 1, 2, 3 are validators 1, 2, 3, 0.
#![cfg(not(feature = "mutation-no-lock-rule"))]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gongzhi_consensus::*;

const V: ValueId = ValueId([7; 32]);
const W: ValueId = ValueId([9; 32]);

fn vote_in(core: &mut TestCore, v: SignedVote) -> Vec<Output> {
    core.handle(Input::Vote(v))
}

fn elapse(core: &mut TestCore, kind: TimeoutKind, round: Round) -> Vec<Output> {
    core.handle(Input::TimeoutElapsed {
        kind,
        height: H1,
        round,
    })
}

/// Validator 0 locked on V in round 0 (L36 fired with step = prevote).
fn locked_on_v_in_round_0() -> TestCore {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    assert_eq!(vote_in(&mut c, prevote(R0, Some(V), 1)), vec![]);
    let out = vote_in(&mut c, prevote(R0, Some(V), 2));
    assert_eq!(
        out,
        persist_and_send(precommit(R0, Some(V), 0), lock(R0, V))
    );
    c
}

#[test]
fn l10_start_height_schedules_propose_timeout_when_not_proposer() {
    let (c, out) = started(0);
    assert_eq!(out, vec![timeout(TimeoutKind::Propose, R0, 3000)]);
    assert_eq!((c.round(), c.step()), (Some(R0), Some(Step::Propose)));
}

#[test]
fn l18_proposer_without_valid_value_requests_one() {
    let (_, out) = started(1);
    assert_eq!(
        out,
        vec![
            Output::RequestValue {
                height: H1,
                round: R0
            },
            timeout(TimeoutKind::Propose, R0, 3000)
        ]
    );
}

#[test]
fn l19_value_ready_is_proposed_then_prevoted() {
    let (mut c, _) = started(1);
    let out = c.handle(Input::ValueReady {
        height: H1,
        round: R0,
        value: V,
    });
    let p = proposal(R0, V, None, 1);
    let mut expected = vec![
        Output::PersistSafetyState(SafetyState {
            last_signed: Some(SignedMessage::Proposal(p)),
            lock: None,
        }),
        Output::BroadcastProposal(p),
    ];
    expected.extend(persist_and_send(prevote(R0, Some(V), 1), None));
    assert_eq!(out, expected);
}

#[test]
fn l15_proposer_reproposes_valid_value_with_its_round() {
    let (mut c, _) = started(3);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    vote_in(&mut c, prevote(R0, Some(V), 0));
    let out = vote_in(&mut c, prevote(R0, Some(V), 1));
    assert_eq!(
        out,
        persist_and_send(precommit(R0, Some(V), 3), lock(R0, V))
    );
    assert_eq!(vote_in(&mut c, prevote(R2, None, 0)), vec![]);
    // f+1 in round 2 (L55), where validator 3 proposes validValue (L15-L16, L19),
    // then prevotes it by L28-L30, then 2f+1 prevotes of any kind (L34).
    let out = vote_in(&mut c, prevote(R2, None, 1));
    let p = proposal(R2, V, Some(R0), 3);
    let mut expected = vec![
        Output::PersistSafetyState(SafetyState {
            last_signed: Some(SignedMessage::Proposal(p)),
            lock: lock(R0, V),
        }),
        Output::BroadcastProposal(p),
    ];
    expected.extend(persist_and_send(prevote(R2, Some(V), 3), lock(R0, V)));
    expected.push(timeout(TimeoutKind::Prevote, R2, 2000));
    assert_eq!(out, expected);
}

#[test]
fn l22_prevote_for_valid_proposal_when_unlocked() {
    let (mut c, _) = started(0);
    let out = deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    assert_eq!(out, persist_and_send(prevote(R0, Some(V), 0), None));
    assert_eq!(c.step(), Some(Step::Prevote));
}

#[test]
fn l26_prevote_nil_for_invalid_proposal() {
    let (mut c, _) = started(0);
    let out = deliver_verified(&mut c, proposal(R0, V, None, 1), false);
    assert_eq!(out, persist_and_send(prevote(R0, None, 0), None));
}

#[test]
fn l26_prevote_nil_when_locked_on_another_value() {
    let mut c = locked_on_v_in_round_0();
    vote_in(&mut c, precommit(R0, None, 1));
    let out = vote_in(&mut c, precommit(R0, None, 2));
    assert_eq!(out, vec![timeout(TimeoutKind::Precommit, R0, 1000)]);
    let out = elapse(&mut c, TimeoutKind::Precommit, R0);
    assert_eq!(out, vec![timeout(TimeoutKind::Propose, R1, 3500)]);
    let out = deliver_verified(&mut c, proposal(R1, W, None, 2), true);
    assert_eq!(out, persist_and_send(prevote(R1, None, 0), lock(R0, V)));
}

#[test]
fn l23_prevote_for_locked_value_reproposed_without_pol() {
    let mut c = locked_on_v_in_round_0();
    vote_in(&mut c, prevote(R1, None, 1));
    vote_in(&mut c, prevote(R1, None, 3)); // L55 to round 1
                                           // V is already known valid: no VerifyValue. Our prevote makes 3 (L34).
    let out = c.handle(Input::Proposal(proposal(R1, V, None, 2)));
    let mut expected = persist_and_send(prevote(R1, Some(V), 0), lock(R0, V));
    expected.push(timeout(TimeoutKind::Prevote, R1, 1500));
    assert_eq!(out, expected);
}

/// Locked on V in round 0, then 2f+1 prevotes for W in round 1 and W
/// re-proposed in round 2 with pol_round 1.
#[test]
fn l28_prevote_for_pol_proposal_when_lock_round_not_above_pol_round() {
    let mut c = locked_on_v_in_round_0();
    vote_in(&mut c, precommit(R0, None, 1));
    vote_in(&mut c, precommit(R0, None, 2));
    elapse(&mut c, TimeoutKind::Precommit, R0);
    let out = elapse(&mut c, TimeoutKind::Propose, R1);
    assert_eq!(out, persist_and_send(prevote(R1, None, 0), lock(R0, V)));
    vote_in(&mut c, prevote(R1, Some(W), 1));
    let out = vote_in(&mut c, prevote(R1, Some(W), 2));
    assert_eq!(out, vec![timeout(TimeoutKind::Prevote, R1, 1500)]);
    vote_in(&mut c, prevote(R1, Some(W), 3));
    let out = elapse(&mut c, TimeoutKind::Prevote, R1);
    assert_eq!(out, persist_and_send(precommit(R1, None, 0), lock(R0, V)));
    vote_in(&mut c, precommit(R1, None, 1));
    vote_in(&mut c, precommit(R1, None, 2));
    let out = elapse(&mut c, TimeoutKind::Precommit, R1);
    assert_eq!(out, vec![timeout(TimeoutKind::Propose, R2, 4000)]);
    let out = deliver_verified(&mut c, proposal(R2, W, Some(R1), 3), true);
    assert_eq!(out, persist_and_send(prevote(R2, Some(W), 0), lock(R0, V)));
}

/// Locked on V in round 1, W re-proposed in round 2 with pol_round 0 < 1.
#[test]
fn l32_prevote_nil_for_pol_proposal_when_locked_in_later_round() {
    let (mut c, _) = started(0);
    elapse(&mut c, TimeoutKind::Propose, R0);
    for i in 1..4 {
        vote_in(&mut c, prevote(R0, Some(W), i));
    }
    let out = elapse(&mut c, TimeoutKind::Prevote, R0);
    assert_eq!(out, persist_and_send(precommit(R0, None, 0), None));
    vote_in(&mut c, precommit(R0, None, 1));
    vote_in(&mut c, precommit(R0, None, 2));
    elapse(&mut c, TimeoutKind::Precommit, R0);
    deliver_verified(&mut c, proposal(R1, V, None, 2), true);
    vote_in(&mut c, prevote(R1, Some(V), 1));
    let out = vote_in(&mut c, prevote(R1, Some(V), 2));
    assert_eq!(
        out,
        persist_and_send(precommit(R1, Some(V), 0), lock(R1, V))
    );
    vote_in(&mut c, precommit(R1, None, 1));
    vote_in(&mut c, precommit(R1, None, 2));
    elapse(&mut c, TimeoutKind::Precommit, R1);
    let out = deliver_verified(&mut c, proposal(R2, W, Some(R0), 3), true);
    assert_eq!(out, persist_and_send(prevote(R2, None, 0), lock(R1, V)));
}

#[test]
fn l28_waits_for_pol_quorum_before_prevoting() {
    let (mut c, _) = started(0);
    vote_in(&mut c, prevote(R1, None, 1));
    vote_in(&mut c, prevote(R1, None, 2)); // L55 to round 1
    let out = c.handle(Input::Proposal(proposal(R1, V, Some(R0), 2)));
    assert_eq!(
        out,
        vec![Output::VerifyValue {
            height: H1,
            round: R1,
            value: V
        }]
    );
    assert_eq!(
        c.handle(Input::ValueVerified {
            height: H1,
            value: V,
            valid: true
        }),
        vec![]
    );
    vote_in(&mut c, prevote(R0, Some(V), 1));
    vote_in(&mut c, prevote(R0, Some(V), 2));
    let out = vote_in(&mut c, prevote(R0, Some(V), 3));
    let mut expected = persist_and_send(prevote(R1, Some(V), 0), None);
    expected.push(timeout(TimeoutKind::Prevote, R1, 1500)); // L34: 3 prevotes in round 1
    assert_eq!(out, expected);
}

#[test]
fn l34_any_prevote_quorum_schedules_prevote_timeout_once() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    assert_eq!(vote_in(&mut c, prevote(R0, Some(W), 1)), vec![]);
    let out = vote_in(&mut c, prevote(R0, None, 2));
    assert_eq!(out, vec![timeout(TimeoutKind::Prevote, R0, 1000)]);
    assert_eq!(vote_in(&mut c, prevote(R0, Some(W), 3)), vec![]);
}

#[test]
fn l36_polka_for_valid_value_locks_and_precommits() {
    let c = locked_on_v_in_round_0();
    assert_eq!(c.locked(), Some((R0, V)));
    assert_eq!(c.valid(), Some((R0, V)));
    assert_eq!(c.step(), Some(Step::Precommit));
}

#[test]
fn l42_polka_after_precommit_step_updates_valid_value_only() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    vote_in(&mut c, prevote(R0, Some(V), 1));
    vote_in(&mut c, prevote(R0, None, 2));
    elapse(&mut c, TimeoutKind::Prevote, R0);
    assert_eq!(c.step(), Some(Step::Precommit));
    assert_eq!(vote_in(&mut c, prevote(R0, Some(V), 3)), vec![]);
    assert_eq!(c.valid(), Some((R0, V)));
    assert_eq!(c.locked(), None);
}

#[test]
fn l44_nil_prevote_quorum_precommits_nil() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    vote_in(&mut c, prevote(R0, None, 1));
    vote_in(&mut c, prevote(R0, None, 2));
    let out = vote_in(&mut c, prevote(R0, None, 3));
    assert_eq!(out, persist_and_send(precommit(R0, None, 0), None));
}

#[test]
fn l47_any_precommit_quorum_schedules_precommit_timeout() {
    let mut c = locked_on_v_in_round_0();
    assert_eq!(vote_in(&mut c, precommit(R0, None, 1)), vec![]);
    let out = vote_in(&mut c, precommit(R0, Some(W), 2));
    assert_eq!(out, vec![timeout(TimeoutKind::Precommit, R0, 1000)]);
}

#[test]
fn l49_proposal_and_precommit_quorum_decide_with_certificate() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    vote_in(&mut c, precommit(R0, Some(V), 1));
    vote_in(&mut c, precommit(R0, Some(V), 2));
    let out = vote_in(&mut c, precommit(R0, Some(V), 3));
    let certificate = (1..4).map(|i| precommit(R0, Some(V), i)).collect();
    assert_eq!(
        out,
        vec![Output::Decide {
            height: H1,
            round: R0,
            value: V,
            certificate
        }]
    );
    assert_eq!(c.step(), Some(Step::Commit));
    assert_eq!(vote_in(&mut c, prevote(R0, None, 3)), vec![]);
}

#[test]
fn l49_decides_value_of_an_earlier_round() {
    let mut c = locked_on_v_in_round_0();
    vote_in(&mut c, prevote(R1, None, 2));
    let out = vote_in(&mut c, prevote(R1, None, 3));
    assert_eq!(out, vec![timeout(TimeoutKind::Propose, R1, 3500)]);
    vote_in(&mut c, precommit(R0, Some(V), 1));
    let out = vote_in(&mut c, precommit(R0, Some(V), 2));
    let certificate = (0..3).map(|i| precommit(R0, Some(V), i)).collect();
    assert_eq!(
        out,
        vec![Output::Decide {
            height: H1,
            round: R0,
            value: V,
            certificate
        }]
    );
}

#[test]
fn l49_does_not_decide_an_invalid_value() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), false);
    for i in 1..4 {
        vote_in(&mut c, precommit(R0, Some(V), i));
    }
    assert_ne!(c.step(), Some(Step::Commit));
}

#[test]
fn l55_one_third_plus_messages_of_a_higher_round_start_it() {
    let (mut c, _) = started(0);
    assert_eq!(vote_in(&mut c, prevote(R2, None, 3)), vec![]);
    let out = vote_in(&mut c, precommit(R2, None, 2));
    assert_eq!(out, vec![timeout(TimeoutKind::Propose, R2, 4000)]);
    assert_eq!(c.round(), Some(R2));
}

#[test]
fn l57_propose_timeout_prevotes_nil() {
    let (mut c, _) = started(0);
    let out = elapse(&mut c, TimeoutKind::Propose, R0);
    assert_eq!(out, persist_and_send(prevote(R0, None, 0), None));
    assert_eq!(elapse(&mut c, TimeoutKind::Propose, R0), vec![]);
}

#[test]
fn l61_prevote_timeout_precommits_nil() {
    let (mut c, _) = started(0);
    elapse(&mut c, TimeoutKind::Propose, R0);
    vote_in(&mut c, prevote(R0, Some(V), 1));
    vote_in(&mut c, prevote(R0, None, 2));
    let out = elapse(&mut c, TimeoutKind::Prevote, R0);
    assert_eq!(out, persist_and_send(precommit(R0, None, 0), None));
}

#[test]
fn l65_precommit_timeout_starts_next_round_and_stale_timeouts_are_ignored() {
    let (mut c, _) = started(0);
    let out = elapse(&mut c, TimeoutKind::Precommit, R0);
    assert_eq!(out, vec![timeout(TimeoutKind::Propose, R1, 3500)]);
    assert_eq!(elapse(&mut c, TimeoutKind::Propose, R0), vec![]);
    assert_eq!(elapse(&mut c, TimeoutKind::Precommit, R0), vec![]);
}
