//! The genesis document and the state at height 0.
//!
//! [`Genesis`] is what operators write (TOML-friendly: keys as hex strings, kinds and roles as
//! names, times in milliseconds since the Unix epoch). [`Genesis::validate`] reports every
//! problem at once, each naming the entry at fault; [`genesis_changes`] produces the state at
//! height 0 (only from a valid document), with the validator schedule's `next` and `after`
//! both set to [`Genesis::validator_set`].
//!
//! Example (TOML):
//! ```toml
//! chain_id = "gongzhi-xicheng-1"
//! genesis_time = 1767225600000
//! [parameters]
//! quota_period_ms = 2592000000
//! [[organisations]]
//! id = "yuetan-street"
//! kind = "street-office"
//! name = "Yuetan Street Office (月坛街道办事处)"
//! roles = ["validator", "member", "issuer"]
//! operator_keys = ["<64 hex>"]
//! validator_key = "<64 hex>"
//! power = 10
//! [[purposes]]
//! code = "elderly-care"
//! label = "Elderly care (养老服务)"
//! [[reasons]]
//! code = "volunteering"
//! label = "Volunteering (志愿服务)"
//! max_points = 20
//! ```

use gongzhi_ledger::codec::to_bytes;
use gongzhi_ledger::hash::tags;
use gongzhi_ledger::{
    Hash, MemoryState, Overlay, PublicKey, StateChanges, StateReader, Timestamp, ValidatorSet,
};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::governance::validators::{self, ValidatorEntry};
use crate::governance::{
    save_org, OrgKind, OrgStatus, Organisation, Parameters, Purpose, Reason, Role, ValidatorSpec,
};
use crate::keys;
use crate::store::{self, Writes};
use crate::types::{is_slug, OrgId, PurposeCode, ReasonCode};

/// The genesis document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Chain id every tx and block must carry (1-64 printable ASCII characters).
    pub chain_id: String,
    /// Genesis time, milliseconds since the Unix epoch; block 1's time must be later.
    pub genesis_time: u64,
    /// Chain parameters; missing fields take their defaults.
    #[serde(default)]
    pub parameters: Parameters,
    /// Founding organisations (at least one validator).
    pub organisations: Vec<GenesisOrg>,
    /// The purpose taxonomy.
    #[serde(default)]
    pub purposes: Vec<GenesisPurpose>,
    /// The civility reason catalogue.
    #[serde(default)]
    pub reasons: Vec<GenesisReason>,
}

/// A founding organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisOrg {
    /// Slug id, e.g. `yuetan-street`.
    pub id: String,
    /// `street-office`, `property-manager`, `city-department`, `auditor` or `service-point`.
    pub kind: String,
    /// Display name (any language).
    pub name: String,
    /// Any of `validator`, `member`, `issuer`, `service-point`, `auditor`.
    pub roles: Vec<String>,
    /// Operator public keys, 64 hex characters each (at least one).
    pub operator_keys: Vec<String>,
    /// Public keys (hex) of its observer nodes, which peers let connect without voting.
    #[serde(default)]
    pub node_keys: Vec<String>,
    /// Validator public key (hex); required with the `validator` role, forbidden without.
    #[serde(default)]
    pub validator_key: Option<String>,
    /// Voting power (≥ 1); required with the `validator` role.
    #[serde(default)]
    pub power: Option<u64>,
    /// Issuer quota per period; default: the `default_issuer_quota` parameter.
    #[serde(default)]
    pub issuer_quota: Option<u64>,
}

/// A purpose of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisPurpose {
    /// Slug code, e.g. `elderly-care`.
    pub code: String,
    /// Display label.
    pub label: String,
}

/// A reason of the civility catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisReason {
    /// Slug code, e.g. `garbage-sorting`.
    pub code: String,
    /// Display label.
    pub label: String,
    /// Most points per award (≥ 1).
    pub max_points: u64,
}

struct Parsed {
    orgs: Vec<Organisation>,
    purposes: Vec<Purpose>,
    reasons: Vec<Reason>,
}

impl Genesis {
    /// Check the document; the error lists every problem found.
    pub fn validate(&self) -> Result<(), ContractError> {
        self.parse().map(|_| ())
    }

    /// The validator set that commits blocks 1 and 2.
    pub fn validator_set(&self) -> Result<ValidatorSet, ContractError> {
        validators::to_validator_set(&self.validator_entries()?)
    }

    /// The genesis validators, sorted by key.
    pub fn validator_entries(&self) -> Result<Vec<ValidatorEntry>, ContractError> {
        let parsed = self.parse()?;
        let mut entries: Vec<ValidatorEntry> = parsed
            .orgs
            .iter()
            .filter_map(|org| {
                org.validator.map(|v| ValidatorEntry {
                    key: v.key,
                    power: v.power,
                    org: org.id.clone(),
                })
            })
            .collect();
        entries.sort_by_key(|e| e.key);
        Ok(entries)
    }

    /// Genesis time as block time.
    pub fn time(&self) -> Timestamp {
        Timestamp(self.genesis_time)
    }

    /// Hash of the document's canonical bytes (tag `gongzhi/genesis/v1`).
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::GENESIS, &to_bytes(self))
    }

    fn parse(&self) -> Result<Parsed, ContractError> {
        let mut problems = Vec::new();
        if self.chain_id.is_empty()
            || self.chain_id.len() > 64
            || !self.chain_id.bytes().all(|b| b.is_ascii_graphic())
        {
            problems.push(format!(
                "chain_id {:?} must be 1-64 printable ASCII characters without spaces",
                self.chain_id
            ));
        }
        problems.extend(
            self.parameters
                .problems()
                .into_iter()
                .map(|p| format!("parameters: {p}")),
        );
        let mut orgs: Vec<Organisation> = Vec::new();
        let mut all_keys: Vec<(PublicKey, String)> = Vec::new();
        for (index, entry) in self.organisations.iter().enumerate() {
            let at = format!("organisations[{index}] ({:?})", entry.id);
            if !is_slug(&entry.id) {
                problems.push(format!(
                    "{at}: id must be 1-64 characters of a-z, 0-9, '-', '_'"
                ));
            }
            if orgs.iter().any(|o| o.id.0 == entry.id) {
                problems.push(format!("{at}: duplicate organisation id {:?}", entry.id));
            }
            if entry.name.trim().is_empty() {
                problems.push(format!("{at}: name is empty"));
            }
            let kind = OrgKind::parse(&entry.kind).unwrap_or_else(|| {
                let names: Vec<&str> = OrgKind::NAMES.iter().map(|(n, _)| *n).collect();
                problems.push(format!(
                    "{at}: unknown kind {:?}; use one of {}",
                    entry.kind,
                    names.join(", ")
                ));
                OrgKind::CityDepartment
            });
            let mut roles = Vec::new();
            for name in &entry.roles {
                match Role::parse(name) {
                    Some(role) if !roles.contains(&role) => roles.push(role),
                    Some(_) => problems.push(format!("{at}: role {name:?} listed twice")),
                    None => {
                        let names: Vec<&str> = Role::NAMES.iter().map(|(n, _)| *n).collect();
                        problems.push(format!(
                            "{at}: unknown role {name:?}; use one of {}",
                            names.join(", ")
                        ));
                    }
                }
            }
            roles.sort();
            let mut parse_key = |hex: &str, what: &str, problems: &mut Vec<String>| {
                match PublicKey::from_hex(hex) {
                    Ok(key) => {
                        if let Some((_, owner)) = all_keys.iter().find(|(k, _)| *k == key) {
                            problems.push(format!("{at}: {what} {hex} is already used by {owner}"));
                        }
                        all_keys.push((key, format!("{at} {what}")));
                        Some(key)
                    }
                    Err(e) => {
                        problems.push(format!("{at}: bad {what} {hex:?}: {e}"));
                        None
                    }
                }
            };
            if entry.operator_keys.is_empty() {
                problems.push(format!("{at}: needs at least one operator key to sign txs"));
            }
            let operator_keys: Vec<PublicKey> = entry
                .operator_keys
                .iter()
                .filter_map(|hex| parse_key(hex, "operator key", &mut problems))
                .collect();
            let node_keys: Vec<PublicKey> = entry
                .node_keys
                .iter()
                .filter_map(|hex| parse_key(hex, "node key", &mut problems))
                .collect();
            let is_validator = roles.contains(&Role::Validator);
            let validator = match (is_validator, &entry.validator_key, entry.power) {
                (true, Some(hex), Some(power)) => {
                    if power == 0 {
                        problems.push(format!("{at}: validator power is 0; give it at least 1 or drop the validator role"));
                    }
                    parse_key(hex, "validator key", &mut problems)
                        .map(|key| ValidatorSpec { key, power })
                }
                (true, None, _) => {
                    problems.push(format!("{at}: has the validator role but no validator_key"));
                    None
                }
                (true, Some(_), None) => {
                    problems.push(format!("{at}: has the validator role but no power"));
                    None
                }
                (false, Some(_), _) | (false, _, Some(_)) => {
                    problems.push(format!(
                        "{at}: validator_key/power given without the validator role; add \"validator\" to roles or remove them"
                    ));
                    None
                }
                (false, None, None) => None,
            };
            orgs.push(Organisation {
                id: OrgId(entry.id.clone()),
                kind,
                name: entry.name.clone(),
                roles,
                operator_keys,
                validator,
                node_keys,
                issuer_quota: entry.issuer_quota,
                status: OrgStatus::Active,
            });
        }
        if !orgs
            .iter()
            .any(|o| o.validator.is_some_and(|v| v.power > 0))
        {
            problems.push(
                "no organisation is a validator with power ≥ 1; the chain could not make blocks"
                    .into(),
            );
        }
        let mut purposes: Vec<Purpose> = Vec::new();
        for (index, p) in self.purposes.iter().enumerate() {
            if !is_slug(&p.code) {
                problems.push(format!(
                    "purposes[{index}]: code {:?} must be a slug (a-z, 0-9, '-', '_')",
                    p.code
                ));
            }
            if purposes.iter().any(|q| q.code.0 == p.code) {
                problems.push(format!(
                    "purposes[{index}]: duplicate purpose code {:?}",
                    p.code
                ));
            }
            purposes.push(Purpose {
                code: PurposeCode(p.code.clone()),
                label: p.label.clone(),
            });
        }
        let mut reasons: Vec<Reason> = Vec::new();
        for (index, r) in self.reasons.iter().enumerate() {
            if !is_slug(&r.code) {
                problems.push(format!(
                    "reasons[{index}]: code {:?} must be a slug (a-z, 0-9, '-', '_')",
                    r.code
                ));
            }
            if reasons.iter().any(|q| q.code.0 == r.code) {
                problems.push(format!(
                    "reasons[{index}]: duplicate reason code {:?}",
                    r.code
                ));
            }
            if r.max_points == 0 {
                problems.push(format!(
                    "reasons[{index}] ({:?}): max_points is 0; use at least 1",
                    r.code
                ));
            }
            reasons.push(Reason {
                code: ReasonCode(r.code.clone()),
                label: r.label.clone(),
                max_points: r.max_points,
            });
        }
        if problems.is_empty() {
            Ok(Parsed {
                orgs,
                purposes,
                reasons,
            })
        } else {
            Err(ContractError::InvalidGenesis { problems })
        }
    }
}

/// The writes that make the state at height 0 (applied to an empty state).
pub fn genesis_changes(genesis: &Genesis) -> Result<StateChanges, ContractError> {
    let parsed = genesis.parse()?;
    let empty = MemoryState::new();
    let mut writes: Writes<'_> = Overlay::new(&empty as &dyn StateReader);
    store::write(&mut writes, keys::PARAMETERS.to_vec(), &genesis.parameters);
    store::write(
        &mut writes,
        keys::CHAIN_INFO.to_vec(),
        &(genesis.chain_id.clone(), genesis.genesis_time),
    );
    let mut ids = Vec::new();
    for org in &parsed.orgs {
        for key in &org.operator_keys {
            store::write(&mut writes, keys::signer(key), &org.id);
        }
        save_org(&mut writes, org);
        ids.push(org.id.clone());
    }
    store::write(&mut writes, keys::ORG_LIST.to_vec(), &ids);
    let mut codes: Vec<PurposeCode> = Vec::new();
    for p in &parsed.purposes {
        store::write(&mut writes, keys::purpose(&p.code), p);
        codes.push(p.code.clone());
    }
    codes.sort();
    store::write(&mut writes, keys::PURPOSE_LIST.to_vec(), &codes);
    let mut reason_codes: Vec<ReasonCode> = Vec::new();
    for r in &parsed.reasons {
        store::write(&mut writes, keys::reason(&r.code), r);
        reason_codes.push(r.code.clone());
    }
    reason_codes.sort();
    store::write(&mut writes, keys::REASON_LIST.to_vec(), &reason_codes);
    let entries = validators::from_org_table(&writes)?;
    store::write(&mut writes, keys::VALIDATORS_NEXT.to_vec(), &entries);
    store::write(&mut writes, keys::VALIDATORS_AFTER.to_vec(), &entries);
    Ok(writes.into_changes())
}
