//! Genesis: validation messages, TOML round trip, and the state at height 0.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use gongzhi_contracts::{genesis_changes, query, ContractError, Genesis};

fn problems(g: &Genesis) -> String {
    match g.validate() {
        Err(ContractError::InvalidGenesis { problems }) => problems.join("\n"),
        other => panic!("expected invalid genesis, got {other:?}"),
    }
}

#[test]
fn valid_genesis_builds_height_zero() {
    let g = genesis();
    g.validate().unwrap();
    let changes = genesis_changes(&g).unwrap();
    let mut state = gongzhi_ledger::MemoryState::new();
    gongzhi_ledger::state::apply_changes(&mut state, &changes);
    assert_eq!(query::list_orgs(&state).unwrap().len(), ORGS.len());
    assert_eq!(query::list_purposes(&state).unwrap().len(), 3);
    assert_eq!(query::list_reasons(&state).unwrap().len(), 2);
    assert_eq!(g.validator_set().unwrap().total_power(), 6);
    assert_eq!(genesis_changes(&g).unwrap(), changes, "deterministic");
}

#[test]
fn each_mistake_has_a_specific_message() {
    type Mutation = fn(&mut Genesis);
    let cases: Vec<(&str, Mutation)> = vec![
        ("duplicate organisation id", |g| {
            g.organisations[1].id = "street-a".into()
        }),
        ("unknown role \"mayor\"", |g| {
            g.organisations[4].roles.push("mayor".into())
        }),
        ("unknown kind", |g| {
            g.organisations[4].kind = "ministry".into()
        }),
        ("validator power is 0", |g| {
            g.organisations[0].power = Some(0)
        }),
        ("bad operator key", |g| {
            g.organisations[0].operator_keys[0] = "zz".into()
        }),
        ("no organisation is a validator", |g| {
            for o in &mut g.organisations {
                o.roles.retain(|r| r != "validator");
                o.validator_key = None;
                o.power = None;
            }
        }),
        ("is already used by", |g| {
            let k = g.organisations[0].operator_keys[0].clone();
            g.organisations[1].operator_keys[0] = k;
        }),
        ("duplicate purpose code", |g| {
            g.purposes[1].code = g.purposes[0].code.clone()
        }),
        ("max_points is 0", |g| g.reasons[0].max_points = 0),
        ("chain_id", |g| g.chain_id = String::new()),
        ("no validator_key", |g| {
            g.organisations[0].validator_key = None
        }),
        ("without the validator role", |g| {
            g.organisations[4].power = Some(3)
        }),
        ("parameters", |g| g.parameters.max_delegation_depth = 200),
    ];
    for (expected, mutate) in cases {
        let mut g = genesis();
        mutate(&mut g);
        let msg = problems(&g);
        assert!(msg.contains(expected), "expected {expected:?} in:\n{msg}");
    }
}

#[test]
fn toml_round_trip_with_defaults() {
    let g = genesis();
    let text = toml::to_string(&g).unwrap();
    let back: Genesis = toml::from_str(&text).unwrap();
    assert_eq!(back, g);
    let minimal = format!(
        r#"
chain_id = "gongzhi-xicheng-1"
genesis_time = 1767225600000
[parameters]
quota_period_ms = 86400000
[[organisations]]
id = "yuetan-street"
kind = "street-office"
name = "Yuetan Street Office (月坛街道办事处)"
roles = ["validator", "member"]
operator_keys = ["{}"]
validator_key = "{}"
power = 10
"#,
        operator_key("street-a").public().to_hex(),
        validator_key(1).public().to_hex()
    );
    let g: Genesis = toml::from_str(&minimal).unwrap();
    g.validate().unwrap();
    assert_eq!(g.parameters.quota_period_ms, 86_400_000);
    assert_eq!(
        g.parameters.max_fields_per_dataset, 64,
        "unset parameters take defaults"
    );
}
