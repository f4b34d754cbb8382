//! Canonical encoding: sign bytes are postcard over serde; signatures are
//! exactly 64-byte strings; validator sets re-check their invariants when
//! decoded.
#![allow(clippy::unwrap_used)]

use gongzhi_consensus::*;
use proptest::prelude::*;

#[test]
fn signature_rejects_other_lengths() {
    let sig = Signature([5; 64]);
    let bytes = postcard::to_stdvec(&sig).unwrap();
    assert_eq!(bytes.len(), 65); // varint length 64, then the bytes
    assert_eq!(postcard::from_bytes::<Signature>(&bytes).unwrap(), sig);
    let short = serde_bytes_like(&[1u8; 63]);
    assert!(postcard::from_bytes::<Signature>(&short).is_err());
    let long = serde_bytes_like(&[1u8; 65]);
    assert!(postcard::from_bytes::<Signature>(&long).is_err());
}

/// Encodes a byte string the way serde's `serialize_bytes` does in postcard.
fn serde_bytes_like(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

#[test]
fn validator_set_decoding_checks_invariants() {
    let dup = vec![
        Validator {
            id: ValidatorId([1; 32]),
            power: 1,
        },
        Validator {
            id: ValidatorId([1; 32]),
            power: 1,
        },
    ];
    let bytes = postcard::to_stdvec(&dup).unwrap();
    assert!(postcard::from_bytes::<ValidatorSet>(&bytes).is_err());
}

fn arb_value() -> impl Strategy<Value = Option<ValueId>> {
    proptest::option::of(any::<[u8; 32]>().prop_map(ValueId))
}

proptest! {
    #[test]
    fn vote_sign_bytes_are_postcard_and_roundtrip(
        precommit in any::<bool>(), h in any::<u64>(), r in any::<u32>(),
        value in arb_value(), who in any::<[u8; 32]>(),
    ) {
        let kind = if precommit { VoteKind::Precommit } else { VoteKind::Prevote };
        let vote = Vote { kind, height: Height(h), round: Round(r), value, validator: ValidatorId(who) };
        let bytes = vote.sign_bytes();
        prop_assert_eq!(&bytes, &postcard::to_stdvec(&vote).unwrap());
        prop_assert_eq!(postcard::from_bytes::<Vote>(&bytes).unwrap(), vote);
        let signed = SignedVote { vote, signature: Signature([3; 64]) };
        let encoded = postcard::to_stdvec(&signed).unwrap();
        prop_assert_eq!(postcard::from_bytes::<SignedVote>(&encoded).unwrap(), signed);
    }

    #[test]
    fn proposal_sign_bytes_are_postcard(
        h in any::<u64>(), r in any::<u32>(), v in any::<[u8; 32]>(),
        pol in proptest::option::of(any::<u32>()), who in any::<[u8; 32]>(),
    ) {
        let p = Proposal { height: Height(h), round: Round(r), value: ValueId(v),
            pol_round: pol.map(Round), proposer: ValidatorId(who) };
        prop_assert_eq!(p.sign_bytes(), postcard::to_stdvec(&p).unwrap());
    }
}
