//! Governance: the 2/3 threshold at its boundary, actions applied on passing, and the
//! validator schedule (a change committed in block h is in force from block h+2).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use gongzhi_contracts::call::{Call, CallOutput};
use gongzhi_contracts::governance::proposals::{OrgSpec, ProposalAction, ProposalProgress};
use gongzhi_contracts::governance::{
    OrgKind, OrgStatus, ParameterChange, Purpose, Role, ValidatorSpec,
};
use gongzhi_contracts::{query, validator_set_for_next_block, Page, ProposalId};
use gongzhi_ledger::{Keypair, Outcome, ValidatorId};

fn progress(out: CallOutput) -> ProposalProgress {
    match out {
        CallOutput::Proposal(p) => p,
        other => panic!("unexpected {other:?}"),
    }
}

// Powers: street-a 1, street-b 1, property 1, civil-affairs 3; total 6, so 4 is exactly 2/3.
#[test]
fn exactly_two_thirds_does_not_pass_just_above_does() {
    let mut w = World::new();
    let action = ProposalAction::SuspendOrg(org("police"));
    let p = progress(w.ok("civil-affairs", Call::Propose(action)));
    assert_eq!((p.approved_power, p.total_power, p.passed), (3, 6, false));
    let p = progress(w.ok("street-a", Call::Approve(p.id)));
    assert_eq!(
        (p.approved_power, p.passed),
        (4, false),
        "exactly 2/3 must not pass"
    );
    assert_eq!(
        query::get_org(&w.state, &org("police"))
            .unwrap()
            .unwrap()
            .status,
        OrgStatus::Active
    );
    let p = progress(w.ok("street-b", Call::Approve(p.id)));
    assert_eq!(
        (p.approved_power, p.passed),
        (5, true),
        "5/6 > 2/3 must pass"
    );
    assert_eq!(
        query::get_org(&w.state, &org("police"))
            .unwrap()
            .unwrap()
            .status,
        OrgStatus::Suspended
    );
    let listed = query::list_proposals(&w.state, Page::first(10)).unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items[0].approvals.len(), 3);
}

#[test]
fn small_validators_alone_cannot_pass() {
    let mut w = World::new();
    let p = progress(w.ok(
        "street-a",
        Call::Propose(ProposalAction::SuspendOrg(org("police"))),
    ));
    let p = progress(w.ok("street-b", Call::Approve(p.id)));
    let p = progress(w.ok("property", Call::Approve(p.id)));
    assert_eq!((p.approved_power, p.passed), (3, false));
}

#[test]
fn members_cannot_propose() {
    let mut w = World::new();
    let out = w.fail(
        "health",
        Call::Propose(ProposalAction::SuspendOrg(org("police"))),
    );
    assert_eq!(
        failure_kind(&out),
        Some(gongzhi_contracts::ErrorKind::RoleRequired)
    );
}

#[test]
fn every_action_applies() {
    let mut w = World::new();
    let new_key = Keypair::from_secret([70; 32]);
    w.pass(ProposalAction::AdmitOrg(OrgSpec {
        id: org("newcomer"),
        kind: OrgKind::PropertyManager,
        name: "新物业".into(),
        roles: vec![Role::Member],
        operator_keys: vec![new_key.public()],
        node_keys: Vec::new(),
        validator: None,
        issuer_quota: None,
    }));
    assert_eq!(
        query::org_of_signer(&w.state, &new_key.public()).unwrap(),
        Some(org("newcomer"))
    );
    assert_eq!(query::list_orgs(&w.state).unwrap().len(), ORGS.len() + 1);

    let rotated = Keypair::from_secret([71; 32]);
    w.pass(ProposalAction::RotateKey {
        org: org("newcomer"),
        old: new_key.public(),
        new: rotated.public(),
    });
    assert_eq!(
        query::org_of_signer(&w.state, &new_key.public()).unwrap(),
        None
    );
    assert_eq!(
        query::org_of_signer(&w.state, &rotated.public()).unwrap(),
        Some(org("newcomer"))
    );

    w.pass(ProposalAction::SetRoles {
        org: org("newcomer"),
        roles: vec![Role::Member, Role::Issuer],
    });
    w.pass(ProposalAction::SetIssuerQuota {
        org: org("newcomer"),
        quota: Some(7),
    });
    let o = query::get_org(&w.state, &org("newcomer")).unwrap().unwrap();
    assert_eq!(
        (o.roles, o.issuer_quota),
        (vec![Role::Member, Role::Issuer], Some(7))
    );

    w.pass(ProposalAction::SuspendOrg(org("newcomer")));
    w.pass(ProposalAction::ReinstateOrg(org("newcomer")));
    w.pass(ProposalAction::RemoveOrg(org("newcomer")));
    assert_eq!(
        query::org_of_signer(&w.state, &rotated.public()).unwrap(),
        None
    );
    assert_eq!(
        query::get_org(&w.state, &org("newcomer"))
            .unwrap()
            .unwrap()
            .status,
        OrgStatus::Removed
    );

    w.pass(ProposalAction::SetParameter(
        ParameterChange::DefaultIssuerQuota(5),
    ));
    assert_eq!(query::parameters(&w.state).unwrap().default_issuer_quota, 5);

    w.pass(ProposalAction::SetPurpose(Purpose {
        code: purpose("statistics"),
        label: "社区治理统计".into(),
    }));
    w.pass(ProposalAction::RemovePurpose(purpose("subsidy")));
    let codes: Vec<String> = query::list_purposes(&w.state)
        .unwrap()
        .into_iter()
        .map(|p| p.code.0)
        .collect();
    assert_eq!(codes, ["elderly-care", "emergency", "statistics"]);

    w.pass(ProposalAction::SetReason(
        gongzhi_contracts::governance::Reason {
            code: gongzhi_contracts::ReasonCode("blood-donation".into()),
            label: "无偿献血".into(),
            max_points: 50,
        },
    ));
    w.pass(ProposalAction::RemoveReason(gongzhi_contracts::ReasonCode(
        "garbage-sorting".into(),
    )));
    let reasons: Vec<String> = query::list_reasons(&w.state)
        .unwrap()
        .into_iter()
        .map(|r| r.code.0)
        .collect();
    assert_eq!(reasons, ["blood-donation", "volunteering"]);
}

#[test]
fn validator_change_is_in_force_two_blocks_later() {
    let mut w = World::new();
    let genesis_set = validator_set_for_next_block(&w.state).unwrap();
    assert_eq!(genesis_set, genesis().validator_set().unwrap());
    let new_validator = validator_key(5).public();
    // Propose and approve in separate blocks; the passing approval is in block h.
    let p = progress(w.ok(
        "civil-affairs",
        Call::Propose(ProposalAction::SetValidator {
            org: org("health"),
            validator: Some(ValidatorSpec {
                key: new_validator,
                power: 2,
            }),
        }),
    ));
    w.ok("street-a", Call::Approve(p.id));
    let p = progress(w.ok("street-b", Call::Approve(p.id)));
    assert!(p.passed);
    let h = w.height;
    // State after h: the set for h+1 is still the old one.
    assert_eq!(
        validator_set_for_next_block(&w.state).unwrap(),
        genesis_set,
        "set for h+1"
    );
    w.block(vec![]);
    assert_eq!(w.height, h + 1);
    // State after h+1: the set for h+2 includes the change.
    let set = validator_set_for_next_block(&w.state).unwrap();
    assert_eq!(
        set.get(&ValidatorId(new_validator.0)).map(|v| v.power),
        Some(2),
        "set for h+2"
    );
    w.block(vec![]);
    assert_eq!(validator_set_for_next_block(&w.state).unwrap(), set);
    assert!(query::get_org(&w.state, &org("health"))
        .unwrap()
        .unwrap()
        .has_role(Role::Validator));
    assert_eq!(ProposalId(1), p.id);
}

/// A suspension that passes mid-block bars the organisation from its next tx in that same
/// block, although its earlier tx there succeeded (execution then already held its record).
#[test]
fn a_suspension_passed_mid_block_bars_the_org_from_its_next_tx_there() {
    use gongzhi_contracts::grants::Sensitivity;
    use gongzhi_contracts::ErrorKind;

    let mut w = World::new();
    let proposal = match w.ok(
        "civil-affairs",
        Call::Propose(ProposalAction::SuspendOrg(org("health"))),
    ) {
        CallOutput::Proposal(p) => p,
        other => panic!("unexpected {other:?}"),
    };
    let health = operator_key("health");
    let register = |n: usize| Call::RegisterDataset {
        id: dataset(&format!("health-roll-{n}")),
        name: "Health roll".into(),
        fields: vec![field("district", Sensitivity::Public)],
    };
    let mut passed = false;
    for (n, approver) in ["street-a", "street-b", "property"].into_iter().enumerate() {
        let before = w.next_tx(&health, &register(2 * n));
        let approve = w.next_tx(&operator_key(approver), &Call::Approve(proposal.id));
        let after = w.next_tx(&health, &register(2 * n + 1));
        let outcomes: Vec<Outcome> = w
            .execute(&[before, approve, after])
            .receipts
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(
            failure_kind(&outcomes[0]),
            None,
            "health's tx before the vote"
        );
        passed = match output(&outcomes[1]) {
            CallOutput::Proposal(progress) => progress.passed,
            other => panic!("unexpected {other:?}"),
        };
        let expected = passed.then_some(ErrorKind::OrgNotActive);
        assert_eq!(
            failure_kind(&outcomes[2]),
            expected,
            "health's tx after {approver}'s vote (passed: {passed})"
        );
        if passed {
            break;
        }
    }
    assert!(passed, "the suspension never passed");
}
