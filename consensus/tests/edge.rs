//! The core's edge and lifecycle: signature checks, proposer checks,
//! equivocation evidence, buffering and restart from the safety state.
#![cfg(not(feature = "mutation-no-lock-rule"))]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gongzhi_consensus::*;

const V: ValueId = ValueId([7; 32]);
const W: ValueId = ValueId([9; 32]);

#[test]
fn vote_with_bad_signature_is_dropped() {
    let (mut c, _) = started(0);
    let mut v = prevote(R0, Some(V), 1);
    v.signature.0[40] ^= 1;
    assert_eq!(c.handle(Input::Vote(v)), vec![]);
    assert!(!c.knows_vote(&v));
    let mut forged = prevote(R0, Some(V), 1);
    forged.vote.validator = vid(2); // signed by 1, claims 2
    assert_eq!(c.handle(Input::Vote(forged)), vec![]);
    assert!(!c.knows_vote(&forged));
}

#[test]
fn vote_from_non_member_is_dropped() {
    let (mut c, _) = started(0);
    let v = prevote(R0, Some(V), 9);
    assert_eq!(c.handle(Input::Vote(v)), vec![]);
    assert!(!c.knows_vote(&v));
}

#[test]
fn proposal_from_wrong_proposer_or_with_bad_pol_round_is_dropped() {
    let (mut c, _) = started(0);
    assert_eq!(c.handle(Input::Proposal(proposal(R0, V, None, 2))), vec![]);
    assert_eq!(
        c.handle(Input::Proposal(proposal(R0, V, Some(R0), 1))),
        vec![]
    );
    let mut p = proposal(R0, V, None, 1);
    p.signature.0[63] ^= 1;
    assert_eq!(c.handle(Input::Proposal(p)), vec![]);
}

#[test]
fn double_vote_becomes_evidence_once_and_counts_for_its_own_value_only() {
    let (mut c, _) = started(0);
    let first = prevote(R0, Some(V), 1);
    let second = prevote(R0, Some(W), 1);
    assert_eq!(c.handle(Input::Vote(first)), vec![]);
    assert_eq!(
        c.handle(Input::Vote(second)),
        vec![Output::Evidence(DoubleSignEvidence { first, second })]
    );
    assert_eq!(c.handle(Input::Vote(prevote(R0, None, 1))), vec![]);
    assert_eq!(c.handle(Input::Vote(first)), vec![]);
    assert!(c.knows_vote(&first));
    assert!(c.knows_vote(&second));
}

/// An equivocator's second precommit still completes a commit certificate:
/// 3 of 4 distinct signers for V, whatever else validator 1 signed.
#[test]
fn commit_counts_an_equivocators_vote_for_the_decided_value() {
    let (mut c, _) = started(0);
    c.handle(Input::Vote(precommit(R0, None, 1)));
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    c.handle(Input::Vote(precommit(R0, Some(V), 2)));
    c.handle(Input::Vote(precommit(R0, Some(V), 3)));
    let out = c.handle(Input::Vote(precommit(R0, Some(V), 1)));
    let certificate = (1..4).map(|i| precommit(R0, Some(V), i)).collect();
    assert_eq!(
        out,
        vec![
            Output::Evidence(DoubleSignEvidence {
                first: precommit(R0, None, 1),
                second: precommit(R0, Some(V), 1)
            }),
            Output::Decide {
                height: H1,
                round: R0,
                value: V,
                certificate
            },
        ]
    );
}

#[test]
fn messages_before_start_are_buffered_and_replayed() {
    let mut c = core_for(0, SafetyState::default());
    let v = prevote(R0, Some(V), 1);
    assert_eq!(c.handle(Input::Vote(v)), vec![]);
    assert_eq!(c.buffered_messages(), 1);
    c.handle(Input::StartHeight {
        height: H1,
        validators: four_validators(),
    });
    assert!(c.knows_vote(&v));
    assert_eq!(c.buffered_messages(), 0);
}

#[test]
fn future_height_messages_are_buffered_within_bounds() {
    let (mut c, _) = started(0);
    let mut far = prevote(R0, None, 1);
    far.vote.height = Height(10);
    assert_eq!(c.handle(Input::Vote(far)), vec![]);
    assert_eq!(c.buffered_messages(), 0);
    let mut next = prevote(R0, None, 1);
    next.vote.height = Height(2);
    c.handle(Input::Vote(next));
    assert_eq!(c.buffered_messages(), 1);
}

#[test]
fn far_future_rounds_are_bounded_per_validator() {
    let (mut c, _) = started(0);
    for r in 10..20 {
        c.handle(Input::Vote(prevote(Round(r), None, 1)));
    }
    let limit = config().max_future_rounds_per_validator as u32;
    for r in 10..20 {
        assert_eq!(c.knows_vote(&prevote(Round(r), None, 1)), r < 10 + limit);
    }
}

#[test]
fn heights_only_grow() {
    let (mut c, _) = started(0);
    let out = c.handle(Input::StartHeight {
        height: Height(0),
        validators: four_validators(),
    });
    assert_eq!(out, vec![]);
    assert_eq!(c.height(), Some(H1));
}

#[test]
fn restart_resends_last_vote_and_never_signs_a_conflicting_one() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    let state = *c.safety_state();
    let mut restarted = core_for(0, state);
    let out = restarted.handle(Input::StartHeight {
        height: H1,
        validators: four_validators(),
    });
    assert_eq!(
        out,
        vec![
            Output::BroadcastVote(prevote(R0, Some(V), 0)),
            timeout(TimeoutKind::Propose, R0, 3000)
        ]
    );
    // The propose timeout would prevote nil: the safety module refuses.
    let out = restarted.handle(Input::TimeoutElapsed {
        kind: TimeoutKind::Propose,
        height: H1,
        round: R0,
    });
    assert_eq!(out, vec![]);
    assert_eq!(restarted.safety_state(), &state);
}

#[test]
fn restart_keeps_the_lock() {
    let (mut c, _) = started(0);
    deliver_verified(&mut c, proposal(R0, V, None, 1), true);
    c.handle(Input::Vote(prevote(R0, Some(V), 1)));
    c.handle(Input::Vote(prevote(R0, Some(V), 2)));
    let mut restarted = core_for(0, *c.safety_state());
    restarted.handle(Input::StartHeight {
        height: H1,
        validators: four_validators(),
    });
    assert_eq!(restarted.locked(), Some((R0, V)));
}

#[test]
fn restarted_proposer_reproposes_the_same_value() {
    let (mut c, _) = started(1);
    c.handle(Input::ValueReady {
        height: H1,
        round: R0,
        value: V,
    });
    // Crash after signing the proposal but before the prevote is persisted:
    let p = proposal(R0, V, None, 1);
    let state = SafetyState {
        last_signed: Some(SignedMessage::Proposal(p)),
        lock: None,
    };
    let mut restarted = core_for(1, state);
    let out = restarted.handle(Input::StartHeight {
        height: H1,
        validators: four_validators(),
    });
    let mut expected = vec![Output::BroadcastProposal(p)];
    expected.extend(persist_and_send(prevote(R0, Some(V), 1), None));
    assert_eq!(out, expected);
}

#[test]
fn observer_never_signs() {
    let mut c = core_for(9, SafetyState::default());
    c.handle(Input::StartHeight {
        height: H1,
        validators: four_validators(),
    });
    let out = c.handle(Input::TimeoutElapsed {
        kind: TimeoutKind::Propose,
        height: H1,
        round: R0,
    });
    assert_eq!(out, vec![]);
}
