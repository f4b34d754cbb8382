//! Golden tables for the quorum maths and the proposer rotation
//! (`testdata/quorum.txt`).
#![allow(clippy::unwrap_used)]

use gongzhi_consensus::quorum::*;
use gongzhi_consensus::{Validator, ValidatorId, ValidatorSet};

fn table() -> Vec<Vec<String>> {
    // The directory of the checkout being tested: `cargo test` sets it at run time. (The
    // compile-time value names wherever the binary was built, and a shared target directory
    // can hand this checkout a test binary built from another one.)
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{dir}/testdata/quorum.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn quorum_golden_table() {
    let mut checked = 0;
    for row in table() {
        let n = |i: usize| row[i].parse::<u64>().unwrap();
        match row[0].as_str() {
            "q" => {
                let (total, power) = (n(1), n(2));
                assert_eq!(is_quorum(power, total), row[3] == "true", "row {row:?}");
                assert_eq!(
                    is_one_third_plus(power, total),
                    row[4] == "true",
                    "row {row:?}"
                );
            }
            "t" => {
                assert_eq!(quorum_threshold(n(1)), n(2), "row {row:?}");
                assert_eq!(one_third_plus_threshold(n(1)), n(3), "row {row:?}");
            }
            "s" => {
                let validators = row[1]
                    .split(',')
                    .enumerate()
                    .map(|(i, p)| Validator {
                        id: ValidatorId([i as u8; 32]),
                        power: p.parse().unwrap(),
                    })
                    .collect();
                let set = ValidatorSet::new(validators).unwrap();
                let expected: Vec<u32> = row[2].split(',').map(|i| i.parse().unwrap()).collect();
                assert_eq!(set.proposer_schedule(), expected.as_slice(), "row {row:?}");
            }
            other => panic!("unknown row kind {other}"),
        }
        checked += 1;
    }
    assert!(checked > 30);
}

#[test]
fn thresholds_agree_with_predicates() {
    for total in 1..200u64 {
        let q = quorum_threshold(total);
        assert!(is_quorum(q, total) && !is_quorum(q - 1, total));
        let f1 = one_third_plus_threshold(total);
        assert!(is_one_third_plus(f1, total) && !is_one_third_plus(f1 - 1, total));
    }
}

#[test]
fn validator_set_rejects_bad_input() {
    use gongzhi_consensus::ConsensusError;
    let v = |b: u8, power| Validator {
        id: ValidatorId([b; 32]),
        power,
    };
    assert_eq!(
        ValidatorSet::new(vec![]),
        Err(ConsensusError::EmptyValidatorSet)
    );
    assert_eq!(
        ValidatorSet::new(vec![v(1, 1), v(1, 2)]),
        Err(ConsensusError::DuplicateValidator(ValidatorId([1; 32])))
    );
    assert_eq!(
        ValidatorSet::new(vec![v(1, 0)]),
        Err(ConsensusError::ZeroPower(ValidatorId([1; 32])))
    );
    assert_eq!(
        ValidatorSet::new(vec![v(1, u64::MAX), v(2, 1)]),
        Err(ConsensusError::TotalPowerOverflow)
    );
    let set = ValidatorSet::new(vec![v(3, 1), v(1, 2)]).unwrap();
    assert_eq!(set.validators()[0].id, ValidatorId([1; 32]));
    assert_eq!(set.index_of(&ValidatorId([3; 32])), Some(1));
    assert_eq!(set.total_power(), 3);
}
