//! The demo district: who is in it, what data they hold, and the stories its first blocks tell.
//!
//! Everything here is deterministic for a given seed: organisation keys are derived from it
//! (devnets only — real deployments generate keys with `gongzhi keys generate`), so a devnet
//! can be recreated and its keys found again. The story is told through real signed
//! transactions submitted to the running network by a [`Submitter`].

use anyhow::{bail, Context, Result};
use gongzhi_contracts::governance::Parameters;
use gongzhi_contracts::grants::datasets::AccessRequestArgs;
use gongzhi_contracts::grants::lifecycle::{Delegation, NewGrant, UseRecord};
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{
    Call, CallOutput, Genesis, GenesisOrg, GenesisPurpose, GenesisReason, GrantId, ReasonCode,
    RecordId, ResidentId,
};
use gongzhi_ledger::{Keypair, Outcome, Receipt, Timestamp};

/// One organisation of the demo district.
#[derive(Debug, Clone)]
pub struct DemoOrg {
    /// Slug id.
    pub id: &'static str,
    /// Kind (genesis spelling).
    pub kind: &'static str,
    /// Display name, both languages.
    pub name: String,
    /// Roles (genesis spelling).
    pub roles: Vec<&'static str>,
    /// Whether it runs a validator.
    pub validator: bool,
}

/// The district for `validators` validators: two street offices, a property manager and the
/// civil affairs bureau validate (extra validators are further street offices; with fewer
/// than four, the first `validators` of them do and the others are plain members); the health
/// commission, a police sub-bureau, a community service point and the audit bureau are members.
pub fn organisations(validators: usize) -> Vec<DemoOrg> {
    let v = |id, kind, name: &str, roles: Vec<&'static str>| DemoOrg {
        id,
        kind,
        name: name.to_string(),
        roles,
        validator: true,
    };
    let mut all = vec![
        v(
            "yuetan-street",
            "street-office",
            "Yuetan Street Office (月坛街道办事处)",
            vec!["validator", "member", "issuer"],
        ),
        v(
            "zhanlan-street",
            "street-office",
            "Zhanlanlu Street Office (展览路街道办事处)",
            vec!["validator", "member", "issuer"],
        ),
        v(
            "huaxia-property",
            "property-manager",
            "Huaxia Property Services (华夏物业服务企业)",
            vec!["validator", "member", "issuer"],
        ),
        v(
            "civil-affairs",
            "city-department",
            "District Civil Affairs Bureau (区民政局)",
            vec!["validator", "member"],
        ),
    ];
    const EXTRA: [&str; 8] = [
        "street-5",
        "street-6",
        "street-7",
        "street-8",
        "street-9",
        "street-10",
        "street-11",
        "street-12",
    ];
    for (i, id) in EXTRA.iter().enumerate().take(validators.saturating_sub(4)) {
        all.push(v(
            id,
            "street-office",
            &format!("Street Office No. {} (第{}街道办事处)", i + 5, i + 5),
            vec!["validator", "member"],
        ));
    }
    // Fewer than four validators: the story still needs all four core organisations, so the
    // ones beyond `validators` stay as plain members.
    for org in all.iter_mut().skip(validators.max(1)) {
        org.validator = false;
        org.roles.retain(|role| *role != "validator");
    }
    let m = |id, kind, name: &str, roles: Vec<&'static str>| DemoOrg {
        id,
        kind,
        name: name.to_string(),
        roles,
        validator: false,
    };
    all.extend([
        m(
            "health-commission",
            "city-department",
            "District Health Commission (区卫健委)",
            vec!["member"],
        ),
        m(
            "police-xicheng",
            "city-department",
            "Xicheng Police Sub-bureau (公安西城分局)",
            vec!["member"],
        ),
        m(
            "sanlihe-service",
            "service-point",
            "Sanlihe Community Service Point (三里河社区服务站)",
            vec!["member", "service-point"],
        ),
        m(
            "audit-bureau",
            "auditor",
            "District Audit Bureau (区审计局)",
            vec!["auditor"],
        ),
    ]);
    all
}

/// Deterministic devnet key of `org` for `purpose` ("operator" or "node").
pub fn demo_key(seed: &str, org: &str, purpose: &str) -> Keypair {
    let secret = blake3::derive_key(
        "gongzhi devnet key v1",
        format!("{seed}/{org}/{purpose}").as_bytes(),
    );
    Keypair::from_secret(secret)
}

/// The genesis of the demo district.
pub fn genesis(chain_id: &str, seed: &str, validators: usize, genesis_time: Timestamp) -> Genesis {
    let organisations = organisations(validators)
        .into_iter()
        .map(|org| GenesisOrg {
            id: org.id.to_string(),
            kind: org.kind.to_string(),
            name: org.name,
            roles: org.roles.iter().map(|r| r.to_string()).collect(),
            operator_keys: vec![demo_key(seed, org.id, "operator").public().to_hex()],
            validator_key: org
                .validator
                .then(|| demo_key(seed, org.id, "node").public().to_hex()),
            node_keys: if org.validator {
                Vec::new()
            } else {
                vec![demo_key(seed, org.id, "node").public().to_hex()]
            },
            power: org.validator.then_some(10),
            issuer_quota: None,
        })
        .collect();
    let purposes = [
        ("elderly-care", "Elderly care (养老服务)"),
        ("emergency-response", "Emergency response (应急处置)"),
        ("subsidy-verification", "Subsidy verification (补贴核验)"),
        (
            "governance-statistics",
            "Community governance statistics (社区治理统计)",
        ),
        ("epidemic-prevention", "Epidemic prevention (疫情防控)"),
    ]
    .into_iter()
    .map(|(code, label)| GenesisPurpose {
        code: code.into(),
        label: label.into(),
    })
    .collect();
    let reasons = [
        ("volunteering", "Volunteering (志愿服务)", 10),
        ("garbage-sorting", "Garbage sorting (垃圾分类)", 5),
        ("neighbourly-help", "Neighbourly help (邻里互助)", 5),
        ("dispute-mediation", "Dispute mediation (矛盾调解)", 8),
        ("blood-donation", "Blood donation (无偿献血)", 20),
    ]
    .into_iter()
    .map(|(code, label, max_points)| GenesisReason {
        code: code.into(),
        label: label.into(),
        max_points,
    })
    .collect();
    Genesis {
        chain_id: chain_id.to_string(),
        genesis_time: genesis_time.millis(),
        parameters: Parameters::default(),
        organisations,
        purposes,
        reasons,
    }
}

/// A resident's pseudonym as an issuer would compute it off chain: a keyed hash of the
/// resident's local id under the district's secret salt. No personal data reaches the chain.
pub fn resident(local_id: &str) -> ResidentId {
    ResidentId(
        blake3::keyed_hash(
            &blake3::hash(b"demo district salt").into(),
            local_id.as_bytes(),
        )
        .into(),
    )
}

/// Submits one call as an organisation and waits for its commit.
pub trait Submitter {
    /// Sign `call` with `org`'s operator key, submit it, wait for commit, return its receipt.
    fn submit(&mut self, org: &str, call: Call) -> Result<(u64, Receipt)>;
    /// Time of the latest block.
    fn chain_time(&mut self) -> Result<Timestamp>;
}

/// One narrated step of the story.
#[derive(Debug, Clone)]
pub struct StoryLine {
    /// Block height it committed in.
    pub height: u64,
    /// What happened, for a person.
    pub text: String,
}

fn ok_output(receipt: &Receipt, what: &str) -> Result<CallOutput> {
    match &receipt.outcome {
        Outcome::Success { data } => {
            CallOutput::from_data(data).with_context(|| format!("{what}: unreadable receipt"))
        }
        Outcome::Failure { name, message, .. } => bail!("{what} was rejected: {name}: {message}"),
    }
}

fn field(name: &str, sensitivity: Sensitivity) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        sensitivity,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

struct Teller<'a, S: Submitter> {
    submitter: &'a mut S,
    lines: Vec<StoryLine>,
}

impl<S: Submitter> Teller<'_, S> {
    fn step(&mut self, org: &str, call: Call, text: impl Into<String>) -> Result<CallOutput> {
        let name = call.name();
        let (height, receipt) = self.submitter.submit(org, call)?;
        let output = ok_output(&receipt, &format!("{org} {name}"))?;
        self.lines.push(StoryLine {
            height,
            text: text.into(),
        });
        Ok(output)
    }

    /// A step that the chain must refuse; the refusal is part of the story.
    fn refused(&mut self, org: &str, call: Call, text: &str) -> Result<()> {
        let (height, receipt) = self.submitter.submit(org, call)?;
        match receipt.outcome {
            Outcome::Failure { name, message, .. } => {
                self.lines.push(StoryLine {
                    height,
                    text: format!("{text} — refused: {name}: {message}"),
                });
                Ok(())
            }
            Outcome::Success { .. } => bail!("expected the chain to refuse: {text}"),
        }
    }
}

fn grant_id(output: CallOutput) -> Result<GrantId> {
    match output {
        CallOutput::Grant(id) => Ok(id),
        other => bail!("expected a grant id, got {other:?}"),
    }
}

/// Seed the demo data: datasets, requests, grants, delegations, revocations, civility points.
/// Returns the narrated story.
pub fn tell_story<S: Submitter>(submitter: &mut S) -> Result<Vec<StoryLine>> {
    let now = submitter.chain_time()?;
    let mut t = Teller {
        submitter,
        lines: Vec::new(),
    };
    let year = now.plus_millis(365 * 24 * 3600 * 1000);
    use Sensitivity::{Internal, Personal, Public, Sensitive};

    // Datasets.
    let datasets: [(&str, &str, &str, Vec<FieldSpec>); 5] = [
        (
            "yuetan-street",
            "resident-registry",
            "Resident registry (实有人口)",
            vec![
                field("name", Personal),
                field("id_hash", Personal),
                field("address", Personal),
                field("household", Sensitive),
                field("age", Internal),
                field("phone", Personal),
            ],
        ),
        (
            "civil-affairs",
            "elderly-subsidy-roll",
            "Elderly-care subsidy roll (养老补贴)",
            vec![
                field("resident_id_hash", Personal),
                field("age", Internal),
                field("subsidy_level", Sensitive),
                field("amount", Sensitive),
                field("street", Public),
            ],
        ),
        (
            "zhanlan-street",
            "garbage-sorting",
            "Garbage-sorting records (垃圾分类)",
            vec![
                field("household_code", Internal),
                field("date", Public),
                field("compliance", Internal),
            ],
        ),
        (
            "huaxia-property",
            "repair-requests",
            "Property repair requests (物业报修)",
            vec![
                field("building", Public),
                field("unit", Internal),
                field("issue", Internal),
                field("phone", Personal),
                field("status", Public),
            ],
        ),
        (
            "yuetan-street",
            "volunteer-hours",
            "Volunteer hours (志愿服务时长)",
            vec![
                field("volunteer_id_hash", Personal),
                field("hours", Internal),
                field("activity", Public),
            ],
        ),
    ];
    for (owner, id, name, fields) in datasets {
        t.step(
            owner,
            Call::RegisterDataset {
                id: id.into(),
                name: name.into(),
                fields,
            },
            format!("{owner} registers dataset {id} — {name}"),
        )?;
    }

    // Story 1: elderly care, with co-approval for sensitive fields.
    let request = match t.step(
        "health-commission",
        Call::RequestAccess(AccessRequestArgs {
            dataset: "elderly-subsidy-roll".into(),
            fields: strings(&["age", "subsidy_level", "street"]),
            purpose: "elderly-care".into(),
            valid_from: now,
            valid_until: year,
            justification: "Home visits for residents over 80 (高龄老人入户探访)".into(),
        }),
        "health-commission asks civil-affairs for the elderly-care subsidy roll (age, subsidy level, street) for elderly care",
    )? {
        CallOutput::Request(id) => id,
        other => bail!("expected a request id, got {other:?}"),
    };
    let elderly = grant_id(t.step(
        "civil-affairs",
        Call::ApproveRequest {
            request,
            terms: GrantTerms {
                max_uses: Some(1000),
                delegation_depth: 0,
                co_approver: Some("yuetan-street".into()),
                consent_hash: None,
            },
        },
        format!("civil-affairs approves {request}; the sensitive subsidy level needs yuetan-street's co-approval"),
    )?)?;
    t.step(
        "yuetan-street",
        Call::CoApproveGrant(elderly),
        format!("yuetan-street co-approves {elderly}: the grant is now active"),
    )?;
    t.step(
        "health-commission",
        Call::RecordUse(UseRecord {
            grant: elderly,
            fields: strings(&["age", "street"]),
            purpose: "elderly-care".into(),
            reference: None,
        }),
        format!("health-commission records a use of {elderly}"),
    )?;

    // Story 2: a police grant for emergency response that expires two minutes from now.
    let police = grant_id(t.step(
        "yuetan-street",
        Call::IssueGrant(NewGrant {
            grantee: "police-xicheng".into(),
            dataset: "resident-registry".into(),
            fields: strings(&["address", "household"]),
            purposes: vec!["emergency-response".into()],
            valid_from: now,
            valid_until: now.plus_millis(120_000),
            terms: GrantTerms {
                max_uses: Some(10),
                delegation_depth: 0,
                co_approver: Some("civil-affairs".into()),
                consent_hash: None,
            },
            parent: None,
        }),
        "yuetan-street grants police-xicheng addresses and households for an emergency, valid two minutes",
    )?)?;
    t.step(
        "civil-affairs",
        Call::CoApproveGrant(police),
        format!("civil-affairs co-approves {police}; it expires on its own"),
    )?;

    // Story 3: a delegated grant revoked with its parent.
    let parent = grant_id(t.step(
        "zhanlan-street",
        Call::IssueGrant(NewGrant {
            grantee: "health-commission".into(),
            dataset: "garbage-sorting".into(),
            fields: strings(&["date", "compliance"]),
            purposes: vec!["governance-statistics".into(), "epidemic-prevention".into()],
            valid_from: now,
            valid_until: year,
            terms: GrantTerms {
                max_uses: None,
                delegation_depth: 1,
                co_approver: None,
                consent_hash: None,
            },
            parent: None,
        }),
        "zhanlan-street shares garbage-sorting records with health-commission, delegable once",
    )?)?;
    let child = grant_id(t.step(
        "health-commission",
        Call::DelegateGrant(Delegation {
            parent,
            grantee: "sanlihe-service".into(),
            fields: strings(&["date"]),
            purposes: vec!["governance-statistics".into()],
            valid_from: now,
            valid_until: year,
            max_uses: Some(100),
            delegation_depth: 0,
        }),
        format!("health-commission delegates dates from {parent} to sanlihe-service"),
    )?)?;
    t.step(
        "zhanlan-street",
        Call::RevokeGrant {
            grant: parent,
            reason: "Statistics project closed (统计项目结束)".into(),
        },
        format!("zhanlan-street revokes {parent}; {child} is revoked with it"),
    )?;

    // Story 4: a request the owner rejects.
    let rejected = match t.step(
        "police-xicheng",
        Call::RequestAccess(AccessRequestArgs {
            dataset: "volunteer-hours".into(),
            fields: strings(&["volunteer_id_hash", "hours"]),
            purpose: "epidemic-prevention".into(),
            valid_from: now,
            valid_until: year,
            justification: "Contact lists (联系名单)".into(),
        }),
        "police-xicheng asks for volunteer hours for epidemic prevention",
    )? {
        CallOutput::Request(id) => id,
        other => bail!("expected a request id, got {other:?}"),
    };
    t.step(
        "yuetan-street",
        Call::RejectRequest {
            request: rejected,
            reason: "Volunteer identities are not needed for this purpose (目的不需要志愿者身份)"
                .into(),
        },
        format!("yuetan-street rejects {rejected}"),
    )?;

    // Story 5: civility points earned, redeemed, one reversed.
    let residents: Vec<(String, ResidentId)> = (1..=6)
        .map(|i| {
            let local = format!("resident-{i:03}");
            let id = resident(&local);
            (local, id)
        })
        .collect();
    let awards: [(&str, usize, &str, u64); 6] = [
        ("zhanlan-street", 0, "garbage-sorting", 5),
        ("zhanlan-street", 1, "garbage-sorting", 4),
        ("huaxia-property", 2, "garbage-sorting", 5),
        ("yuetan-street", 0, "volunteering", 10),
        ("yuetan-street", 3, "dispute-mediation", 8),
        ("huaxia-property", 4, "neighbourly-help", 3),
    ];
    let mut last_record: Option<RecordId> = None;
    for (issuer, who, reason, points) in awards {
        let (local, resident) = &residents[who];
        if let CallOutput::Record(id) = t.step(
            issuer,
            Call::Award {
                resident: *resident,
                reason: ReasonCode::from(reason),
                points,
            },
            format!("{issuer} awards {points} points to {local} for {reason}"),
        )? {
            last_record = Some(id);
        }
    }
    t.step(
        "sanlihe-service",
        Call::Redeem {
            resident: residents[0].1,
            points: 12,
            item: "Rice and cooking oil (米和油)".into(),
        },
        format!("{} redeems 12 points at sanlihe-service", residents[0].0),
    )?;
    t.refused(
        "sanlihe-service",
        Call::Redeem {
            resident: residents[1].1,
            points: 50,
            item: "Bicycle repair (自行车维修)".into(),
        },
        &format!("{} tries to redeem 50 points", residents[1].0),
    )?;
    let record = last_record.context("no award record to reverse")?;
    t.step(
        "huaxia-property",
        Call::Reverse {
            record,
            why: "Recorded against the wrong household (记错住户)".into(),
        },
        format!("huaxia-property reverses {record}"),
    )?;
    Ok(t.lines)
}
