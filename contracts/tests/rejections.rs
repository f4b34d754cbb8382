//! Table-driven: for every error code, a scenario that triggers it. The table must cover
//! `ErrorKind::ALL` exactly (see `every_error_code_has_a_test`). Every scenario also runs
//! through the harness's check that a failed tx changes nothing but its signer's nonce.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::*;
use gongzhi_contracts::call::Call;
use gongzhi_contracts::governance::proposals::{OrgSpec, ProposalAction};
use gongzhi_contracts::governance::{OrgKind, ParameterChange};
use gongzhi_contracts::grants::datasets::AccessRequestArgs;
use gongzhi_contracts::grants::lifecycle::{Delegation, NewGrant, UseRecord};
use gongzhi_contracts::grants::{GrantTerms, Sensitivity};
use gongzhi_contracts::{ErrorKind, GrantId, ProposalId, ReasonCode, RecordId, RequestId};
use gongzhi_ledger::{Keypair, Outcome, Timestamp};

type Scenario = fn(&mut World) -> Outcome;

fn request(w: &World, fields_: &[&str], purpose_: &str, dataset_: &str) -> Call {
    Call::RequestAccess(AccessRequestArgs {
        dataset: dataset(dataset_),
        fields: fields(fields_),
        purpose: purpose(purpose_),
        valid_from: w.now(),
        valid_until: Timestamp(w.time + DAY),
        justification: "needed for home visits".into(),
    })
}

fn delegation(parent: GrantId, w: &World, fields_: &[&str]) -> Call {
    Call::DelegateGrant(Delegation {
        parent,
        grantee: org("police"),
        fields: fields(fields_),
        purposes: vec![purpose("elderly-care")],
        valid_from: w.now(),
        valid_until: Timestamp(w.time + HOUR),
        max_uses: None,
        delegation_depth: 0,
    })
}

fn award(resident_: u8, reason: &str, points: u64) -> Call {
    Call::Award {
        resident: resident(resident_),
        reason: ReasonCode(reason.into()),
        points,
    }
}

fn record_id(outcome: &Outcome) -> RecordId {
    match output(outcome) {
        gongzhi_contracts::CallOutput::Record(id) => id,
        other => panic!("expected record, got {other:?}"),
    }
}

fn co_approved_terms() -> GrantTerms {
    GrantTerms {
        co_approver: Some(org("street-a")),
        ..Default::default()
    }
}

fn scenarios() -> Vec<(&'static str, ErrorKind, Scenario)> {
    use ErrorKind::*;
    vec![
        // --- tx envelope ---
        ("tx for another chain", WrongChain, |w| {
            let tx = Call::Approve(ProposalId(1)).sign(&operator_key("health"), "other-chain", 1);
            w.block(vec![tx]).pop().unwrap()
        }),
        ("unregistered signer", UnknownSigner, |w| {
            let tx = Call::Approve(ProposalId(1)).sign(&Keypair::from_secret([99; 32]), CHAIN, 1);
            w.block(vec![tx]).pop().unwrap()
        }),
        ("nonce skips ahead", BadNonce, |w| {
            let tx = Call::Approve(ProposalId(1)).sign(&operator_key("health"), CHAIN, 5);
            w.block(vec![tx]).pop().unwrap()
        }),
        ("suspended org signs", OrgNotActive, |w| {
            w.pass(ProposalAction::SuspendOrg(org("health")));
            w.run(
                "health",
                request(w, &["age"], "elderly-care", "elderly-roll"),
            )
        }),
        ("call bytes are garbage", MalformedCall, |w| {
            let tx =
                gongzhi_ledger::Tx::sign(&operator_key("health"), CHAIN, 1, vec![1, 250, 250, 250]);
            w.block(vec![tx]).pop().unwrap()
        }),
        ("auditor registers a dataset", RoleRequired, |w| {
            w.run(
                "auditor",
                Call::RegisterDataset {
                    id: dataset("x"),
                    name: "x".into(),
                    fields: vec![field("a", Sensitivity::Public)],
                },
            )
        }),
        ("dataset id with spaces", InvalidArgument, |w| {
            w.run(
                "health",
                Call::RegisterDataset {
                    id: dataset("Bad Id"),
                    name: "x".into(),
                    fields: vec![field("a", Sensitivity::Public)],
                },
            )
        }),
        // --- governance ---
        ("suspend unknown org", UnknownOrg, |w| {
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::SuspendOrg(org("nobody"))),
            )
        }),
        ("admit an existing id", OrgExists, |w| {
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::AdmitOrg(spec("health", [50; 32]))),
            )
        }),
        ("admit with a taken key", KeyInUse, |w| {
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::AdmitOrg(spec("newcomer", [5; 32]))),
            )
        }),
        (
            "admit with a weak (small-order) key",
            InvalidArgument,
            |w| {
                let mut weak = spec("newcomer", [6; 32]);
                let mut identity = [0u8; 32];
                identity[0] = 1;
                weak.operator_keys = vec![gongzhi_ledger::PublicKey(identity)];
                w.run(
                    "civil-affairs",
                    Call::Propose(ProposalAction::AdmitOrg(weak)),
                )
            },
        ),
        ("approve unknown proposal", UnknownProposal, |w| {
            w.run("street-a", Call::Approve(ProposalId(999)))
        }),
        ("approve a passed proposal", ProposalClosed, |w| {
            w.pass(ProposalAction::SuspendOrg(org("police")));
            w.run("street-b", Call::Approve(ProposalId(1)))
        }),
        ("approve after the deadline", ProposalExpired, |w| {
            w.ok(
                "civil-affairs",
                Call::Propose(ProposalAction::SuspendOrg(org("police"))),
            );
            w.advance(8 * DAY);
            w.run("street-a", Call::Approve(ProposalId(1)))
        }),
        ("proposer approves twice", AlreadyApproved, |w| {
            w.ok(
                "civil-affairs",
                Call::Propose(ProposalAction::SuspendOrg(org("police"))),
            );
            w.run("civil-affairs", Call::Approve(ProposalId(1)))
        }),
        ("reinstate an active org", OrgStatusConflict, |w| {
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::ReinstateOrg(org("police"))),
            )
        }),
        ("drop the last validator", NoValidatorsLeft, |w| {
            for id in ["street-a", "street-b", "property"] {
                w.pass(ProposalAction::SetValidator {
                    org: org(id),
                    validator: None,
                });
            }
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::SetValidator {
                    org: org("civil-affairs"),
                    validator: None,
                }),
            )
        }),
        ("rotate a key the org does not hold", UnknownKey, |w| {
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::RotateKey {
                    org: org("health"),
                    old: Keypair::from_secret([60; 32]).public(),
                    new: Keypair::from_secret([61; 32]).public(),
                }),
            )
        }),
        ("proposal duration of 5 ms", InvalidParameter, |w| {
            w.run(
                "civil-affairs",
                Call::Propose(ProposalAction::SetParameter(
                    ParameterChange::ProposalDurationMs(5),
                )),
            )
        }),
        ("request for an unknown purpose", UnknownPurpose, |w| {
            w.run("health", request(w, &["age"], "astrology", "elderly-roll"))
        }),
        // --- datasets and grants ---
        ("request an unknown dataset", UnknownDataset, |w| {
            w.run("health", request(w, &["age"], "elderly-care", "nope"))
        }),
        ("register a taken dataset id", DatasetExists, |w| {
            w.run(
                "health",
                Call::RegisterDataset {
                    id: dataset("garbage"),
                    name: "x".into(),
                    fields: vec![field("a", Sensitivity::Public)],
                },
            )
        }),
        ("request an unknown field", UnknownField, |w| {
            w.run(
                "health",
                request(w, &["shoe-size"], "elderly-care", "elderly-roll"),
            )
        }),
        ("non-owner issues a grant", NotDatasetOwner, |w| {
            let now = w.time;
            w.run(
                "health",
                Call::IssueGrant(NewGrant {
                    grantee: org("police"),
                    dataset: dataset("elderly-roll"),
                    fields: fields(&["age"]),
                    purposes: vec![purpose("elderly-care")],
                    valid_from: Timestamp(now),
                    valid_until: Timestamp(now + DAY),
                    terms: GrantTerms::default(),
                    parent: None,
                }),
            )
        }),
        ("approve unknown request", UnknownRequest, |w| {
            w.run(
                "civil-affairs",
                Call::ApproveRequest {
                    request: RequestId(999),
                    terms: GrantTerms::default(),
                },
            )
        }),
        ("reject a request twice", RequestNotPending, |w| {
            w.ok(
                "health",
                request(w, &["age"], "elderly-care", "elderly-roll"),
            );
            let reject = Call::RejectRequest {
                request: RequestId(1),
                reason: "no legal basis".into(),
            };
            w.ok("civil-affairs", reject.clone());
            w.run("civil-affairs", reject)
        }),
        ("co-approve unknown grant", UnknownGrant, |w| {
            w.run("street-a", Call::CoApproveGrant(GrantId(999)))
        }),
        ("grant ends before it starts", InvalidPeriod, |w| {
            let now = w.time;
            w.run(
                "civil-affairs",
                Call::IssueGrant(NewGrant {
                    grantee: org("health"),
                    dataset: dataset("elderly-roll"),
                    fields: fields(&["age"]),
                    purposes: vec![purpose("elderly-care")],
                    valid_from: Timestamp(now + DAY),
                    valid_until: Timestamp(now + HOUR),
                    terms: GrantTerms::default(),
                    parent: None,
                }),
            )
        }),
        (
            "personal field without co-approver",
            CoApproverRequired,
            |w| w.issue("health", &["name", "age"], GrantTerms::default()),
        ),
        ("grantee as co-approver", InvalidCoApprover, |w| {
            w.issue(
                "health",
                &["name"],
                GrantTerms {
                    co_approver: Some(org("health")),
                    ..Default::default()
                },
            )
        }),
        ("wrong org co-approves", NotCoApprover, |w| {
            let id = grant_id(w.issue("health", &["name"], co_approved_terms()));
            w.run("police", Call::CoApproveGrant(id))
        }),
        ("co-approve twice", AlreadyCoApproved, |w| {
            let id = grant_id(w.issue("health", &["name"], co_approved_terms()));
            w.ok("street-a", Call::CoApproveGrant(id));
            w.run("street-a", Call::CoApproveGrant(id))
        }),
        ("delegate a depth-0 grant", NotDelegable, |w| {
            let id = w.basic_grant(GrantTerms::default());
            w.run("health", delegation(id, w, &["age"]))
        }),
        (
            "delegate a field the parent lacks",
            DelegationExceedsParent,
            |w| {
                let id = w.basic_grant(GrantTerms {
                    delegation_depth: 1,
                    ..Default::default()
                });
                w.run("health", delegation(id, w, &["age", "subsidy"]))
            },
        ),
        ("someone else records a use", NotGrantee, |w| {
            let id = w.basic_grant(GrantTerms::default());
            w.run(
                "police",
                Call::RecordUse(UseRecord {
                    grant: id,
                    fields: fields(&["age"]),
                    purpose: purpose("elderly-care"),
                    reference: None,
                }),
            )
        }),
        ("grantee revokes", NotGrantor, |w| {
            let id = w.basic_grant(GrantTerms::default());
            w.run(
                "health",
                Call::RevokeGrant {
                    grant: id,
                    reason: "x".into(),
                },
            )
        }),
        ("revoke twice", GrantRevoked, |w| {
            let id = w.basic_grant(GrantTerms::default());
            let revoke = Call::RevokeGrant {
                grant: id,
                reason: "audit finding".into(),
            };
            w.ok("civil-affairs", revoke.clone());
            w.run("civil-affairs", revoke)
        }),
        ("use for an uncovered purpose", UseNotAllowed, |w| {
            let id = w.basic_grant(GrantTerms::default());
            w.run(
                "health",
                Call::RecordUse(UseRecord {
                    grant: id,
                    fields: fields(&["age"]),
                    purpose: purpose("emergency"),
                    reference: None,
                }),
            )
        }),
        ("grant to oneself", InvalidGrantee, |w| {
            w.issue("civil-affairs", &["age"], GrantTerms::default())
        }),
        ("dataset with 65 fields", TooManyFields, |w| {
            let many = (0..65)
                .map(|i| field(&format!("f{i}"), Sensitivity::Public))
                .collect();
            w.run(
                "health",
                Call::RegisterDataset {
                    id: dataset("wide"),
                    name: "wide".into(),
                    fields: many,
                },
            )
        }),
        (
            "delegate while awaiting co-approval",
            GrantNotInForce,
            |w| {
                let id = grant_id(w.issue(
                    "health",
                    &["name"],
                    GrantTerms {
                        co_approver: Some(org("street-a")),
                        delegation_depth: 1,
                        ..Default::default()
                    },
                ));
                w.run("health", delegation(id, w, &["name"]))
            },
        ),
        // --- civility bank ---
        ("award for an unknown reason", UnknownReason, |w| {
            w.run("street-a", award(1, "napping", 1))
        }),
        ("award zero points", PointsOutOfRange, |w| {
            w.run("street-a", award(1, "volunteering", 0))
        }),
        ("award beyond the period quota", QuotaExceeded, |w| {
            w.ok("street-a", award(1, "volunteering", 20));
            w.ok("street-a", award(2, "volunteering", 20));
            w.run("street-a", award(3, "volunteering", 20))
        }),
        ("redeem from an empty balance", InsufficientBalance, |w| {
            w.run(
                "service-point",
                Call::Redeem {
                    resident: resident(1),
                    points: 5,
                    item: "rice".into(),
                },
            )
        }),
        ("reverse an unknown record", UnknownRecord, |w| {
            w.run(
                "street-a",
                Call::Reverse {
                    record: RecordId(999),
                    why: "x".into(),
                },
            )
        }),
        ("reverse a redemption", NotAnAward, |w| {
            w.ok("street-a", award(1, "volunteering", 10));
            let redemption = w.run(
                "service-point",
                Call::Redeem {
                    resident: resident(1),
                    points: 5,
                    item: "rice".into(),
                },
            );
            w.run(
                "street-a",
                Call::Reverse {
                    record: record_id(&redemption),
                    why: "x".into(),
                },
            )
        }),
        ("another issuer reverses", NotOriginalIssuer, |w| {
            let a = w.run("street-a", award(1, "volunteering", 10));
            w.run(
                "civil-affairs",
                Call::Reverse {
                    record: record_id(&a),
                    why: "x".into(),
                },
            )
        }),
        ("reverse twice", AlreadyReversed, |w| {
            let a = w.run("street-a", award(1, "volunteering", 10));
            let reverse = Call::Reverse {
                record: record_id(&a),
                why: "recorded twice by mistake".into(),
            };
            w.ok("street-a", reverse.clone());
            w.run("street-a", reverse)
        }),
        (
            "reverse after the points were spent",
            ReversalExceedsBalance,
            |w| {
                let a = w.run("street-a", award(1, "volunteering", 10));
                w.ok(
                    "service-point",
                    Call::Redeem {
                        resident: resident(1),
                        points: 5,
                        item: "rice".into(),
                    },
                );
                w.run(
                    "street-a",
                    Call::Reverse {
                        record: record_id(&a),
                        why: "x".into(),
                    },
                )
            },
        ),
    ]
}

fn spec(id: &str, seed: [u8; 32]) -> OrgSpec {
    OrgSpec {
        id: org(id),
        kind: OrgKind::CityDepartment,
        name: "Newcomer".into(),
        roles: vec![gongzhi_contracts::governance::Role::Member],
        operator_keys: vec![Keypair::from_secret(seed).public()],
        node_keys: Vec::new(),
        validator: None,
        issuer_quota: None,
    }
}

#[test]
fn every_rejection_has_its_code_name_and_message() {
    for (name, kind, scenario) in scenarios() {
        let mut world = World::new();
        let outcome = scenario(&mut world);
        match &outcome {
            Outcome::Failure {
                code,
                name: got,
                message,
            } => {
                assert_eq!(
                    (*code, got.as_str()),
                    (kind.code(), kind.name()),
                    "scenario {name:?}: expected {kind}, got {got}: {message}"
                );
                assert!(
                    message.len() > 10,
                    "scenario {name:?}: message too short: {message:?}"
                );
            }
            Outcome::Success { .. } => panic!("scenario {name:?} succeeded; expected {kind}"),
        }
    }
}

#[test]
fn every_error_code_has_a_test() {
    let tested: BTreeSet<ErrorKind> = scenarios().iter().map(|(_, kind, _)| *kind).collect();
    let missing: Vec<&ErrorKind> = ErrorKind::ALL
        .iter()
        .filter(|k| !tested.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "error codes without a rejection test: {missing:?}"
    );
}

#[test]
fn error_codes_and_names_are_unique_and_stable() {
    let codes: BTreeSet<u32> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    let names: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
    assert_eq!(names.len(), ErrorKind::ALL.len());
    // Golden values: these must never change.
    assert_eq!(ErrorKind::BadNonce.code(), 102);
    assert_eq!(ErrorKind::MalformedCall.name(), "MALFORMED_CALL");
    assert_eq!(ErrorKind::ReversalExceedsBalance.code(), 408);
    for kind in ErrorKind::ALL {
        assert!(kind
            .name()
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_'));
    }
}
