//! The decision function: one scenario per deny reason, the allow path, and the choice of the
//! closest grant.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::*;
use gongzhi_contracts::call::Call;
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::grants::GrantTerms;
use gongzhi_contracts::{check, Decision, DenyReason};
use gongzhi_ledger::Timestamp;

/// (scenario, expected reason, setup returning (grantee, dataset, fields, purpose, time)).
type Setup = fn(
    &mut World,
) -> (
    &'static str,
    &'static str,
    Vec<&'static str>,
    &'static str,
    Timestamp,
);

fn scenarios() -> Vec<(&'static str, DenyReason, Setup)> {
    use DenyReason::*;
    vec![
        ("unknown grantee", UnknownGrantee, |w| {
            (
                "ghost",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                w.now(),
            )
        }),
        ("suspended grantee", GranteeSuspended, |w| {
            w.basic_grant(GrantTerms::default());
            w.pass(ProposalAction::SuspendOrg(org("health")));
            (
                "health",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                w.now(),
            )
        }),
        ("removed grantee", GranteeRemoved, |w| {
            w.pass(ProposalAction::RemoveOrg(org("health")));
            (
                "health",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                w.now(),
            )
        }),
        ("purpose not in taxonomy", UnknownPurpose, |w| {
            ("health", "elderly-roll", vec!["age"], "astrology", w.now())
        }),
        ("unknown dataset", UnknownDataset, |w| {
            ("health", "nope", vec!["age"], "elderly-care", w.now())
        }),
        ("unknown field", UnknownField, |w| {
            w.basic_grant(GrantTerms::default());
            (
                "health",
                "elderly-roll",
                vec!["age", "shoe-size"],
                "elderly-care",
                w.now(),
            )
        }),
        ("no fields", NoFieldsRequested, |w| {
            ("health", "elderly-roll", vec![], "elderly-care", w.now())
        }),
        ("no grant", NoGrant, |w| {
            (
                "police",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                w.now(),
            )
        }),
        ("revoked", Revoked, |w| {
            let id = w.basic_grant(GrantTerms::default());
            w.ok(
                "civil-affairs",
                Call::RevokeGrant {
                    grant: id,
                    reason: "done".into(),
                },
            );
            (
                "health",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                w.now(),
            )
        }),
        ("purpose not covered", PurposeNotCovered, |w| {
            w.basic_grant(GrantTerms::default());
            ("health", "elderly-roll", vec!["age"], "emergency", w.now())
        }),
        ("field not covered", FieldNotCovered, |w| {
            w.basic_grant(GrantTerms::default());
            (
                "health",
                "elderly-roll",
                vec!["age", "subsidy"],
                "elderly-care",
                w.now(),
            )
        }),
        ("awaiting co-approval", AwaitingCoApproval, |w| {
            w.issue(
                "health",
                &["subsidy"],
                GrantTerms {
                    co_approver: Some(org("street-a")),
                    ..Default::default()
                },
            );
            (
                "health",
                "elderly-roll",
                vec!["subsidy"],
                "elderly-care",
                w.now(),
            )
        }),
        ("not yet valid", NotYetValid, |w| {
            w.basic_grant(GrantTerms::default());
            (
                "health",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                Timestamp(T0),
            )
        }),
        ("expired", Expired, |w| {
            w.basic_grant(GrantTerms::default());
            (
                "health",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                Timestamp(w.time + 2 * DAY),
            )
        }),
        ("uses exhausted", UsesExhausted, |w| {
            let id = w.basic_grant(GrantTerms {
                max_uses: Some(1),
                ..Default::default()
            });
            w.ok(
                "health",
                Call::RecordUse(gongzhi_contracts::grants::lifecycle::UseRecord {
                    grant: id,
                    fields: fields(&["age"]),
                    purpose: purpose("elderly-care"),
                    reference: None,
                }),
            );
            (
                "health",
                "elderly-roll",
                vec!["age"],
                "elderly-care",
                w.now(),
            )
        }),
    ]
}

#[test]
fn every_deny_reason() {
    for (name, reason, setup) in scenarios() {
        let mut w = World::new();
        let (grantee, ds, f, p, time) = setup(&mut w);
        let decision = check(&w.state, &org(grantee), &dataset(ds), &f, &purpose(p), time).unwrap();
        match decision {
            Decision::Deny(denial) => {
                assert_eq!(denial.reason, reason, "{name}: {}", denial.explanation);
                assert!(denial.explanation.len() > 10, "{name}");
            }
            Decision::Allow { .. } => panic!("{name}: allowed, expected {reason}"),
        }
    }
    let tested: BTreeSet<DenyReason> = scenarios().iter().map(|s| s.1).collect();
    let missing: Vec<_> = DenyReason::ALL
        .iter()
        .filter(|r| !tested.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "deny reasons without a test: {missing:?}"
    );
}

#[test]
fn allow_names_every_covering_grant_and_deny_picks_the_closest() {
    let mut w = World::new();
    let a = w.basic_grant(GrantTerms::default());
    let b = grant_id(w.issue("health", &["age"], GrantTerms::default()));
    let d = check(
        &w.state,
        &org("health"),
        &dataset("elderly-roll"),
        &["age"],
        &purpose("elderly-care"),
        w.now(),
    )
    .unwrap();
    assert_eq!(d, Decision::Allow { grants: vec![a, b] });
    // Only `a` covers district: it alone allows.
    let d = check(
        &w.state,
        &org("health"),
        &dataset("elderly-roll"),
        &["district"],
        &purpose("elderly-care"),
        w.now(),
    )
    .unwrap();
    assert_eq!(d, Decision::Allow { grants: vec![a] });
    // After expiry, both fail with Expired (closer than field-not-covered): lowest id reported.
    let later = Timestamp(w.time + 2 * DAY);
    let d = check(
        &w.state,
        &org("health"),
        &dataset("elderly-roll"),
        &["age"],
        &purpose("elderly-care"),
        later,
    )
    .unwrap();
    match d {
        Decision::Deny(denial) => assert_eq!(
            (denial.reason, denial.grant),
            (DenyReason::Expired, Some(a))
        ),
        other => panic!("{other:?}"),
    }
    // A revoked grant (far) loses to an expired one (close).
    w.ok(
        "civil-affairs",
        Call::RevokeGrant {
            grant: a,
            reason: "x".into(),
        },
    );
    let d = check(
        &w.state,
        &org("health"),
        &dataset("elderly-roll"),
        &["age"],
        &purpose("elderly-care"),
        later,
    )
    .unwrap();
    match d {
        Decision::Deny(denial) => assert_eq!(
            (denial.reason, denial.grant),
            (DenyReason::Expired, Some(b))
        ),
        other => panic!("{other:?}"),
    }
}
