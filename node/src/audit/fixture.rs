//! A real chain built in-process, for audit tests, benchmarks and demos.
//!
//! [`FixtureChain`] drives the node's own [`Chain`]: txs are signed with [`Call::sign`], blocks
//! are built by [`Chain::build_block`] and committed with a commit certificate whose precommits
//! are signed by the validator keys in force (so certificates verify exactly as on a live
//! network). Keys are derived deterministically from names ([`operator_key`],
//! [`validator_key`]), so the same story gives the same chain, byte for byte, every time.
//!
//! [`demo_genesis`] is a small district (four validator organisations, a health commission, a
//! police sub-bureau, a service point and an auditor) and [`run_demo_story`] plays the
//! stories the audit report is meant to show: an access request approved and one rejected,
//! a grant that expires, a delegated grant revoked with its parent, civility points awarded,
//! redeemed and reversed, an issuer hitting its quota, and a validator power change through
//! governance.
//!
//! Example:
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use gongzhi_node::audit::fixture::{demo_genesis, run_demo_story, FixtureChain};
//! let dir = std::path::Path::new("/tmp/fixture");
//! let mut chain = FixtureChain::create(&dir.join("data"), demo_genesis())?;
//! run_demo_story(&mut chain)?;
//! chain.export(&dir.join("chain.gzaudit"))?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use gongzhi_consensus::VOTE_SIGN_TAG;
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::governance::ValidatorSpec;
use gongzhi_contracts::grants::datasets::AccessRequestArgs;
use gongzhi_contracts::grants::lifecycle::{Delegation, NewGrant, UseRecord};
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{
    Call, CallOutput, DatasetId, Genesis, GenesisOrg, GenesisPurpose, GenesisReason, GrantId,
    OrgId, ProposalId, PurposeCode, ReasonCode, RecordId, ResidentId,
};
use gongzhi_ledger::{
    Block, CommitCertificate, CommitSignature, Hash, Keypair, Outcome, PublicKey, Receipt,
    Timestamp, Tx,
};

use super::export::{export_store, ExportSummary};
use super::progress::Progress;
use crate::chain::Chain;

/// Chain id of the fixture genesis.
pub const CHAIN_ID: &str = "gongzhi-audit-fixture";
/// Genesis time: 2026-01-01T00:00:00Z.
pub const GENESIS_TIME: u64 = 1_767_225_600_000;
/// One hour in milliseconds.
pub const HOUR: u64 = 3_600_000;
/// One day in milliseconds.
pub const DAY: u64 = 24 * HOUR;

/// (id, kind, name, roles, validator power)
const ORGS: &[(&str, &str, &str, &[&str], u64)] = &[
    (
        "yuetan-street",
        "street-office",
        "Yuetan Street Office (月坛街道办事处)",
        &["validator", "member", "issuer"],
        1,
    ),
    (
        "zhanlan-street",
        "street-office",
        "Zhanlan Road Street Office (展览路街道办事处)",
        &["validator", "member", "issuer"],
        1,
    ),
    (
        "jinyu-property",
        "property-manager",
        "Jinyu Property Services (金隅物业服务企业)",
        &["validator", "member"],
        1,
    ),
    (
        "civil-affairs",
        "city-department",
        "District Civil Affairs Bureau (区民政局)",
        &["validator", "member", "issuer"],
        1,
    ),
    (
        "health-commission",
        "city-department",
        "District Health Commission (区卫健委)",
        &["member"],
        0,
    ),
    (
        "police-subbureau",
        "city-department",
        "Police Sub-bureau (公安分局)",
        &["member"],
        0,
    ),
    (
        "service-point",
        "service-point",
        "Community Service Point (社区服务站)",
        &["service-point"],
        0,
    ),
    (
        "audit-bureau",
        "auditor",
        "District Audit Bureau (区审计局)",
        &["auditor"],
        0,
    ),
];

/// Quota of `yuetan-street` per period in the demo genesis (small, so the story breaches it).
pub const DEMO_ISSUER_QUOTA: u64 = 30;

fn derived_key(role: &str, name: &str) -> Keypair {
    Keypair::from_secret(
        Hash::tagged(
            "gongzhi/audit-fixture/v1",
            format!("{role}/{name}").as_bytes(),
        )
        .0,
    )
}

/// The operator (tx signing) key of organisation `org`, derived from its id.
pub fn operator_key(org: &str) -> Keypair {
    derived_key("operator", org)
}

/// The validator (consensus) key of organisation `org`, derived from its id.
pub fn validator_key(org: &str) -> Keypair {
    derived_key("validator", org)
}

/// Validator keys of the four validator organisations of [`demo_genesis`].
pub fn demo_validator_keys() -> Vec<Keypair> {
    ORGS.iter()
        .filter(|o| o.4 > 0)
        .map(|o| validator_key(o.0))
        .collect()
}

/// The demo district: 4 validator organisations of power 1 and 4 members.
pub fn demo_genesis() -> Genesis {
    let purposes = [
        ("elderly-care", "Elderly care (养老服务)"),
        ("emergency-response", "Emergency response (应急处置)"),
        ("subsidy-verification", "Subsidy verification (补贴核验)"),
        (
            "community-statistics",
            "Community governance statistics (社区治理统计)",
        ),
    ];
    let reasons = [
        ("volunteering", "Volunteering (志愿服务)", 20),
        ("garbage-sorting", "Garbage sorting (垃圾分类)", 5),
        ("neighbourly-help", "Neighbourly help (邻里互助)", 10),
    ];
    Genesis {
        chain_id: CHAIN_ID.into(),
        genesis_time: GENESIS_TIME,
        parameters: Default::default(),
        organisations: ORGS
            .iter()
            .map(|(id, kind, name, roles, power)| GenesisOrg {
                id: (*id).into(),
                kind: (*kind).into(),
                name: (*name).into(),
                roles: roles.iter().map(|r| (*r).to_string()).collect(),
                operator_keys: vec![operator_key(id).public().to_hex()],
                node_keys: Vec::new(),
                validator_key: (*power > 0).then(|| validator_key(id).public().to_hex()),
                power: (*power > 0).then_some(*power),
                issuer_quota: (*id == "yuetan-street").then_some(DEMO_ISSUER_QUOTA),
            })
            .collect(),
        purposes: purposes
            .iter()
            .map(|(code, label)| GenesisPurpose {
                code: (*code).into(),
                label: (*label).into(),
            })
            .collect(),
        reasons: reasons
            .iter()
            .map(|(code, label, max)| GenesisReason {
                code: (*code).into(),
                label: (*label).into(),
                max_points: *max,
            })
            .collect(),
    }
}

/// A chain being built block by block, with every key needed to sign txs and certificates.
#[derive(Debug)]
pub struct FixtureChain {
    chain: Chain,
    genesis: Genesis,
    validator_keys: Vec<Keypair>,
    nonces: BTreeMap<PublicKey, u64>,
    time: Timestamp,
    /// Block time step, in milliseconds (default one minute).
    pub block_interval_ms: u64,
    last_commit: Option<CommitCertificate>,
}

/// One committed block with its receipts.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
}

impl Committed {
    /// The output of tx `index`, or an error naming its failure.
    pub fn output(&self, index: usize) -> Result<CallOutput> {
        match self.receipts.get(index).map(|r| &r.outcome) {
            Some(Outcome::Success { data }) => Ok(CallOutput::from_data(data)?),
            Some(Outcome::Failure { name, message, .. }) => {
                bail!("tx #{index} failed: {name}: {message}")
            }
            None => bail!("block has no tx #{index}"),
        }
    }
}

impl FixtureChain {
    /// A new chain in `data_dir` from `genesis`, committing with the [`demo_validator_keys`].
    pub fn create(data_dir: &Path, genesis: Genesis) -> Result<FixtureChain> {
        FixtureChain::with_validator_keys(data_dir, genesis, demo_validator_keys())
    }

    /// A new chain whose certificates are signed by `validator_keys` (those in force sign).
    pub fn with_validator_keys(
        data_dir: &Path,
        genesis: Genesis,
        validator_keys: Vec<Keypair>,
    ) -> Result<FixtureChain> {
        let chain = Chain::open(data_dir, &genesis)?;
        if chain.height() != 0 {
            bail!(
                "{} already holds a chain at height {}; use an empty directory",
                data_dir.display(),
                chain.height()
            );
        }
        Ok(FixtureChain {
            chain,
            time: genesis.time(),
            genesis,
            validator_keys,
            nonces: BTreeMap::new(),
            block_interval_ms: 60_000,
            last_commit: None,
        })
    }

    /// The node chain underneath.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The genesis document.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Time of the next block (before the interval is added).
    pub fn now(&self) -> Timestamp {
        self.time
    }

    /// Move time forward by `ms` (on top of the per-block interval).
    pub fn advance(&mut self, ms: u64) {
        self.time = self.time.plus_millis(ms);
    }

    /// Take `key`'s next nonce (for callers that sign themselves, e.g. in parallel).
    pub fn reserve_nonce(&mut self, key: &Keypair) -> u64 {
        let nonce = self.nonces.entry(key.public()).or_insert(0);
        *nonce += 1;
        *nonce
    }

    /// Sign `call` with `key` at its next nonce.
    pub fn sign(&mut self, key: &Keypair, call: &Call) -> Tx {
        let nonce = self.reserve_nonce(key);
        call.sign(key, &self.genesis.chain_id, nonce)
    }

    /// Sign `call` as organisation `org` (its derived operator key).
    pub fn tx(&mut self, org: &str, call: &Call) -> Tx {
        self.sign(&operator_key(org), call)
    }

    /// Build the next block from `txs`, sign its certificate with the validators in force, commit.
    pub fn commit_block(&mut self, txs: Vec<Tx>) -> Result<Committed> {
        self.time = self.time.plus_millis(self.block_interval_ms);
        let set = self.chain.next_validator_set()?;
        let proposer = self
            .validator_keys
            .iter()
            .map(Keypair::public)
            .find(|k| set.get(&gongzhi_consensus::ValidatorId(k.0)).is_some())
            .context("none of the fixture's validator keys is in the validator set")?;
        let executed = self
            .chain
            .build_block(txs, self.time, proposer, self.last_commit.take())?;
        self.time = executed.block.header.time;
        let mut certificate = CommitCertificate {
            height: executed.block.header.height,
            round: 0,
            block_hash: executed.block.hash(),
            signatures: Vec::new(),
        };
        for key in &self.validator_keys {
            let public = key.public();
            if set.get(&gongzhi_consensus::ValidatorId(public.0)).is_none() {
                continue;
            }
            let bytes = certificate.precommit_for(&public).sign_bytes();
            certificate.signatures.push(CommitSignature {
                validator: public,
                signature: key.sign(&self.genesis.chain_id, VOTE_SIGN_TAG, &bytes),
            });
        }
        certificate.signatures.sort_by_key(|s| s.validator);
        let committed = Committed {
            block: executed.block.clone(),
            receipts: executed.receipts.clone(),
        };
        self.chain.commit(executed, &certificate)?;
        self.last_commit = Some(certificate);
        Ok(committed)
    }

    /// Export the chain so far to `out`.
    pub fn export(&self, out: &Path) -> Result<ExportSummary> {
        let genesis_path = Path::new("<fixture genesis>");
        Ok(export_store(
            self.chain.store(),
            &self.genesis,
            genesis_path,
            out,
            &mut Progress::silent(),
        )?)
    }
}

fn field(name: &str, sensitivity: Sensitivity) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        sensitivity,
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// A resident pseudonym for the demo (a keyed hash would be computed off chain).
pub fn resident(n: u32) -> ResidentId {
    ResidentId(Hash::tagged("gongzhi/audit-fixture/resident", &n.to_le_bytes()).0)
}

fn grant_id(output: CallOutput) -> Result<GrantId> {
    match output {
        CallOutput::Grant(id) => Ok(id),
        other => bail!("expected a grant id, got {other:?}"),
    }
}

/// Play the demo district's stories on a fresh chain from [`demo_genesis`] (13 blocks, 26 txs).
pub fn run_demo_story(c: &mut FixtureChain) -> Result<()> {
    let now = c.now();
    let elderly = DatasetId("elderly-roll".into());
    let garbage = DatasetId("garbage-sorting".into());
    let b = commit(
        vec![
            c_tx(
                c,
                "civil-affairs",
                Call::RegisterDataset {
                    id: elderly.clone(),
                    name: "Elderly-care subsidy roll (养老补贴)".into(),
                    fields: vec![
                        field("age", Sensitivity::Internal),
                        field("district", Sensitivity::Public),
                        field("name", Sensitivity::Personal),
                        field("subsidy", Sensitivity::Sensitive),
                    ],
                },
            ),
            c_tx(
                c,
                "yuetan-street",
                Call::RegisterDataset {
                    id: garbage.clone(),
                    name: "Garbage-sorting records (垃圾分类)".into(),
                    fields: vec![
                        field("household", Sensitivity::Internal),
                        field("score", Sensitivity::Public),
                    ],
                },
            ),
        ],
        c,
    )?;
    b.output(0)?;
    let request = |purpose: &str, fields: &[&str], why: &str| {
        Call::RequestAccess(AccessRequestArgs {
            dataset: elderly.clone(),
            fields: strings(fields),
            purpose: PurposeCode(purpose.into()),
            valid_from: now,
            valid_until: now.plus_millis(90 * DAY),
            justification: why.into(),
        })
    };
    let health_request = request(
        "elderly-care",
        &["age", "district"],
        "home visits for residents over 80",
    );
    let police_request = request(
        "emergency-response",
        &["age", "district"],
        "evacuation planning",
    );
    let b = commit(
        vec![
            c_tx(c, "health-commission", health_request),
            c_tx(c, "police-subbureau", police_request),
        ],
        c,
    )?;
    let (CallOutput::Request(health_req), CallOutput::Request(police_req)) =
        (b.output(0)?, b.output(1)?)
    else {
        bail!("access requests did not return request ids");
    };
    let b = commit(
        vec![
            c_tx(
                c,
                "civil-affairs",
                Call::ApproveRequest {
                    request: health_req,
                    terms: GrantTerms {
                        max_uses: Some(100),
                        delegation_depth: 0,
                        co_approver: None,
                        consent_hash: None,
                    },
                },
            ),
            c_tx(
                c,
                "civil-affairs",
                Call::RejectRequest {
                    request: police_req,
                    reason: "emergency use goes through the district emergency office".into(),
                },
            ),
        ],
        c,
    )?;
    let health_grant = grant_id(b.output(0)?)?;
    let new_grant = |grantee: &str, purpose: &str, hours: u64, depth: u8| {
        Call::IssueGrant(NewGrant {
            grantee: OrgId(grantee.into()),
            dataset: garbage.clone(),
            fields: strings(&["score"]),
            purposes: vec![PurposeCode(purpose.into())],
            valid_from: now,
            valid_until: now.plus_millis(hours * HOUR),
            terms: GrantTerms {
                delegation_depth: depth,
                ..GrantTerms::default()
            },
            parent: None,
        })
    };
    let b = commit(
        vec![
            c_tx(
                c,
                "yuetan-street",
                new_grant("police-subbureau", "emergency-response", 2, 0),
            ),
            c_tx(
                c,
                "yuetan-street",
                new_grant("civil-affairs", "community-statistics", 24 * 60, 1),
            ),
            c_tx(
                c,
                "health-commission",
                Call::RecordUse(UseRecord {
                    grant: health_grant,
                    fields: strings(&["age"]),
                    purpose: PurposeCode("elderly-care".into()),
                    reference: None,
                }),
            ),
        ],
        c,
    )?;
    let parent = grant_id(b.output(1)?)?;
    commit(
        vec![c_tx(
            c,
            "civil-affairs",
            Call::DelegateGrant(Delegation {
                parent,
                grantee: OrgId("zhanlan-street".into()),
                fields: strings(&["score"]),
                purposes: vec![PurposeCode("community-statistics".into())],
                valid_from: now,
                valid_until: now.plus_millis(24 * 30 * HOUR),
                max_uses: None,
                delegation_depth: 0,
            }),
        )],
        c,
    )?
    .output(0)?;
    commit(
        vec![c_tx(
            c,
            "yuetan-street",
            Call::RevokeGrant {
                grant: parent,
                reason: "statistics project closed".into(),
            },
        )],
        c,
    )?
    .output(0)?;
    civility_story(c)?;
    governance_story(c)?;
    // Let the police grant (2 hours) expire.
    c.advance(3 * HOUR);
    commit(
        vec![c_tx(
            c,
            "health-commission",
            Call::RecordUse(UseRecord {
                grant: health_grant,
                fields: strings(&["district"]),
                purpose: PurposeCode("elderly-care".into()),
                reference: None,
            }),
        )],
        c,
    )?
    .output(0)?;
    Ok(())
}

fn c_tx(c: &mut FixtureChain, org: &str, call: Call) -> Tx {
    c.tx(org, &call)
}

/// Sign-then-commit helper: `txs` are built before the block borrows the chain.
fn commit(txs: Vec<Tx>, c: &mut FixtureChain) -> Result<Committed> {
    c.commit_block(txs)
}

fn civility_story(c: &mut FixtureChain) -> Result<()> {
    let award = |n: u32, reason: &str, points: u64| Call::Award {
        resident: resident(n),
        reason: ReasonCode(reason.into()),
        points,
    };
    // yuetan-street's quota is 30 points: the seventh award of 5 breaches it.
    let mut txs: Vec<Tx> = (1..=7)
        .map(|n| c_tx(c, "yuetan-street", award(n, "garbage-sorting", 5)))
        .collect();
    txs.push(c_tx(c, "civil-affairs", award(1, "volunteering", 20)));
    txs.push(c_tx(c, "zhanlan-street", award(2, "neighbourly-help", 8)));
    let b = c.commit_block(txs)?;
    let first_award = match b.output(0)? {
        CallOutput::Record(id) => id,
        other => bail!("award returned {other:?}"),
    };
    let b = commit(
        vec![
            c_tx(
                c,
                "service-point",
                Call::Redeem {
                    resident: resident(1),
                    points: 10,
                    item: "rice (大米) 5 kg".into(),
                },
            ),
            c_tx(
                c,
                "yuetan-street",
                Call::Reverse {
                    record: RecordId(first_award.0 + 2),
                    why: "duplicate entry for the same sorting day".into(),
                },
            ),
        ],
        c,
    )?;
    b.output(0)?;
    b.output(1)?;
    Ok(())
}

fn governance_story(c: &mut FixtureChain) -> Result<()> {
    let action = ProposalAction::SetValidator {
        org: OrgId("civil-affairs".into()),
        validator: Some(ValidatorSpec {
            key: validator_key("civil-affairs").public(),
            power: 3,
        }),
    };
    let b = commit(vec![c_tx(c, "civil-affairs", Call::Propose(action))], c)?;
    let id: ProposalId = match b.output(0)? {
        CallOutput::Proposal(progress) => progress.id,
        other => bail!("propose returned {other:?}"),
    };
    let b = commit(
        vec![
            c_tx(c, "yuetan-street", Call::Approve(id)),
            c_tx(c, "zhanlan-street", Call::Approve(id)),
        ],
        c,
    )?;
    match b.output(1)? {
        CallOutput::Proposal(progress) if progress.passed => {}
        other => bail!("the power change did not pass: {other:?}"),
    }
    // Two more blocks so the new set commits blocks.
    c.commit_block(Vec::new())?;
    c.commit_block(Vec::new())?;
    Ok(())
}
