//! A small chain in memory for contract tests: a demo genesis, deterministic keys, and
//! helpers that execute one-tx blocks and check that failed txs change only the nonce.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use gongzhi_contracts::call::{Call, CallOutput};
use gongzhi_contracts::governance::proposals::ProposalAction;
use gongzhi_contracts::grants::lifecycle::NewGrant;
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{
    execute_block, genesis_changes, keys, BlockContext, DatasetId, ErrorKind, Genesis, GenesisOrg,
    GenesisPurpose, GenesisReason, GrantId, OrgId, PurposeCode, ResidentId,
};
use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::{Keypair, MemoryState, Outcome, PublicKey, Timestamp, Tx};

pub const CHAIN: &str = "gongzhi-test";
pub const T0: u64 = 1_767_225_600_000;
pub const HOUR: u64 = 3_600_000;
pub const DAY: u64 = 24 * HOUR;

/// (org id, kind, roles, validator power, operator seed)
pub const ORGS: &[(&str, &str, &[&str], u64, u8)] = &[
    (
        "street-a",
        "street-office",
        &["validator", "member", "issuer"],
        1,
        1,
    ),
    ("street-b", "street-office", &["validator", "member"], 1, 2),
    (
        "property",
        "property-manager",
        &["validator", "member"],
        1,
        3,
    ),
    (
        "civil-affairs",
        "city-department",
        &["validator", "member", "issuer"],
        3,
        4,
    ),
    ("health", "city-department", &["member"], 0, 5),
    ("police", "city-department", &["member"], 0, 6),
    ("service-point", "service-point", &["service-point"], 0, 7),
    ("auditor", "auditor", &["auditor"], 0, 8),
];

pub fn operator_key(org: &str) -> Keypair {
    let seed = ORGS.iter().find(|o| o.0 == org).map(|o| o.4).unwrap();
    Keypair::from_secret([seed; 32])
}

pub fn validator_key(seed: u8) -> Keypair {
    Keypair::from_secret([100 + seed; 32])
}

pub fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        genesis_time: T0,
        parameters: Default::default(),
        organisations: ORGS
            .iter()
            .map(|(id, kind, roles, power, seed)| GenesisOrg {
                id: id.to_string(),
                kind: kind.to_string(),
                name: format!("{id} (测试)"),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                operator_keys: vec![Keypair::from_secret([*seed; 32]).public().to_hex()],
                node_keys: Vec::new(),
                validator_key: (*power > 0).then(|| validator_key(*seed).public().to_hex()),
                power: (*power > 0).then_some(*power),
                issuer_quota: (*id == "street-a").then_some(50),
            })
            .collect(),
        purposes: ["elderly-care", "emergency", "subsidy"]
            .iter()
            .map(|c| GenesisPurpose {
                code: c.to_string(),
                label: format!("{c} label"),
            })
            .collect(),
        reasons: vec![
            GenesisReason {
                code: "volunteering".into(),
                label: "Volunteering (志愿服务)".into(),
                max_points: 20,
            },
            GenesisReason {
                code: "garbage-sorting".into(),
                label: "Garbage sorting (垃圾分类)".into(),
                max_points: 5,
            },
        ],
    }
}

pub fn resident(n: u8) -> ResidentId {
    ResidentId([n; 32])
}

pub fn fields(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn org(id: &str) -> OrgId {
    OrgId(id.into())
}

pub fn purpose(code: &str) -> PurposeCode {
    PurposeCode(code.into())
}

pub fn dataset(id: &str) -> DatasetId {
    DatasetId(id.into())
}

#[derive(Debug, Clone)]
pub struct World {
    pub state: MemoryState,
    pub height: u64,
    pub time: u64,
    nonces: BTreeMap<PublicKey, u64>,
}

impl World {
    /// Genesis state plus the demo datasets: `elderly-roll` (civil-affairs) and `garbage` (street-a).
    pub fn new() -> World {
        let mut w = World::bare();
        w.ok(
            "civil-affairs",
            Call::RegisterDataset {
                id: dataset("elderly-roll"),
                name: "Elderly-care subsidy roll (养老补贴)".into(),
                fields: vec![
                    field("name", Sensitivity::Personal),
                    field("age", Sensitivity::Internal),
                    field("district", Sensitivity::Public),
                    field("subsidy", Sensitivity::Sensitive),
                ],
            },
        );
        w.ok(
            "street-a",
            Call::RegisterDataset {
                id: dataset("garbage"),
                name: "Garbage sorting records".into(),
                fields: vec![
                    field("household", Sensitivity::Internal),
                    field("score", Sensitivity::Public),
                ],
            },
        );
        w
    }

    pub fn bare() -> World {
        let mut state = MemoryState::new();
        apply_changes(&mut state, &genesis_changes(&genesis()).unwrap());
        World {
            state,
            height: 0,
            time: T0,
            nonces: BTreeMap::new(),
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp(self.time)
    }

    pub fn advance(&mut self, ms: u64) {
        self.time += ms;
    }

    pub fn next_tx(&mut self, key: &Keypair, call: &Call) -> Tx {
        let nonce = self.nonces.entry(key.public()).or_insert(0);
        *nonce += 1;
        call.sign(key, CHAIN, *nonce)
    }

    /// Execute one block; returns the outcomes. Checks the "failed tx changes only its nonce"
    /// rule when the block has one tx.
    pub fn block(&mut self, txs: Vec<Tx>) -> Vec<Outcome> {
        let outcome = self.execute_next(&txs);
        if let ([tx], [receipt]) = (txs.as_slice(), outcome.receipts.as_slice()) {
            if let Outcome::Failure { code, .. } = &receipt.outcome {
                let touched: Vec<&Vec<u8>> = outcome
                    .changes
                    .keys()
                    .filter(|k| k.as_slice() != keys::VALIDATORS_NEXT)
                    .collect();
                let nonce_key = keys::nonce(&tx.body.signer);
                let allowed: &[&Vec<u8>] = if [100, 101, 102].contains(code) {
                    &[]
                } else {
                    &[&nonce_key]
                };
                assert_eq!(
                    touched, allowed,
                    "failed tx (code {code}) changed more than its nonce"
                );
            }
        }
        apply_changes(&mut self.state, &outcome.changes);
        // Keep our nonce book in line with what the chain accepted.
        for (tx, receipt) in txs.iter().zip(&outcome.receipts) {
            if let Outcome::Failure { code, .. } = &receipt.outcome {
                if [100, 101, 102].contains(code) {
                    if let Some(n) = self.nonces.get_mut(&tx.body.signer) {
                        if *n == tx.body.nonce {
                            *n -= 1;
                        }
                    }
                }
            }
        }
        outcome.receipts.into_iter().map(|r| r.outcome).collect()
    }

    /// Execute one block and apply it; returns its receipts and changes (no nonce
    /// bookkeeping: for blocks whose txs all succeed).
    pub fn execute(&mut self, txs: &[Tx]) -> gongzhi_contracts::BlockOutcome {
        let outcome = self.execute_next(txs);
        apply_changes(&mut self.state, &outcome.changes);
        outcome
    }

    /// Execute `txs` as the next block, one second later, without applying its changes.
    fn execute_next(&mut self, txs: &[Tx]) -> gongzhi_contracts::BlockOutcome {
        self.height += 1;
        self.time += 1000;
        let ctx = BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time: Timestamp(self.time),
        };
        execute_block(&self.state, &ctx, txs).unwrap()
    }

    pub fn run(&mut self, signer: &str, call: Call) -> Outcome {
        let key = operator_key(signer);
        let tx = self.next_tx(&key, &call);
        self.block(vec![tx]).pop().unwrap()
    }

    pub fn ok(&mut self, signer: &str, call: Call) -> CallOutput {
        match self.run(signer, call.clone()) {
            Outcome::Success { data } => CallOutput::from_data(&data).unwrap(),
            Outcome::Failure { name, message, .. } => {
                panic!("{signer} {call:?} failed: {name}: {message}")
            }
        }
    }

    pub fn fail(&mut self, signer: &str, call: Call) -> Outcome {
        let outcome = self.run(signer, call.clone());
        assert!(
            matches!(outcome, Outcome::Failure { .. }),
            "{signer} {call:?} should fail"
        );
        outcome
    }

    /// Propose with civil-affairs and approve with the other validators until it passes.
    pub fn pass(&mut self, action: ProposalAction) {
        let mut progress = match self.ok("civil-affairs", Call::Propose(action)) {
            CallOutput::Proposal(p) => p,
            other => panic!("unexpected {other:?}"),
        };
        for approver in ["street-a", "street-b", "property"] {
            if progress.passed {
                return;
            }
            let org = gongzhi_contracts::query::get_org(&self.state, &org(approver))
                .unwrap()
                .unwrap();
            if org.voting_power() == 0 {
                continue;
            }
            progress = match self.ok(approver, Call::Approve(progress.id)) {
                CallOutput::Proposal(p) => p,
                other => panic!("unexpected {other:?}"),
            };
        }
        assert!(progress.passed, "proposal did not pass: {progress:?}");
    }

    /// civil-affairs grants `grantee` the given fields of elderly-roll for elderly-care, one day.
    pub fn issue(&mut self, grantee: &str, fields_: &[&str], terms: GrantTerms) -> Outcome {
        let now = self.time;
        self.run(
            "civil-affairs",
            Call::IssueGrant(NewGrant {
                grantee: org(grantee),
                dataset: dataset("elderly-roll"),
                fields: fields(fields_),
                purposes: vec![purpose("elderly-care")],
                valid_from: Timestamp(now),
                valid_until: Timestamp(now + DAY),
                terms,
                parent: None,
            }),
        )
    }

    /// A non-sensitive grant (age, district) to health; returns its id.
    pub fn basic_grant(&mut self, terms: GrantTerms) -> GrantId {
        grant_id(self.issue("health", &["age", "district"], terms))
    }
}

pub fn field(name: &str, sensitivity: Sensitivity) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        sensitivity,
    }
}

pub fn grant_id(outcome: Outcome) -> GrantId {
    match outcome {
        Outcome::Success { data } => match CallOutput::from_data(&data).unwrap() {
            CallOutput::Grant(id) => id,
            other => panic!("expected a grant id, got {other:?}"),
        },
        Outcome::Failure { name, message, .. } => panic!("expected a grant, got {name}: {message}"),
    }
}

pub fn output(outcome: &Outcome) -> CallOutput {
    match outcome {
        Outcome::Success { data } => CallOutput::from_data(data).unwrap(),
        Outcome::Failure { name, message, .. } => panic!("expected success, got {name}: {message}"),
    }
}

pub fn failure_kind(outcome: &Outcome) -> Option<ErrorKind> {
    match outcome {
        Outcome::Failure { code, name, .. } => {
            let kind = ErrorKind::from_code(*code).unwrap();
            assert_eq!(kind.name(), name);
            Some(kind)
        }
        Outcome::Success { .. } => None,
    }
}
