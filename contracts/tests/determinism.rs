//! Property tests: random sequences of valid and invalid txs
//! - executed on two independent states give identical receipts and state changes;
//! - each failed tx changes nothing but its signer's nonce (nothing at all for a wrong chain,
//!   unknown signer or bad nonce) — asserted by `World::block` on one-tx blocks;
//! - a [`CheckIndex`] kept up to date with each block's changes equals the index rebuilt from
//!   the new state and answers every check as `check` over the state does.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use gongzhi_contracts::call::Call;
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::grants::datasets::AccessRequestArgs;
use gongzhi_contracts::grants::lifecycle::{Delegation, NewGrant, UseRecord};
use gongzhi_contracts::grants::GrantTerms;
use gongzhi_contracts::{
    check, execute_block, BlockContext, CheckIndex, GrantId, ProposalId, ReasonCode, RecordId,
    RequestId,
};
use gongzhi_ledger::{Keypair, Timestamp, Tx};
use proptest::prelude::*;

const FIELDS: [&str; 5] = ["name", "age", "district", "subsidy", "household"];

/// (signer, call kind, a, b, c, envelope mutation)
type Op = (usize, u8, u8, u8, u8, u8);

fn call_for(op: &Op, now: u64) -> Option<Call> {
    let (_, kind, a, b, c, _) = *op;
    let org_at = |i: u8| org(ORGS[i as usize % ORGS.len()].0);
    let pick_fields = |mask: u8| -> Vec<String> {
        FIELDS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, f)| f.to_string())
            .collect()
    };
    let purposes = ["elderly-care", "emergency", "astrology"];
    let grant = GrantId(u64::from(a % 8) + 1);
    Some(match kind % 13 {
        0 => Call::Award {
            resident: resident(a % 4),
            reason: ReasonCode(["volunteering", "garbage-sorting", "nope"][b as usize % 3].into()),
            points: u64::from(c % 25),
        },
        1 => Call::Redeem {
            resident: resident(a % 4),
            points: u64::from(b % 30),
            item: "rice".into(),
        },
        2 => Call::Reverse {
            record: RecordId(u64::from(a % 10) + 1),
            why: "mistake".into(),
        },
        3 => Call::IssueGrant(NewGrant {
            grantee: org_at(a),
            dataset: dataset(if c & 1 == 0 {
                "elderly-roll"
            } else {
                "garbage"
            }),
            fields: pick_fields(b),
            purposes: vec![purpose(purposes[(c as usize >> 1) % 3])],
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + u64::from(c) * 1000),
            terms: GrantTerms {
                max_uses: (b & 0x80 != 0).then_some(u64::from(c % 4)),
                delegation_depth: a % 3,
                co_approver: (b & 0x40 != 0).then(|| org("street-a")),
                consent_hash: None,
            },
            parent: None,
        }),
        4 => Call::CoApproveGrant(grant),
        5 => Call::DelegateGrant(Delegation {
            parent: grant,
            grantee: org_at(b),
            fields: pick_fields(c),
            purposes: vec![purpose("elderly-care")],
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + 60_000),
            max_uses: None,
            delegation_depth: 0,
        }),
        6 => Call::RevokeGrant {
            grant,
            reason: "test".into(),
        },
        7 => Call::RecordUse(UseRecord {
            grant,
            fields: pick_fields(b),
            purpose: purpose(purposes[c as usize % 3]),
            reference: None,
        }),
        8 => Call::RequestAccess(AccessRequestArgs {
            dataset: dataset(if c & 1 == 0 {
                "elderly-roll"
            } else {
                "garbage"
            }),
            fields: pick_fields(b),
            purpose: purpose(purposes[(c as usize >> 1) % 3]),
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + 3_600_000),
            justification: "needed".into(),
        }),
        9 => Call::ApproveRequest {
            request: RequestId(u64::from(a % 4) + 1),
            terms: GrantTerms {
                co_approver: (b & 1 == 0).then(|| org("street-b")),
                ..Default::default()
            },
        },
        10 => Call::Propose(if b & 1 == 0 {
            ProposalAction::SuspendOrg(org_at(a))
        } else {
            ProposalAction::ReinstateOrg(org_at(a))
        }),
        11 => Call::Approve(ProposalId(u64::from(a % 4) + 1)),
        _ => return None,
    })
}

fn make_tx(w: &mut World, op: &Op) -> Tx {
    let (signer, _, _, _, _, mutation) = *op;
    let key = operator_key(ORGS[signer % ORGS.len()].0);
    let call_bytes = match call_for(op, w.time) {
        Some(call) => gongzhi_ledger::Canonical::encode(&call),
        None => vec![1, 0xff, 0xfe],
    };
    match mutation % 16 {
        0 => Tx::sign(&key, "other-chain", 1, call_bytes),
        1 => Tx::sign(&key, CHAIN, 1_000, call_bytes),
        2 => Tx::sign(&Keypair::from_secret([200; 32]), CHAIN, 1, call_bytes),
        _ => {
            let nonce = w.next_tx(&key, &Call::Approve(ProposalId(0))).body.nonce;
            Tx::sign(&key, CHAIN, nonce, call_bytes)
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    (
        0usize..8,
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
    )
}

/// The index follows the state, and answers a spread of requests as `check` does.
fn assert_index_follows(index: &CheckIndex, w: &World) {
    let rebuilt = CheckIndex::build(&w.state).unwrap();
    assert_eq!(index, &rebuilt);
    let scanned = CheckIndex::from_entries(w.state.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
    assert_eq!(index, &scanned);
    let field_sets: [&[&str]; 4] = [&["age"], &["name", "age"], &["household"], &["district"]];
    for (grantee, ..) in ORGS {
        for ds in ["elderly-roll", "garbage"] {
            for fields in field_sets {
                for p in ["elderly-care", "emergency"] {
                    for t in [w.time, w.time + 30_000] {
                        let args = (
                            &org(grantee),
                            &dataset(ds),
                            fields,
                            &purpose(p),
                            Timestamp(t),
                        );
                        let want = check(&w.state, args.0, args.1, args.2, args.3, args.4).unwrap();
                        let got = index.check(args.0, args.1, args.2, args.3, args.4).unwrap();
                        assert_eq!(want, got);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn two_independent_states_agree(blocks in prop::collection::vec(prop::collection::vec(op(), 0..12), 1..10)) {
        let mut left = World::new();
        let mut right = World::new();
        let mut index = CheckIndex::build(&left.state).unwrap();
        for ops in &blocks {
            let txs: Vec<Tx> = ops.iter().map(|op| make_tx(&mut left, op)).collect();
            let txs_right: Vec<Tx> = ops.iter().map(|op| make_tx(&mut right, op)).collect();
            prop_assert_eq!(&txs, &txs_right);
            left.height += 1;
            left.time += 1000;
            let ctx = BlockContext { chain_id: CHAIN.into(), height: left.height, time: Timestamp(left.time) };
            let a = execute_block(&left.state, &ctx, &txs).unwrap();
            let b = execute_block(&right.state, &ctx, &txs).unwrap();
            prop_assert_eq!(&a, &b);
            gongzhi_ledger::state::apply_changes(&mut left.state, &a.changes);
            index.apply(&a.changes).unwrap();
            assert_index_follows(&index, &left);
            gongzhi_ledger::state::apply_changes(&mut right.state, &b.changes);
            right.height = left.height;
            right.time = left.time;
            // Keep both nonce books in line with what the chain accepted.
            left.block(vec![]);
            right.block(vec![]);
            // Exactly the mutated envelopes are refused before the nonce.
            for (op, r) in ops.iter().zip(&a.receipts) {
                let refused = matches!(&r.outcome,
                    gongzhi_ledger::Outcome::Failure { code, .. } if [100, 101, 102].contains(code));
                prop_assert_eq!(refused, op.5 % 16 < 3, "{:?}", r.outcome);
            }
        }
        prop_assert_eq!(left.state, right.state);
    }

    #[test]
    fn failed_txs_change_only_the_nonce(ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in &ops {
            let tx = make_tx(&mut w, op);
            // `World::block` asserts the rule for one-tx blocks.
            w.block(vec![tx]);
        }
    }
}
