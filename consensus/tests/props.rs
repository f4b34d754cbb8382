//! Property tests of the vote keeper and the safety module.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use gongzhi_consensus::*;
use proptest::prelude::*;

fn arb_vote() -> impl Strategy<Value = (Vote, u64)> {
    (
        any::<bool>(),
        0u32..3,
        proptest::option::of(0u8..3),
        0usize..5,
        1u64..10,
    )
        .prop_map(|(pc, r, v, who, power)| {
            let kind = if pc {
                VoteKind::Precommit
            } else {
                VoteKind::Prevote
            };
            let vote = Vote {
                kind,
                height: H1,
                round: Round(r),
                value: v.map(value),
                validator: vid(who),
            };
            (vote, power)
        })
}

fn sign(vote: Vote) -> SignedVote {
    SignedVote {
        vote,
        signature: TestKey(vote.validator).sign(VOTE_SIGN_TAG, &vote.sign_bytes()),
    }
}

proptest! {
    /// Per (round, kind): the any-total counts each signer once (first vote);
    /// each value counts each signer once, for up to MAX_VALUES_PER_SIGNER
    /// distinct values; the first conflict per (signer, round, kind) is
    /// reported exactly once.
    #[test]
    fn vote_keeper_counts_signers_once_and_reports_each_equivocation_once(
        votes in proptest::collection::vec(arb_vote(), 0..60)
    ) {
        use gongzhi_consensus::vote_keeper::MAX_VALUES_PER_SIGNER;
        let power_of = |who: ValidatorId| u64::from(who.0[0]);
        let mut keeper = VoteKeeper::new();
        let mut kept: BTreeMap<(ValidatorId, Round, VoteKind), Vec<Vote>> = BTreeMap::new();
        let mut reported = BTreeMap::new();
        for (vote, _) in votes {
            let key = (vote.validator, vote.round, vote.kind);
            let outcome = keeper.add_vote(sign(vote), power_of(vote.validator));
            match kept.get_mut(&key) {
                None => {
                    prop_assert_eq!(outcome, AddVoteOutcome::Added);
                    kept.insert(key, vec![vote]);
                }
                Some(list) if list.contains(&vote) => prop_assert_eq!(outcome, AddVoteOutcome::Duplicate),
                Some(list) => {
                    let first = list[0];
                    if list.len() < MAX_VALUES_PER_SIGNER {
                        list.push(vote);
                    }
                    if reported.insert(key, ()).is_none() {
                        prop_assert_eq!(outcome, AddVoteOutcome::Equivocation(Box::new(DoubleSignEvidence {
                            first: sign(first), second: sign(vote) })));
                    } else {
                        prop_assert_eq!(outcome, AddVoteOutcome::EquivocationAlreadyReported);
                    }
                }
            }
        }
        for r in 0..3 {
            for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                let in_round = |(k, _): &(&(ValidatorId, Round, VoteKind), &Vec<Vote>)| k.1 == Round(r) && k.2 == kind;
                let any: u64 = kept.iter().filter(in_round).map(|(k, _)| power_of(k.0)).sum();
                prop_assert_eq!(keeper.power_any(Round(r), kind), any);
                for v in [None, Some(value(0)), Some(value(1)), Some(value(2))] {
                    let signers: Vec<_> = kept.iter().filter(in_round)
                        .filter(|(_, list)| list.iter().any(|x| x.value == v)).map(|(k, _)| k.0).collect();
                    prop_assert_eq!(keeper.power_for(Round(r), kind, v), signers.iter().map(|w| power_of(*w)).sum::<u64>());
                    prop_assert_eq!(keeper.votes_for(Round(r), kind, v).len(), signers.len());
                }
            }
        }
    }

    /// Whatever sequence of signing requests, the safety module never signs two
    /// different messages at one (height, round, step), positions only grow,
    /// and a module restarted from any returned state keeps both properties.
    #[test]
    fn safety_module_never_signs_conflicting_messages(
        requests in proptest::collection::vec(
            (0u64..3, 0u32..3, 0u8..3, proptest::option::of(0u8..2), any::<bool>()), 1..80)
    ) {
        let me = vid(0);
        let mut module = SafetyModule::new(me, TestKey(me), SafetyState::default());
        let mut signed: BTreeMap<(Height, Round, Step), SignedMessage> = BTreeMap::new();
        let mut last: Option<(Height, Round, Step)> = None;
        for (h, r, step, v, restart) in requests {
            if restart {
                module = SafetyModule::new(me, TestKey(me), *module.state());
            }
            let (height, round) = (Height(h), Round(r));
            let result = match step {
                0 => module.sign_proposal(Proposal { height, round, value: value(v.unwrap_or(0)),
                        pol_round: None, proposer: me })
                    .map(|s| (SignedMessage::Proposal(s.message), s.new_state)),
                k => {
                    let kind = if k == 1 { VoteKind::Prevote } else { VoteKind::Precommit };
                    module.sign_vote(Vote { kind, height, round, value: v.map(value), validator: me })
                        .map(|s| (SignedMessage::Vote(s.message), s.new_state))
                }
            };
            if let Ok((message, new_state)) = result {
                let position = (message.height(), message.round(), message.step());
                if let Some(previous) = signed.get(&position) {
                    prop_assert_eq!(previous, &message);
                    prop_assert!(new_state.is_none());
                } else {
                    prop_assert!(last.is_none_or(|l| position > l));
                    prop_assert_eq!(new_state.unwrap().last_signed, Some(message));
                    signed.insert(position, message);
                    last = Some(position);
                }
                if let SignedMessage::Vote(sv) = message {
                    if sv.vote.kind == VoteKind::Precommit && sv.vote.value.is_some() && new_state.is_some() {
                        prop_assert_eq!(module.state().lock.map(|l| l.value), sv.vote.value);
                    }
                }
            }
        }
    }
}

#[test]
fn safety_module_refuses_other_keys() {
    let mut module = SafetyModule::new(vid(0), TestKey(vid(0)), SafetyState::default());
    let vote = Vote {
        kind: VoteKind::Prevote,
        height: H1,
        round: R0,
        value: None,
        validator: vid(1),
    };
    assert!(matches!(
        module.sign_vote(vote),
        Err(ConsensusError::WrongSigner { .. })
    ));
}
