//! The Authorization API over a real node process: every denial reason built from real txs,
//! consistency modes around a revocation (including the "new enemy" case), historic checks,
//! receipts that verify offline and fail on any changed byte, error codes, listing, explaining
//! and watching grants, the Registry and Civility reads, and the check benchmark command.

#![allow(clippy::unwrap_used, clippy::panic)]

mod api_common;

use std::time::Duration;

use futures::StreamExt;
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::grants::lifecycle::{NewGrant, UseRecord};
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{Call, GrantId};
use gongzhi_ledger::Canonical;
use gongzhi_ledger::Timestamp;
use gongzhi_node::api::receipt::{verify_receipt, DecisionReceipt, ReceiptBody, ReceiptError};
use gongzhi_proto::v1::{
    consistency::Requirement, list_grants_request, watch_grants_request, BatchCheckItem,
    BatchCheckRequest, CheckRequest, CheckResponse, Consistency, Decision, ExplainDenialRequest,
    GetBalanceRequest, GetDatasetRequest, GetStateProofRequest, GrantEventKind,
    ListDatasetsRequest, ListGrantsRequest, ListOrganizationsRequest, ListProposalsRequest,
    WatchGrantsRequest,
};
use tonic::Code;

use api_common::{now, TestNet};

fn question(grantee: &str, dataset: &str, fields: &[&str], purpose: &str) -> CheckRequest {
    CheckRequest {
        grantee_org_id: grantee.into(),
        dataset_id: dataset.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose_code: purpose.into(),
        consistency: None,
        want_receipt: false,
    }
}

fn at(mut request: CheckRequest, requirement: Requirement) -> CheckRequest {
    request.consistency = Some(Consistency {
        requirement: Some(requirement),
    });
    request
}

async fn check(net: &mut TestNet, request: CheckRequest) -> CheckResponse {
    net.client
        .authorization
        .check(request)
        .await
        .unwrap()
        .into_inner()
}

fn field(name: &str, sensitivity: Sensitivity) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        sensitivity,
    }
}

fn new_grant(
    grantee: &str,
    dataset: &str,
    fields: &[&str],
    purpose: &str,
    from: Timestamp,
    until: Timestamp,
) -> NewGrant {
    NewGrant {
        grantee: grantee.into(),
        dataset: dataset.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purposes: vec![purpose.into()],
        valid_from: from,
        valid_until: until,
        terms: GrantTerms::default(),
        parent: None,
    }
}

fn assert_denied(answer: &CheckResponse, reason: &str) {
    assert_eq!(answer.decision, Decision::Deny as i32, "{answer:?}");
    assert_eq!(answer.reason_name, reason, "{answer:?}");
    assert!(!answer.message.is_empty());
    assert!(
        answer.evaluation_time_ms >= answer.latest_block_time_ms.min(answer.evaluation_time_ms)
    );
}

fn assert_allowed(answer: &CheckResponse, grant: GrantId) {
    assert_eq!(answer.decision, Decision::Allow as i32, "{answer:?}");
    assert_eq!(answer.reason_name, "");
    assert_eq!(answer.grant_ids, vec![grant.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_api_end_to_end() {
    let mut net = api_common::start().await;
    let t0 = now();
    let hour = 3_600_000;

    // The world: two datasets of yuetan-street.
    net.must(
        "yuetan-street",
        Call::RegisterDataset {
            id: "registry".into(),
            name: "Resident registry".into(),
            fields: vec![
                field("name", Sensitivity::Personal),
                field("age", Sensitivity::Internal),
                field("street", Sensitivity::Public),
            ],
        },
    )
    .await;
    net.must(
        "yuetan-street",
        Call::RegisterDataset {
            id: "hours".into(),
            name: "Volunteer hours".into(),
            fields: vec![
                field("hours", Sensitivity::Internal),
                field("activity", Sensitivity::Public),
            ],
        },
    )
    .await;

    // A watcher from height 1, for health-commission's grants.
    let mut watch = net
        .client
        .authorization
        .watch_grants(WatchGrantsRequest {
            start: Some(watch_grants_request::Start::FromHeight(1)),
            grantee_org_id: "health-commission".into(),
            grantor_org_id: String::new(),
            dataset_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    let (health, _) = net
        .grant(
            "yuetan-street",
            Call::IssueGrant(new_grant(
                "health-commission",
                "registry",
                &["age", "street"],
                "elderly-care",
                t0,
                t0.plus_millis(hour),
            )),
        )
        .await;
    let mut police_terms = new_grant(
        "police-xicheng",
        "registry",
        &["name"],
        "emergency-response",
        t0,
        t0.plus_millis(hour),
    );
    police_terms.terms.co_approver = Some("health-commission".into());
    net.grant("yuetan-street", Call::IssueGrant(police_terms))
        .await;
    net.grant(
        "yuetan-street",
        Call::IssueGrant(new_grant(
            "sanlihe-service",
            "registry",
            &["street"],
            "elderly-care",
            t0.plus_millis(hour),
            t0.plus_millis(2 * hour),
        )),
    )
    .await;
    let mut limited = new_grant(
        "police-xicheng",
        "hours",
        &["activity"],
        "governance-statistics",
        t0,
        t0.plus_millis(hour),
    );
    limited.terms.max_uses = Some(1);
    let (limited_id, _) = net.grant("yuetan-street", Call::IssueGrant(limited)).await;
    net.must(
        "police-xicheng",
        Call::RecordUse(UseRecord {
            grant: limited_id,
            fields: vec!["activity".into()],
            purpose: "governance-statistics".into(),
            reference: None,
        }),
    )
    .await;
    let (short_id, _) = net
        .grant(
            "yuetan-street",
            Call::IssueGrant(new_grant(
                "sanlihe-service",
                "hours",
                &["hours"],
                "elderly-care",
                t0,
                now().plus_millis(1500),
            )),
        )
        .await;

    // Allowed, and each denial reason.
    let allowed = check(
        &mut net,
        question(
            "health-commission",
            "registry",
            &["street", "age"],
            "elderly-care",
        ),
    )
    .await;
    assert_allowed(&allowed, health);
    assert!(
        allowed.evaluation_time_ms >= allowed.latest_block_time_ms
            || allowed.evaluation_time_ms + 5000 > allowed.latest_block_time_ms
    );
    assert_eq!(allowed.state_root.len(), 32);
    let cases: Vec<(CheckRequest, &str)> = vec![
        (
            question("nobody", "registry", &["age"], "elderly-care"),
            "UNKNOWN_GRANTEE",
        ),
        (
            question("health-commission", "registry", &["age"], "not-a-purpose"),
            "UNKNOWN_PURPOSE",
        ),
        (
            question("health-commission", "nope", &["age"], "elderly-care"),
            "UNKNOWN_DATASET",
        ),
        (
            question(
                "health-commission",
                "registry",
                &["shoe-size"],
                "elderly-care",
            ),
            "UNKNOWN_FIELD",
        ),
        (
            question("health-commission", "registry", &[], "elderly-care"),
            "NO_FIELDS_REQUESTED",
        ),
        (
            question("audit-bureau", "registry", &["age"], "elderly-care"),
            "NO_GRANT",
        ),
        (
            question(
                "health-commission",
                "registry",
                &["age"],
                "emergency-response",
            ),
            "PURPOSE_NOT_COVERED",
        ),
        (
            question("health-commission", "registry", &["name"], "elderly-care"),
            "FIELD_NOT_COVERED",
        ),
        (
            question(
                "police-xicheng",
                "registry",
                &["name"],
                "emergency-response",
            ),
            "AWAITING_CO_APPROVAL",
        ),
        (
            question("sanlihe-service", "registry", &["street"], "elderly-care"),
            "NOT_YET_VALID",
        ),
        (
            question(
                "police-xicheng",
                "hours",
                &["activity"],
                "governance-statistics",
            ),
            "USES_EXHAUSTED",
        ),
    ];
    for (request, reason) in cases {
        let answer = check(&mut net, request.clone()).await;
        assert_denied(&answer, reason);
        // The store path (exact height) gives the same answer as the in-memory index.
        let historic = check(
            &mut net,
            at(request, Requirement::ExactHeight(answer.evaluated_height)),
        )
        .await;
        assert_eq!(historic.reason_name, reason);
    }
    // Expiry needs no tx: the node's clock passes valid_until.
    let expired = loop {
        let answer = check(
            &mut net,
            question("sanlihe-service", "hours", &["hours"], "elderly-care"),
        )
        .await;
        if answer.decision == Decision::Deny as i32 {
            break answer;
        }
        assert_allowed(&answer, short_id);
        assert!(
            now().millis() < t0.millis() + 30_000,
            "the short grant never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_denied(&expired, "EXPIRED");
    assert_eq!(expired.grant_ids, vec![short_id.0]);

    // A receipt for the allowed decision verifies offline; every changed byte is rejected.
    let genesis = gongzhi_node::run::load_genesis(&net.devnet.dir.join("genesis.toml")).unwrap();
    let mut with_receipt = question("health-commission", "registry", &["age"], "elderly-care");
    with_receipt.want_receipt = true;
    let answer = check(&mut net, with_receipt).await;
    assert_allowed(&answer, health);
    let receipt = answer.receipt.unwrap().canonical;
    let verified = verify_receipt(&receipt, &genesis).unwrap();
    assert!(verified.decision.is_allowed());
    assert_eq!(verified.height, answer.evaluated_height);
    for position in 0..receipt.len() {
        for flip in [0x01u8, 0x80] {
            let mut copy = receipt.clone();
            copy[position] ^= flip;
            assert!(
                verify_receipt(&copy, &genesis).is_err(),
                "byte {position} ^ {flip:#x} still verifies"
            );
        }
    }
    // Forgeries that re-seal the digest are caught by the proofs, the certificate and the
    // re-evaluation.
    let original = DecisionReceipt::decode(&receipt).unwrap();
    let forge = |edit: &dyn Fn(&mut ReceiptBody)| {
        let mut body = original.body.clone();
        edit(&mut body);
        verify_receipt(&DecisionReceipt::seal(body).encode(), &genesis).unwrap_err()
    };
    assert!(matches!(
        forge(&|b| b.decision.allowed = false),
        ReceiptError::DecisionMismatch { .. }
    ));
    assert!(matches!(
        forge(&|b| b.evaluation_time = Timestamp(t0.millis() + 2 * hour)),
        ReceiptError::DecisionMismatch { .. }
    ));
    assert!(matches!(
        forge(&|b| b.evaluation_time = Timestamp(1)),
        ReceiptError::TimeBeforeBlock { .. }
    ));
    assert!(matches!(
        forge(&|b| b.question.fields = vec!["name".into()]),
        ReceiptError::UnprovenRead(_)
    ));
    assert!(matches!(
        forge(&|b| b.question.purpose = "emergency-response".into()),
        ReceiptError::UnprovenRead(_)
    ));
    assert!(matches!(
        forge(&|b| {
            b.reads.pop();
        }),
        ReceiptError::UnprovenRead(_)
    ));
    assert!(matches!(
        forge(&|b| b.reads[0].value = Some(vec![0])),
        ReceiptError::Proof { .. }
    ));
    assert!(matches!(
        forge(&|b| b.header.state_root = gongzhi_ledger::Hash([9; 32])),
        ReceiptError::Certificate { .. }
    ));
    assert!(matches!(
        forge(&|b| b.certificate.signatures.clear()),
        ReceiptError::Certificate { .. }
    ));
    assert!(matches!(
        forge(&|b| b.height += 1),
        ReceiptError::Inconsistent(_)
    ));
    let stranger = gongzhi_ledger::ValidatorSet::new(vec![gongzhi_ledger::Validator {
        id: gongzhi_ledger::ValidatorId([3; 32]),
        power: 1,
    }])
    .unwrap();
    assert!(matches!(
        forge(&|b| b.validator_set = stranger.clone()),
        ReceiptError::UntrustedValidatorSet(_)
    ));
    let mut truncated = receipt.clone();
    truncated.pop();
    assert!(matches!(
        verify_receipt(&truncated, &genesis),
        Err(ReceiptError::Malformed(_))
    ));
    let mut other_genesis = genesis.clone();
    other_genesis.chain_id = "other-chain".into();
    assert!(matches!(
        verify_receipt(&receipt, &other_genesis),
        Err(ReceiptError::WrongChain { .. })
    ));

    // The CLI writes and verifies a receipt of a denial too.
    let receipt_path = net.dir.path().join("deny.gzr");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_gongzhi"))
        .args([
            "check",
            "--grantee",
            "police-xicheng",
            "--dataset",
            "registry",
            "--fields",
            "name",
            "--purpose",
            "emergency-response",
            "--node",
            &net.addr(),
            "--receipt",
        ])
        .arg(&receipt_path)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(String::from_utf8_lossy(&cli.stdout).contains("AWAITING_CO_APPROVAL"));
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_gongzhi"))
        .arg("verify-receipt")
        .arg(&receipt_path)
        .arg("--genesis")
        .arg(net.devnet.dir.join("genesis.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && text.contains("DENY") && text.contains("AWAITING_CO_APPROVAL"),
        "{text}"
    );
    // The auditors' spelling of the same command gives the same verdict.
    let audit_verify = std::process::Command::new(env!("CARGO_BIN_EXE_gongzhi"))
        .args(["audit", "verify-receipt"])
        .arg(&receipt_path)
        .arg("--genesis")
        .arg(net.devnet.dir.join("genesis.toml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&audit_verify.stdout),
        text,
        "{}",
        String::from_utf8_lossy(&audit_verify.stderr)
    );
    assert!(audit_verify.status.success());

    // `gongzhi query` prints the registry's lists and the grants the story issued.
    let query = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gongzhi"))
            .arg("query")
            .args(args)
            .args(["--node", &net.addr()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "query {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let orgs = query(&["orgs"]);
    for org in ["yuetan-street", "health-commission", "police-xicheng"] {
        assert!(orgs.contains(org), "{org} missing from:\n{orgs}");
    }
    let datasets = query(&["datasets"]);
    assert!(datasets.contains("registry"), "{datasets}");
    let grants = query(&["grants", "--grantee", "police-xicheng", "--all"]);
    assert!(
        grants.contains(&format!("grant#{}", limited_id.0)),
        "grant#{} missing from:\n{grants}",
        limited_id.0
    );
    let by_dataset = query(&["grants", "--dataset", "registry", "--all"]);
    assert!(
        by_dataset.contains("health-commission") && by_dataset.contains("police-xicheng"),
        "{by_dataset}"
    );
    query(&["proposals"]);

    // Revocation and consistency: nothing at or after the revoking height sees the grant.
    let before = allowed.evaluated_height;
    let (revoked_at, _) = net
        .must(
            "yuetan-street",
            Call::RevokeGrant {
                grant: health,
                reason: "case closed".into(),
            },
        )
        .await;
    let q = || question("health-commission", "registry", &["age"], "elderly-care");
    assert_denied(
        &check(&mut net, at(q(), Requirement::AtLeastHeight(revoked_at))).await,
        "REVOKED",
    );
    assert_denied(
        &check(&mut net, at(q(), Requirement::ExactHeight(revoked_at))).await,
        "REVOKED",
    );
    let latest = check(&mut net, q()).await;
    assert!(latest.evaluated_height >= revoked_at);
    assert_denied(&latest, "REVOKED");
    // Historic: the earlier decision is reproduced exactly at the earlier heights.
    assert_allowed(
        &check(&mut net, at(q(), Requirement::ExactHeight(revoked_at - 1))).await,
        health,
    );
    assert_allowed(
        &check(&mut net, at(q(), Requirement::ExactHeight(before))).await,
        health,
    );

    // The "new enemy" case, repeatedly: grant, revoke, then check at least the revoking height
    // right away; the earlier decision (ALLOW) must never come back.
    for round in 0..5 {
        let (id, _) = net
            .grant(
                "yuetan-street",
                Call::IssueGrant(new_grant(
                    "audit-bureau",
                    "hours",
                    &["hours"],
                    "elderly-care",
                    t0,
                    now().plus_millis(hour),
                )),
            )
            .await;
        let (height, _) = net
            .must(
                "yuetan-street",
                Call::RevokeGrant {
                    grant: id,
                    reason: format!("round {round}"),
                },
            )
            .await;
        let answer = check(
            &mut net,
            at(
                question("audit-bureau", "hours", &["hours"], "elderly-care"),
                Requirement::AtLeastHeight(height),
            ),
        )
        .await;
        assert!(answer.evaluated_height >= height);
        assert_denied(&answer, "REVOKED");
    }

    // Suspension and removal by governance (the only validator holds all the power).
    net.must(
        "yuetan-street",
        Call::Propose(ProposalAction::SuspendOrg("police-xicheng".into())),
    )
    .await;
    assert_denied(
        &check(
            &mut net,
            question(
                "police-xicheng",
                "registry",
                &["name"],
                "emergency-response",
            ),
        )
        .await,
        "GRANTEE_SUSPENDED",
    );
    net.must(
        "yuetan-street",
        Call::Propose(ProposalAction::RemoveOrg("audit-bureau".into())),
    )
    .await;
    assert_denied(
        &check(
            &mut net,
            question("audit-bureau", "hours", &["hours"], "elderly-care"),
        )
        .await,
        "GRANTEE_REMOVED",
    );

    // Batch: one state for all, in order.
    let batch = net
        .client
        .authorization
        .batch_check(BatchCheckRequest {
            items: vec![
                BatchCheckItem {
                    grantee_org_id: "health-commission".into(),
                    dataset_id: "registry".into(),
                    fields: vec!["age".into()],
                    purpose_code: "elderly-care".into(),
                },
                BatchCheckItem {
                    grantee_org_id: "nobody".into(),
                    dataset_id: "registry".into(),
                    fields: vec!["age".into()],
                    purpose_code: "elderly-care".into(),
                },
            ],
            consistency: None,
            want_receipt: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.results.len(), 2);
    assert_eq!(batch.results[0].reason_name, "REVOKED");
    assert_eq!(batch.results[1].reason_name, "UNKNOWN_GRANTEE");
    assert_eq!(
        batch.results[0].evaluated_height,
        batch.results[1].evaluated_height
    );

    // Errors.
    let code = |r: Result<tonic::Response<CheckResponse>, tonic::Status>| r.unwrap_err();
    let empty = code(
        net.client
            .authorization
            .check(question("", "registry", &["age"], "elderly-care"))
            .await,
    );
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(
        empty.message().contains("grantee_org_id"),
        "{}",
        empty.message()
    );
    let blank_field = code(
        net.client
            .authorization
            .check(question(
                "health-commission",
                "registry",
                &[""],
                "elderly-care",
            ))
            .await,
    );
    assert!(
        blank_field.message().contains("fields[0]"),
        "{}",
        blank_field.message()
    );
    let mut slow = tonic::Request::new(at(q(), Requirement::AtLeastHeight(1_000_000)));
    slow.set_timeout(Duration::from_millis(300));
    assert_eq!(
        net.client
            .authorization
            .check(slow)
            .await
            .unwrap_err()
            .code(),
        Code::DeadlineExceeded
    );
    deadlines_are_exceeded_not_cancelled(&mut net).await;
    let bad_item = net
        .client
        .authorization
        .batch_check(BatchCheckRequest {
            items: vec![
                BatchCheckItem {
                    grantee_org_id: "health-commission".into(),
                    dataset_id: "registry".into(),
                    fields: vec!["age".into()],
                    purpose_code: "elderly-care".into(),
                },
                BatchCheckItem {
                    grantee_org_id: "health-commission".into(),
                    dataset_id: "registry".into(),
                    fields: vec!["age".into(), String::new()],
                    purpose_code: "elderly-care".into(),
                },
            ],
            consistency: None,
            want_receipt: false,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_item.code(), Code::InvalidArgument);
    assert!(
        bad_item.message().contains("items[1].fields[1]"),
        "{}",
        bad_item.message()
    );
    let too_many = BatchCheckRequest {
        items: vec![
            BatchCheckItem {
                grantee_org_id: "a".into(),
                dataset_id: "b".into(),
                fields: vec!["c".into()],
                purpose_code: "d".into()
            };
            1001
        ],
        consistency: None,
        want_receipt: false,
    };
    assert_eq!(
        net.client
            .authorization
            .batch_check(too_many)
            .await
            .unwrap_err()
            .code(),
        Code::ResourceExhausted
    );
    let no_filter = ListGrantsRequest {
        filter: None,
        include_inactive: false,
        consistency: None,
        page_size: 0,
        page_token: String::new(),
    };
    assert_eq!(
        net.client
            .authorization
            .list_grants(no_filter)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    // Explain: grant by grant.
    let explained = net
        .client
        .authorization
        .explain_denial(ExplainDenialRequest {
            grantee_org_id: "health-commission".into(),
            dataset_id: "registry".into(),
            fields: vec!["age".into(), "name".into()],
            purpose_code: "elderly-care".into(),
            consistency: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(explained.decision.unwrap().reason_name, "REVOKED");
    assert_eq!(explained.grants.len(), 1);
    assert_eq!(explained.grants[0].reason_name, "REVOKED");
    assert_eq!(explained.grants[0].missing_fields, vec!["name".to_string()]);

    // List grants: paging pins one height.
    let request = |token: String| ListGrantsRequest {
        filter: Some(list_grants_request::Filter::GrantorOrgId(
            "yuetan-street".into(),
        )),
        include_inactive: true,
        consistency: None,
        page_size: 3,
        page_token: token,
    };
    let first = net
        .client
        .authorization
        .list_grants(request(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.grants.len(), 3);
    assert!(first.total_size >= 10);
    let second = net
        .client
        .authorization
        .list_grants(request(first.next_page_token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.state.unwrap().height, second.state.unwrap().height);
    assert!(second.grants[0].grant_id > first.grants[2].grant_id);

    // Watch: CREATED then REVOKED for health-commission's grant; resuming after the first
    // event continues with the second.
    let created = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.kind != GrantEventKind::Progress as i32 {
            break event;
        }
    };
    assert_eq!(created.kind, GrantEventKind::Created as i32);
    assert_eq!(created.grant.as_ref().unwrap().grant_id, health.0);
    let revoked = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.kind != GrantEventKind::Progress as i32 {
            break event;
        }
    };
    assert_eq!(revoked.kind, GrantEventKind::Revoked as i32);
    assert_eq!(revoked.height, revoked_at);
    let mut resumed = net
        .client
        .authorization
        .watch_grants(WatchGrantsRequest {
            start: Some(watch_grants_request::Start::ResumeToken(
                created.resume_token.clone(),
            )),
            grantee_org_id: "health-commission".into(),
            grantor_org_id: String::new(),
            dataset_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let again = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.kind != GrantEventKind::Progress as i32 {
            break event;
        }
    };
    assert_eq!((again.kind, again.height), (revoked.kind, revoked.height));

    // Registry and civility reads.
    let orgs = net
        .client
        .registry
        .list_organizations(ListOrganizationsRequest {
            role: 0,
            include_removed: true,
            consistency: None,
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(orgs
        .organizations
        .iter()
        .any(|o| o.org_id == "audit-bureau"));
    let dataset = net
        .client
        .registry
        .get_dataset(GetDatasetRequest {
            dataset_id: "registry".into(),
            consistency: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dataset.dataset.unwrap().fields.len(), 3);
    let missing = net
        .client
        .registry
        .get_dataset(GetDatasetRequest {
            dataset_id: "nope".into(),
            consistency: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let datasets = net
        .client
        .registry
        .list_datasets(ListDatasetsRequest {
            owner_org_id: String::new(),
            consistency: None,
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((datasets.datasets.len(), datasets.total_size), (1, 2));
    let proposals = net
        .client
        .registry
        .list_proposals(ListProposalsRequest {
            status: 0,
            consistency: None,
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proposals.proposals.len(), 2);
    assert!(proposals.proposals[0].proposal_id > proposals.proposals[1].proposal_id);
    let balance = net
        .client
        .civility
        .get_balance(GetBalanceRequest {
            resident_id: vec![7; 32],
            consistency: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance, 0);
    let bad = net
        .client
        .civility
        .get_balance(GetBalanceRequest {
            resident_id: vec![7; 3],
            consistency: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // The benchmark command reports throughput and latency.
    let bench = std::process::Command::new(env!("CARGO_BIN_EXE_gongzhi"))
        .args([
            "bench",
            "checks",
            "--node",
            &net.addr(),
            "--concurrency",
            "8",
            "--duration",
            "1s",
            "--grantee",
            "health-commission",
            "--dataset",
            "registry",
            "--fields",
            "age",
            "--purpose",
            "elderly-care",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bench.stdout);
    assert!(
        bench.status.success() && text.contains("checks/s") && text.contains("latency p99"),
        "{text}{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    // Last: it registers datasets the counts above do not expect.
    submit_txs_admits_each_tx_on_its_own(&mut net).await;
}

/// `SubmitTxs`: each tx gets the verdict `SubmitTx` would give it, in request order, and one
/// bad tx does not stop its neighbours; the admitted ones commit. An empty or oversized call is
/// refused as a whole.
async fn submit_txs_admits_each_tx_on_its_own(net: &mut TestNet) {
    use gongzhi_proto::v1::{GetReceiptRequest, SubmitTxsRequest};
    let key = net.keys["sanlihe-service"].clone();
    let nonce = net.client.next_nonce(&key.public()).await.unwrap();
    let dataset = |i: u64| Call::RegisterDataset {
        id: gongzhi_contracts::DatasetId(format!("batch-{i}")),
        name: format!("Batch {i}"),
        fields: vec![field("n", Sensitivity::Public)],
    };
    let good: Vec<gongzhi_ledger::Tx> = (0..3)
        .map(|i| dataset(i).sign(&key, &net.chain_id, nonce + i))
        .collect();
    let mut forged = dataset(9).sign(&key, &net.chain_id, nonce + 9);
    forged.body.nonce += 1;
    let wrong_chain = dataset(10).sign(&key, "another-chain", nonce + 10);
    let txs = vec![
        good[0].encode(),
        forged.encode(),
        good[1].encode(),
        wrong_chain.encode(),
        vec![0xff; 40],
        good[0].encode(),
        good[2].encode(),
    ];
    let results = net
        .client
        .ledger
        .submit_txs(SubmitTxsRequest { txs })
        .await
        .unwrap()
        .into_inner()
        .results;
    let codes: Vec<Code> = results.iter().map(|r| Code::from_i32(r.code)).collect();
    assert_eq!(
        codes,
        [
            Code::Ok,
            Code::Unauthenticated,
            Code::Ok,
            Code::InvalidArgument,
            Code::InvalidArgument,
            Code::AlreadyExists,
            Code::Ok,
        ],
        "{results:?}"
    );
    for (result, tx) in [
        (&results[0], &good[0]),
        (&results[2], &good[1]),
        (&results[6], &good[2]),
    ] {
        assert_eq!(result.tx_hash, tx.hash().0.to_vec());
        assert!(result.message.is_empty());
    }
    assert!(
        results[3].message.contains("another-chain"),
        "{}",
        results[3].message
    );
    assert!(results[4].tx_hash.is_empty(), "garbage has no hash");
    for tx in &good {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let receipt = net
                .client
                .ledger
                .get_receipt(GetReceiptRequest {
                    tx_hash: tx.hash().0.to_vec(),
                })
                .await;
            match receipt {
                Ok(_) => break,
                Err(status) if status.code() == Code::NotFound => {
                    assert!(tokio::time::Instant::now() < deadline, "tx not committed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("GetReceipt: {status}"),
            }
        }
    }
    for (txs, what) in [
        (Vec::new(), "empty"),
        (vec![good[0].encode(); 1_001], "1,001 txs"),
    ] {
        let status = net
            .client
            .ledger
            .submit_txs(SubmitTxsRequest { txs })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status}");
    }
}

fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// A wait for a height that outlives the call's deadline is answered `DEADLINE_EXCEEDED`
/// with a message naming what was awaited — never the transport's `CANCELLED`, which tonic
/// sends when it cuts a call off at its `grpc-timeout` — for Check, BatchCheck,
/// ExplainDenial and the Ledger's GetStateProof. (Much shorter deadlines race the client's
/// own timer, which tonic also reports as `CANCELLED`.)
async fn deadlines_are_exceeded_not_cancelled(net: &mut TestNet) {
    let far = || {
        Some(Consistency {
            requirement: Some(Requirement::AtLeastHeight(1_000_000)),
        })
    };
    for millis in [100, 300] {
        let timeout = Duration::from_millis(millis);
        let mut check_request = question("health-commission", "registry", &["age"], "elderly-care");
        check_request.consistency = far();
        let started = std::time::Instant::now();
        let errors = [
            (
                "Check",
                net.client
                    .authorization
                    .check(with_timeout(check_request, timeout))
                    .await
                    .map(|_| ())
                    .unwrap_err(),
            ),
            (
                "BatchCheck",
                net.client
                    .authorization
                    .batch_check(with_timeout(
                        BatchCheckRequest {
                            items: vec![BatchCheckItem {
                                grantee_org_id: "health-commission".into(),
                                dataset_id: "registry".into(),
                                fields: vec!["age".into()],
                                purpose_code: "elderly-care".into(),
                            }],
                            consistency: far(),
                            want_receipt: false,
                        },
                        timeout,
                    ))
                    .await
                    .map(|_| ())
                    .unwrap_err(),
            ),
            (
                "ExplainDenial",
                net.client
                    .authorization
                    .explain_denial(with_timeout(
                        ExplainDenialRequest {
                            grantee_org_id: "health-commission".into(),
                            dataset_id: "registry".into(),
                            fields: vec!["age".into()],
                            purpose_code: "elderly-care".into(),
                            consistency: far(),
                        },
                        timeout,
                    ))
                    .await
                    .map(|_| ())
                    .unwrap_err(),
            ),
            (
                "GetStateProof",
                net.client
                    .ledger
                    .get_state_proof(with_timeout(
                        GetStateProofRequest {
                            key: b"any key".to_vec(),
                            consistency: far(),
                        },
                        timeout,
                    ))
                    .await
                    .map(|_| ())
                    .unwrap_err(),
            ),
        ];
        for (call, status) in errors {
            assert_eq!(
                status.code(),
                Code::DeadlineExceeded,
                "{call} with a {millis} ms deadline: {status:?}"
            );
            assert!(
                status.message().contains("1000000") && status.message().contains("deadline"),
                "{call} with a {millis} ms deadline: {}",
                status.message()
            );
        }
        // The four waits ended at their deadlines, not at the server's 10 s default.
        assert!(started.elapsed() < 4 * timeout + Duration::from_secs(2));
    }
}
