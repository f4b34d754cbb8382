//! Happy paths of the grant and civility calls, with the state they leave.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use gongzhi_contracts::call::{Call, CallOutput};
use gongzhi_contracts::civility::RecordKind;
use gongzhi_contracts::grants::datasets::AccessRequestArgs;
use gongzhi_contracts::grants::lifecycle::{Delegation, UseRecord};
use gongzhi_contracts::grants::{GrantTerms, RequestStatus};
use gongzhi_contracts::{
    check, query, Decision, DenyReason, GrantId, Page, ReasonCode, RecordId, RequestId,
};
use gongzhi_ledger::{Hash, Timestamp};

#[test]
fn request_approve_co_approve_then_check_allows() {
    let mut w = World::new();
    let now = w.time;
    let out = w.ok(
        "health",
        Call::RequestAccess(AccessRequestArgs {
            dataset: dataset("elderly-roll"),
            fields: fields(&["name", "age"]),
            purpose: purpose("elderly-care"),
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + 30 * DAY),
            justification: "home visits to residents over 80".into(),
        }),
    );
    assert_eq!(out, CallOutput::Request(RequestId(1)));
    let pending =
        query::requests_by_dataset(&w.state, &dataset("elderly-roll"), Page::first(10)).unwrap();
    assert_eq!(pending.items[0].status, RequestStatus::Pending);
    let consent = Hash([7; 32]);
    let out = w.ok(
        "civil-affairs",
        Call::ApproveRequest {
            request: RequestId(1),
            terms: GrantTerms {
                max_uses: Some(2),
                delegation_depth: 1,
                co_approver: Some(org("street-a")),
                consent_hash: Some(consent),
            },
        },
    );
    let CallOutput::Grant(id) = out else { panic!() };
    assert_eq!(
        query::get_request(&w.state, RequestId(1))
            .unwrap()
            .unwrap()
            .status,
        RequestStatus::Approved(id)
    );
    let decide = |w: &World| {
        check(
            &w.state,
            &org("health"),
            &dataset("elderly-roll"),
            &["age", "name"],
            &purpose("elderly-care"),
            w.now(),
        )
        .unwrap()
    };
    assert_eq!(
        decide(&w).deny_reason(),
        Some(DenyReason::AwaitingCoApproval)
    );
    w.ok("street-a", Call::CoApproveGrant(id));
    assert_eq!(decide(&w), Decision::Allow { grants: vec![id] });
    let grant = query::get_grant(&w.state, id).unwrap().unwrap();
    assert_eq!(
        (grant.consent_hash, grant.grantor.as_str()),
        (Some(consent), "civil-affairs")
    );
    for page in [
        query::grants_by_grantee(&w.state, &org("health"), Page::first(10)).unwrap(),
        query::grants_by_grantor(&w.state, &org("civil-affairs"), Page::first(10)).unwrap(),
        query::grants_by_dataset(&w.state, &dataset("elderly-roll"), Page::first(10)).unwrap(),
    ] {
        assert_eq!((page.total, page.items[0].id), (1, id));
    }
    // Two uses allowed, then exhausted.
    let use_call = Call::RecordUse(UseRecord {
        grant: id,
        fields: fields(&["age"]),
        purpose: purpose("elderly-care"),
        reference: None,
    });
    assert_eq!(w.ok("health", use_call.clone()), CallOutput::Uses(1));
    assert_eq!(w.ok("health", use_call.clone()), CallOutput::Uses(2));
    assert_eq!(decide(&w).deny_reason(), Some(DenyReason::UsesExhausted));
    w.fail("health", use_call);
}

#[test]
fn reject_request_records_the_reason() {
    let mut w = World::new();
    let now = w.time;
    w.ok(
        "police",
        Call::RequestAccess(AccessRequestArgs {
            dataset: dataset("garbage"),
            fields: fields(&["household"]),
            purpose: purpose("emergency"),
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + DAY),
            justification: "incident".into(),
        }),
    );
    w.ok(
        "street-a",
        Call::RejectRequest {
            request: RequestId(1),
            reason: "no legal basis".into(),
        },
    );
    assert_eq!(
        query::get_request(&w.state, RequestId(1))
            .unwrap()
            .unwrap()
            .status,
        RequestStatus::Rejected("no legal basis".into())
    );
}

#[test]
fn delegation_within_bounds_and_cascading_revocation() {
    let mut w = World::new();
    let parent = w.basic_grant(GrantTerms {
        max_uses: Some(3),
        delegation_depth: 2,
        ..Default::default()
    });
    let now = w.time;
    let child = w.ok(
        "health",
        Call::DelegateGrant(Delegation {
            parent,
            grantee: org("police"),
            fields: fields(&["age"]),
            purposes: vec![purpose("elderly-care")],
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + HOUR),
            max_uses: None,
            delegation_depth: 1,
        }),
    );
    let CallOutput::Grant(child) = child else {
        panic!()
    };
    let grandchild = w.ok(
        "police",
        Call::DelegateGrant(Delegation {
            parent: child,
            grantee: org("street-b"),
            fields: fields(&["age"]),
            purposes: vec![purpose("elderly-care")],
            valid_from: Timestamp(now),
            valid_until: Timestamp(now + HOUR),
            max_uses: None,
            delegation_depth: 0,
        }),
    );
    let CallOutput::Grant(grandchild) = grandchild else {
        panic!()
    };
    // Uses of the grandchild count on every ancestor.
    let use_by = |g: GrantId| {
        Call::RecordUse(UseRecord {
            grant: g,
            fields: fields(&["age"]),
            purpose: purpose("elderly-care"),
            reference: Some(Hash([1; 32])),
        })
    };
    w.ok("street-b", use_by(grandchild));
    w.ok("police", use_by(child));
    w.ok("health", use_by(parent));
    assert_eq!(query::get_grant(&w.state, parent).unwrap().unwrap().uses, 3);
    let d = check(
        &w.state,
        &org("street-b"),
        &dataset("elderly-roll"),
        &["age"],
        &purpose("elderly-care"),
        w.now(),
    )
    .unwrap();
    match d {
        Decision::Deny(denial) => {
            assert_eq!(
                (denial.reason, denial.grant),
                (DenyReason::UsesExhausted, Some(parent))
            );
        }
        other => panic!("{other:?}"),
    }
    w.fail("street-b", use_by(grandchild));
    // Revoking the root revokes the whole tree.
    assert_eq!(
        w.ok(
            "civil-affairs",
            Call::RevokeGrant {
                grant: parent,
                reason: "audit finding".into()
            }
        ),
        CallOutput::Revoked(3)
    );
    let g = query::get_grant(&w.state, grandchild).unwrap().unwrap();
    assert_eq!(g.revoked.unwrap().cascaded_from, Some(parent));
    let d = check(
        &w.state,
        &org("police"),
        &dataset("elderly-roll"),
        &["age"],
        &purpose("elderly-care"),
        w.now(),
    )
    .unwrap();
    assert_eq!(d.deny_reason(), Some(DenyReason::Revoked));
}

#[test]
fn civility_award_redeem_reverse_and_history() {
    let mut w = World::new();
    let r = resident(9);
    let award = |points| Call::Award {
        resident: r,
        reason: ReasonCode("volunteering".into()),
        points,
    };
    let CallOutput::Record(first) = w.ok("street-a", award(10)) else {
        panic!()
    };
    w.ok("civil-affairs", award(15));
    w.ok(
        "service-point",
        Call::Redeem {
            resident: r,
            points: 12,
            item: "大米 5kg".into(),
        },
    );
    assert_eq!(query::balance(&w.state, &r).unwrap(), 13);
    w.ok(
        "street-a",
        Call::Reverse {
            record: first,
            why: "double entry".into(),
        },
    );
    assert_eq!(query::balance(&w.state, &r).unwrap(), 3);
    let page =
        query::history(&w.state, &r, gongzhi_contracts::Page { start: 1, limit: 2 }).unwrap();
    assert_eq!((page.total, page.next, page.items.len()), (4, Some(3), 2));
    let last =
        query::history(&w.state, &r, gongzhi_contracts::Page { start: 3, limit: 2 }).unwrap();
    assert!(matches!(last.items[0].kind, RecordKind::Reversal { of, .. } if of == first));
    assert!(matches!(
        query::get_record(&w.state, first).unwrap().unwrap().kind,
        RecordKind::Award {
            reversed_by: Some(_),
            ..
        }
    ));
}

#[test]
fn quota_resets_in_the_next_period() {
    let mut w = World::new();
    let award = |n| Call::Award {
        resident: resident(n),
        reason: ReasonCode("volunteering".into()),
        points: 20,
    };
    w.ok("street-a", award(1));
    w.ok("street-a", award(2));
    w.fail("street-a", award(3));
    w.advance(31 * DAY);
    w.ok("street-a", award(3));
}

#[test]
fn nonces_are_per_signer_and_readable() {
    let mut w = World::new();
    assert_eq!(
        query::nonce(&w.state, &operator_key("civil-affairs").public()).unwrap(),
        1
    );
    assert_eq!(
        query::nonce(&w.state, &operator_key("health").public()).unwrap(),
        0
    );
    w.basic_grant(GrantTerms::default());
    assert_eq!(
        query::nonce(&w.state, &operator_key("civil-affairs").public()).unwrap(),
        2
    );
    assert_eq!(query::list_datasets(&w.state).unwrap().len(), 2);
}

/// The keys under `prefix` that a block changed, readably.
fn changed_under(outcome: &gongzhi_contracts::BlockOutcome, prefix: &[u8]) -> Vec<String> {
    outcome
        .changes
        .keys()
        .filter(|k| k.starts_with(prefix))
        .map(|k| gongzhi_contracts::keys::display(k))
        .collect()
}

/// A paged list longer than two chunks: blocks of many appends change only the list's head
/// and the chunks they seal; every page (inside a chunk, across chunk borders, into the open
/// chunk, past the end) reads back the ids in issue order; a corrupt sealed chunk is an error,
/// not a short page.
#[test]
fn paged_lists_span_chunks() {
    use gongzhi_contracts::grants::lifecycle::NewGrant;
    use gongzhi_contracts::{keys, ContractError};

    let mut w = World::new();
    let chunk = keys::CHUNK;
    let total = 2 * chunk + 5;
    let key = operator_key("civil-affairs");
    let mut issued: Vec<GrantId> = Vec::new();
    for block in (0..total).collect::<Vec<_>>().chunks(50) {
        let call = Call::IssueGrant(NewGrant {
            grantee: org("health"),
            dataset: dataset("elderly-roll"),
            fields: fields(&["age"]),
            purposes: vec![purpose("elderly-care")],
            valid_from: Timestamp(w.time + 1000),
            valid_until: Timestamp(w.time + DAY),
            terms: GrantTerms::default(),
            parent: None,
        });
        let txs: Vec<_> = block.iter().map(|_| w.next_tx(&key, &call)).collect();
        let before = issued.len();
        let outcome = w.execute(&txs);
        for receipt in &outcome.receipts {
            issued.push(grant_id(receipt.outcome.clone()));
        }
        let sealed = issued.len() / chunk - before / chunk;
        let head = keys::list_head(keys::ListName::GrantsByGrantee, b"health");
        let list_keys = changed_under(&outcome, &head);
        assert_eq!(
            list_keys.len(),
            1 + sealed,
            "{} appends to a list of {before} changed {list_keys:?}",
            txs.len()
        );
    }
    assert_eq!(issued.len(), total);

    let ids = |page: gongzhi_contracts::PageOf<gongzhi_contracts::grants::Grant>| {
        page.items.iter().map(|g| g.id).collect::<Vec<_>>()
    };
    let lists: [&dyn Fn(Page) -> Vec<GrantId>; 3] = [
        &|p| ids(query::grants_by_grantee(&w.state, &org("health"), p).unwrap()),
        &|p| ids(query::grants_by_grantor(&w.state, &org("civil-affairs"), p).unwrap()),
        &|p| ids(query::grants_by_dataset(&w.state, &dataset("elderly-roll"), p).unwrap()),
    ];
    for list in lists {
        for start in [
            0,
            1,
            chunk - 1,
            chunk,
            chunk + 1,
            2 * chunk,
            total - 1,
            total,
            total + 9,
        ] {
            for limit in [0, 1, 7, chunk, chunk + 3, 1000, 5000] {
                let page = Page {
                    start: start as u64,
                    limit: limit as u64,
                };
                let end = (start + limit.min(1000)).min(total);
                let want = issued.get(start..end).unwrap_or(&[]);
                assert_eq!(list(page), want, "start {start}, limit {limit}");
            }
        }
    }
    let page = query::grants_by_grantee(
        &w.state,
        &org("health"),
        Page {
            start: 60,
            limit: 10,
        },
    )
    .unwrap();
    assert_eq!((page.total, page.next), (total as u64, Some(70)));

    // Sealed chunk 1 loses an entry: pages that reach it fail with the key named.
    let chunk_key = keys::list_chunk(keys::ListName::GrantsByGrantee, b"health", 1);
    let short: Vec<GrantId> = issued[chunk..2 * chunk - 1].to_vec();
    w.state
        .insert(chunk_key.clone(), gongzhi_ledger::codec::to_bytes(&short));
    let inside = Page {
        start: 0,
        limit: chunk as u64,
    };
    assert!(query::grants_by_grantee(&w.state, &org("health"), inside).is_ok());
    let across = Page {
        start: chunk as u64 - 1,
        limit: 2,
    };
    match query::grants_by_grantee(&w.state, &org("health"), across) {
        Err(ContractError::Corrupt { key, reason }) => {
            assert_eq!(key, keys::display(&chunk_key));
            assert!(reason.contains("63 entries, not 64"), "{reason}");
        }
        other => panic!("expected a corrupt-state error, got {other:?}"),
    }
    w.state.remove(&chunk_key);
    assert!(matches!(
        query::grants_by_grantee(&w.state, &org("health"), across),
        Err(ContractError::Corrupt { .. })
    ));
}

/// A resident with more than two chunks of records: each block changes one key for the
/// resident's balance and history together (plus the chunks it seals), the balance is what
/// the records add up to, and the history pages back every record in order.
#[test]
fn a_resident_history_spans_chunks_and_shares_its_key_with_the_balance() {
    use gongzhi_contracts::keys;

    let mut w = World::new();
    let r = resident(3);
    let issuer = operator_key("civil-affairs");
    let shop = operator_key("service-point");
    let award = Call::Award {
        resident: r,
        reason: ReasonCode("volunteering".into()),
        points: 2,
    };
    let redeem = Call::Redeem {
        resident: r,
        points: 1,
        item: "soap".into(),
    };
    let mut records: Vec<RecordId> = Vec::new();
    for _ in 0..3 {
        let mut txs: Vec<_> = (0..40).map(|_| w.next_tx(&issuer, &award)).collect();
        txs.extend((0..10).map(|_| w.next_tx(&shop, &redeem)));
        let before = records.len();
        let outcome = w.execute(&txs);
        for receipt in &outcome.receipts {
            match output(&receipt.outcome) {
                CallOutput::Record(id) => records.push(id),
                other => panic!("expected a record, got {other:?}"),
            }
        }
        let sealed = records.len() / keys::CHUNK - before / keys::CHUNK;
        let touched = changed_under(&outcome, &keys::resident(&r));
        assert_eq!(touched.len(), 1 + sealed, "{touched:?}");
        assert!(changed_under(&outcome, b"balance").is_empty());
    }
    assert_eq!(query::balance(&w.state, &r).unwrap(), 3 * (40 * 2 - 10));
    let all = query::history(&w.state, &r, Page::first(1000)).unwrap();
    assert_eq!(all.total, 150);
    let ids: Vec<RecordId> = all.items.iter().map(|rec| rec.id).collect();
    assert_eq!(ids, records);
    let across = query::history(
        &w.state,
        &r,
        Page {
            start: 60,
            limit: 10,
        },
    )
    .unwrap();
    assert_eq!(across.items, all.items[60..70]);
    assert_eq!(across.next, Some(70));
}

/// A grant delegated 150 times (two sealed chunks of children and an open one): blocks of
/// delegations change the children's head and the chunks they seal, not a whole list; the
/// children read back in order; revoking the parent reaches every child; a lost sealed chunk
/// makes reading the children (what a revocation walks) fail as corrupt state instead of
/// silently sparing them.
#[test]
fn many_delegations_are_chunked_and_all_revoked() {
    use gongzhi_contracts::{keys, ContractError};

    let mut w = World::new();
    let parent = w.basic_grant(GrantTerms {
        delegation_depth: 1,
        ..Default::default()
    });
    let health = operator_key("health");
    let delegate = Call::DelegateGrant(Delegation {
        parent,
        grantee: org("police"),
        fields: fields(&["age"]),
        purposes: vec![purpose("elderly-care")],
        valid_from: Timestamp(w.time),
        valid_until: Timestamp(w.time + HOUR),
        max_uses: None,
        delegation_depth: 0,
    });
    let mut children: Vec<GrantId> = Vec::new();
    for _ in 0..3 {
        let txs: Vec<_> = (0..50).map(|_| w.next_tx(&health, &delegate)).collect();
        let before = children.len();
        let outcome = w.execute(&txs);
        children.extend(outcome.receipts.iter().map(|r| grant_id(r.outcome.clone())));
        let sealed = children.len() / keys::CHUNK - before / keys::CHUNK;
        let touched = changed_under(&outcome, &keys::grant_children(parent));
        assert_eq!(touched.len(), 1 + sealed, "{touched:?}");
    }
    assert_eq!(query::grant_children(&w.state, parent).unwrap(), children);

    let mut lost = w.state.clone();
    lost.remove(&keys::grant_children_chunk(parent, 1));
    assert!(matches!(
        query::grant_children(&lost, parent),
        Err(ContractError::Corrupt { .. })
    ));

    let revoke = Call::RevokeGrant {
        grant: parent,
        reason: "audit finding".into(),
    };
    assert_eq!(w.ok("civil-affairs", revoke), CallOutput::Revoked(151));
    for child in children {
        let grant = query::get_grant(&w.state, child).unwrap().unwrap();
        assert_eq!(grant.revoked.unwrap().cascaded_from, Some(parent));
    }
}
