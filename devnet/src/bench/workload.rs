//! What the load generator sends: many signers in the genesis, the setup the calls need, and
//! the stream of signed grant and credit txs.
//!
//! Signers: every issuer organisation of the demo district (street offices, the property
//! manager) and two grantees (health commission, police sub-bureau) get `keys_per_org` extra
//! operator keys in the genesis, so per-signer nonce order and the mempool's per-signer limit
//! do not cap throughput. Issuers get a quota no benchmark can exhaust.
//!
//! Setup (before any timing): each issuer registers a dataset `bench-<org>` and grants it to
//! both grantees without a use limit, so grantees can record uses.
//!
//! The mix, by tx index modulo 10: 0–3 `IssueGrant` (an issuer grants its dataset to a member),
//! 4–5 `RecordUse` (a grantee records a use of a setup grant), 6–9 `Award` (an issuer awards
//! 1–5 points to a resident). Invariant: each signer's nonces are handed out in order,
//! starting after its committed nonce (0: the keys are fresh).

use std::collections::BTreeMap;
use std::collections::VecDeque;

use anyhow::{bail, Result};
use gongzhi_contracts::grants::lifecycle::{NewGrant, UseRecord};
use gongzhi_contracts::grants::{FieldSpec, GrantTerms, Sensitivity};
use gongzhi_contracts::{Call, CallOutput, Genesis, GrantId, ReasonCode, ResidentId};
use gongzhi_ledger::{Canonical, Hash, Keypair, Outcome, Timestamp};

use crate::demo::{self, Submitter};

/// Organisations that receive grants and record their uses.
const GRANTEES: [&str; 2] = ["health-commission", "police-xicheng"];
/// Members an issuer grants to during the load (never itself).
const GRANT_TARGETS: [&str; 3] = ["health-commission", "police-xicheng", "sanlihe-service"];
/// Fields of every bench dataset (none sensitive: grants need no co-approval).
const FIELDS: [&str; 5] = ["building", "unit", "household_code", "date", "status"];
/// Purposes the bench grants cover.
const PURPOSES: [&str; 2] = ["governance-statistics", "elderly-care"];
/// An issuer quota no benchmark reaches (points per period).
const UNLIMITED_QUOTA: u64 = 1 << 50;

/// Demo organisations that issue civility points (and own a bench dataset).
pub fn issuer_orgs(validators: usize) -> Vec<&'static str> {
    demo::organisations(validators)
        .into_iter()
        .filter(|o| o.roles.contains(&"issuer"))
        .map(|o| o.id)
        .collect()
}

fn bench_key(seed: &str, org: &str, index: usize) -> Keypair {
    demo::demo_key(seed, org, &format!("bench-signer-{index}"))
}

/// The demo genesis with `keys_per_org` extra operator keys for every issuer and grantee,
/// and unlimited issuer quotas.
pub fn bench_genesis(
    chain_id: &str,
    seed: &str,
    validators: usize,
    keys_per_org: usize,
    genesis_time: Timestamp,
) -> Genesis {
    let mut genesis = demo::genesis(chain_id, seed, validators, genesis_time);
    let issuers = issuer_orgs(validators);
    for org in &mut genesis.organisations {
        let id = org.id.as_str();
        if issuers.contains(&id) {
            org.issuer_quota = Some(UNLIMITED_QUOTA);
        }
        if issuers.contains(&id) || GRANTEES.contains(&id) {
            org.operator_keys
                .extend((0..keys_per_org).map(|i| bench_key(seed, id, i).public().to_hex()));
        }
    }
    genesis
}

fn dataset_of(org: &str) -> String {
    format!("bench-{org}")
}

/// Grants the setup created: grantee org → grant ids (one per issuer).
#[derive(Debug, Clone, Default)]
pub struct SetupGrants(pub BTreeMap<String, Vec<GrantId>>);

/// Register the bench datasets and the grants grantees record uses of, through `submitter`
/// (the organisations' base operator keys, each call waiting for its commit).
pub fn setup<S: Submitter>(submitter: &mut S, validators: usize) -> Result<SetupGrants> {
    let now = submitter.chain_time()?;
    let mut grants = SetupGrants::default();
    for issuer in issuer_orgs(validators) {
        let call = Call::RegisterDataset {
            id: dataset_of(issuer).as_str().into(),
            name: format!("Bench dataset of {issuer}"),
            fields: FIELDS
                .iter()
                .map(|f| FieldSpec {
                    name: (*f).into(),
                    sensitivity: Sensitivity::Internal,
                })
                .collect(),
        };
        expect_success(
            submitter.submit(issuer, call)?.1.outcome,
            "register a dataset",
        )?;
        for grantee in GRANTEES {
            let call = Call::IssueGrant(NewGrant {
                grantee: grantee.into(),
                dataset: dataset_of(issuer).as_str().into(),
                fields: FIELDS.iter().map(|f| f.to_string()).collect(),
                purposes: PURPOSES.iter().map(|p| (*p).into()).collect(),
                valid_from: now,
                valid_until: now.plus_millis(10 * 365 * 24 * 3600 * 1000),
                terms: GrantTerms::default(),
                parent: None,
            });
            let outcome = submitter.submit(issuer, call)?.1.outcome;
            match CallOutput::from_data(&expect_success(outcome, "issue a setup grant")?)? {
                CallOutput::Grant(id) => grants.0.entry(grantee.to_string()).or_default().push(id),
                other => bail!("issuing a setup grant returned {other:?}, not a grant id"),
            }
        }
    }
    Ok(grants)
}

fn expect_success(outcome: Outcome, what: &str) -> Result<Vec<u8>> {
    match outcome {
        Outcome::Success { data } => Ok(data),
        Outcome::Failure { name, message, .. } => bail!("could not {what}: {name}: {message}"),
    }
}

/// A signed tx ready to submit.
#[derive(Debug, Clone)]
pub struct SignedTx {
    /// Its hash (how commits are matched).
    pub hash: Hash,
    /// Canonical bytes.
    pub bytes: Vec<u8>,
    /// Its signer's number (issuers first, then grantees): the same for all of a signer's
    /// txs, so a load can send each signer's txs to one node.
    pub signer: usize,
}

#[derive(Debug)]
struct Signer {
    org: &'static str,
    key: Keypair,
    nonce: u64,
}

/// Hands out the calls of the mix with their signer and nonce, signed on demand or ahead.
#[derive(Debug)]
pub struct Workload {
    chain_id: String,
    issuers: Vec<Signer>,
    grantees: Vec<Signer>,
    grants: SetupGrants,
    start_time: Timestamp,
    next_index: u64,
    issuer_cursor: usize,
    grantee_cursor: usize,
    presigned: VecDeque<SignedTx>,
}

impl Workload {
    /// The workload of a devnet made with [`bench_genesis`] (same seed and `keys_per_org`)
    /// after [`setup`]. `start_time` opens the grants' validity.
    pub fn new(
        chain_id: &str,
        seed: &str,
        validators: usize,
        keys_per_org: usize,
        grants: SetupGrants,
        start_time: Timestamp,
    ) -> Result<Workload> {
        if keys_per_org == 0 {
            bail!("the load needs at least one signer per organisation (--signers-per-org)");
        }
        let signers = |orgs: &[&'static str]| -> Vec<Signer> {
            // Interleave organisations so consecutive txs come from different orgs.
            (0..keys_per_org)
                .flat_map(|i| {
                    orgs.iter().map(move |org| Signer {
                        org,
                        key: bench_key(seed, org, i),
                        nonce: 0,
                    })
                })
                .collect()
        };
        let issuers = issuer_orgs(validators);
        if issuers.is_empty() {
            bail!("the demo district of {validators} validators has no issuer");
        }
        Ok(Workload {
            chain_id: chain_id.to_string(),
            issuers: signers(&issuers),
            grantees: signers(&GRANTEES),
            grants,
            start_time,
            next_index: 0,
            issuer_cursor: 0,
            grantee_cursor: 0,
            presigned: VecDeque::new(),
        })
    }

    /// Number of signing keys the load uses.
    pub fn signer_count(&self) -> usize {
        self.issuers.len() + self.grantees.len()
    }

    /// The next call of the mix with its signer's index (issuers first, then grantees) and
    /// nonce. Advances the signer's nonce.
    fn next_call(&mut self) -> (bool, usize, u64, Call) {
        let index = self.next_index;
        self.next_index += 1;
        let kind = index % 10;
        if (4..=5).contains(&kind) {
            let slot = self.grantee_cursor % self.grantees.len();
            self.grantee_cursor += 1;
            let signer = &mut self.grantees[slot];
            signer.nonce += 1;
            let grants = self.grants.0.get(signer.org).map_or(&[][..], Vec::as_slice);
            let grant = grants
                .get(index as usize / 10 % grants.len().max(1))
                .copied()
                .unwrap_or(GrantId(0));
            let call = Call::RecordUse(UseRecord {
                grant,
                fields: vec![FIELDS[index as usize % FIELDS.len()].to_string()],
                purpose: PURPOSES[0].into(),
                reference: None,
            });
            return (false, slot, signer.nonce, call);
        }
        let slot = self.issuer_cursor % self.issuers.len();
        self.issuer_cursor += 1;
        let signer = &mut self.issuers[slot];
        signer.nonce += 1;
        let call = if kind <= 3 {
            let targets: Vec<&str> = GRANT_TARGETS
                .iter()
                .copied()
                .filter(|t| *t != signer.org)
                .collect();
            Call::IssueGrant(NewGrant {
                grantee: targets[index as usize % targets.len()].into(),
                dataset: dataset_of(signer.org).as_str().into(),
                fields: FIELDS[..1 + index as usize % FIELDS.len()]
                    .iter()
                    .map(|f| f.to_string())
                    .collect(),
                purposes: vec![PURPOSES[index as usize % PURPOSES.len()].into()],
                valid_from: self.start_time,
                valid_until: self.start_time.plus_millis(365 * 24 * 3600 * 1000),
                terms: GrantTerms {
                    max_uses: Some(1000),
                    ..GrantTerms::default()
                },
                parent: None,
            })
        } else {
            let resident: [u8; 32] = blake3::hash(&index.to_le_bytes()).into();
            Call::Award {
                resident: ResidentId(resident),
                reason: ReasonCode::from("garbage-sorting"),
                points: 1 + index % 5,
            }
        };
        (true, slot, signer.nonce, call)
    }

    fn sign_batch(&self, batch: &[(bool, usize, u64, Call)]) -> Vec<SignedTx> {
        batch
            .iter()
            .map(|(issuer, slot, nonce, call)| {
                let signer = if *issuer {
                    &self.issuers[*slot]
                } else {
                    &self.grantees[*slot]
                };
                let tx = call.sign(&signer.key, &self.chain_id, *nonce);
                SignedTx {
                    hash: tx.hash(),
                    bytes: tx.encode(),
                    signer: if *issuer {
                        *slot
                    } else {
                        self.issuers.len() + slot
                    },
                }
            })
            .collect()
    }

    /// Sign the next `count` txs now, on `threads` threads, to hand out later without
    /// signing on the timed path.
    pub fn presign(&mut self, count: usize, threads: usize) {
        let calls: Vec<_> = (0..count).map(|_| self.next_call()).collect();
        let chunk = calls.len().div_ceil(threads.max(1)).max(1);
        let this = &*self;
        let signed: Vec<Vec<SignedTx>> = std::thread::scope(|scope| {
            let handles: Vec<_> = calls
                .chunks(chunk)
                .map(|part| scope.spawn(move || this.sign_batch(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        self.presigned.extend(signed.into_iter().flatten());
    }

    /// Txs signed ahead and not yet handed out.
    pub fn presigned_left(&self) -> usize {
        self.presigned.len()
    }

    /// The next tx: a presigned one, else signed now.
    pub fn next_tx(&mut self) -> SignedTx {
        if let Some(tx) = self.presigned.pop_front() {
            return tx;
        }
        let call = self.next_call();
        let mut signed = self.sign_batch(std::slice::from_ref(&call));
        signed.pop().unwrap_or_else(|| SignedTx {
            hash: Hash::ZERO,
            bytes: Vec::new(),
            signer: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gongzhi_ledger::Tx;

    #[test]
    fn genesis_is_valid_and_nonces_run_per_signer() {
        let genesis = bench_genesis("bench-test", "seed", 4, 3, Timestamp(1_000));
        genesis.validate().expect("bench genesis validates");
        let grants = SetupGrants(BTreeMap::from([
            (
                "health-commission".to_string(),
                vec![GrantId(1), GrantId(2)],
            ),
            ("police-xicheng".to_string(), vec![GrantId(3)]),
        ]));
        let mut load =
            Workload::new("bench-test", "seed", 4, 3, grants, Timestamp(1_000)).expect("load");
        assert_eq!(load.signer_count(), 3 * 3 + 2 * 3);
        load.presign(200, 2);
        let mut last: BTreeMap<_, u64> = BTreeMap::new();
        for _ in 0..300 {
            let signed = load.next_tx();
            let tx = Tx::decode(&signed.bytes).expect("decodes");
            assert_eq!(tx.hash(), signed.hash);
            tx.verify("bench-test").expect("signature verifies");
            let previous = last.insert(tx.body.signer, tx.body.nonce).unwrap_or(0);
            assert_eq!(tx.body.nonce, previous + 1, "gap-free nonces per signer");
        }
    }
}
