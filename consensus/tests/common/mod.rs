//! Shared fixtures for the consensus tests: a cheap deterministic test
//! signature scheme, four validators of power 1 and message builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use gongzhi_consensus::*;

/// Signature = signer id ‖ 32-byte FNV-based checksum of tag and bytes.
#[derive(Clone, Copy, Debug)]
pub struct TestKey(pub ValidatorId);

fn checksum(signer: &ValidatorId, tag: &str, bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (lane, chunk) in out.chunks_mut(8).enumerate() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ lane as u64;
        for b in signer
            .0
            .iter()
            .chain(tag.as_bytes())
            .chain([0u8].iter())
            .chain(bytes)
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    out
}

impl SignatureScheme for TestKey {
    fn sign(&self, tag: &str, bytes: &[u8]) -> Signature {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&self.0 .0);
        sig[32..].copy_from_slice(&checksum(&self.0, tag, bytes));
        Signature(sig)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TestVerifier;

impl SignatureVerifier for TestVerifier {
    fn verify(&self, signer: &ValidatorId, tag: &str, bytes: &[u8], sig: &Signature) -> bool {
        sig.0[..32] == signer.0 && sig.0[32..] == checksum(signer, tag, bytes)
    }
}

pub const H1: Height = Height(1);
pub const R0: Round = Round(0);
pub const R1: Round = Round(1);
pub const R2: Round = Round(2);
pub const R3: Round = Round(3);

pub fn vid(i: usize) -> ValidatorId {
    ValidatorId([i as u8 + 1; 32])
}

pub fn value(b: u8) -> ValueId {
    ValueId([b; 32])
}

/// Four validators of power 1: the proposer of (h, r) is index (h + r) mod 4.
pub fn four_validators() -> ValidatorSet {
    ValidatorSet::new(
        (0..4)
            .map(|i| Validator {
                id: vid(i),
                power: 1,
            })
            .collect(),
    )
    .unwrap()
}

pub fn config() -> ConsensusConfig {
    ConsensusConfig {
        timeouts: TimeoutConfig {
            propose: Duration::from_millis(3000),
            prevote: Duration::from_millis(1000),
            precommit: Duration::from_millis(1000),
            per_round: Duration::from_millis(500),
        },
        ..ConsensusConfig::default()
    }
}

pub type TestCore = Consensus<TestKey, TestVerifier>;

pub fn core_for(index: usize, state: SafetyState) -> TestCore {
    Consensus::new(
        config(),
        SafetyModule::new(vid(index), TestKey(vid(index)), state),
        TestVerifier,
    )
}

/// Validator `index`'s core, started at height 1; returns the start outputs.
pub fn started(index: usize) -> (TestCore, Vec<Output>) {
    let mut core = core_for(index, SafetyState::default());
    let out = core.handle(Input::StartHeight {
        height: H1,
        validators: four_validators(),
    });
    (core, out)
}

pub fn vote(kind: VoteKind, round: Round, v: Option<ValueId>, signer: usize) -> SignedVote {
    let vote = Vote {
        kind,
        height: H1,
        round,
        value: v,
        validator: vid(signer),
    };
    let signature = TestKey(vid(signer)).sign(VOTE_SIGN_TAG, &vote.sign_bytes());
    SignedVote { vote, signature }
}

pub fn prevote(round: Round, v: Option<ValueId>, signer: usize) -> SignedVote {
    vote(VoteKind::Prevote, round, v, signer)
}

pub fn precommit(round: Round, v: Option<ValueId>, signer: usize) -> SignedVote {
    vote(VoteKind::Precommit, round, v, signer)
}

pub fn proposal(
    round: Round,
    v: ValueId,
    pol_round: Option<Round>,
    signer: usize,
) -> SignedProposal {
    let proposal = Proposal {
        height: H1,
        round,
        value: v,
        pol_round,
        proposer: vid(signer),
    };
    let signature = TestKey(vid(signer)).sign(PROPOSAL_SIGN_TAG, &proposal.sign_bytes());
    SignedProposal {
        proposal,
        signature,
    }
}

/// The two outputs of casting `vote` with resulting `lock`.
pub fn persist_and_send(vote: SignedVote, lock: Option<Lock>) -> Vec<Output> {
    vec![
        Output::PersistSafetyState(SafetyState {
            last_signed: Some(SignedMessage::Vote(vote)),
            lock,
        }),
        Output::BroadcastVote(vote),
    ]
}

pub fn timeout(kind: TimeoutKind, round: Round, millis: u64) -> Output {
    Output::ScheduleTimeout {
        kind,
        height: H1,
        round,
        duration: Duration::from_millis(millis),
    }
}

pub fn lock(round: Round, v: ValueId) -> Option<Lock> {
    Some(Lock {
        height: H1,
        round,
        value: v,
    })
}

/// Feeds a proposal and answers its VerifyValue with `valid`; returns the
/// outputs of the ValueVerified input.
pub fn deliver_verified(core: &mut TestCore, p: SignedProposal, valid: bool) -> Vec<Output> {
    let out = core.handle(Input::Proposal(p));
    assert_eq!(
        out,
        vec![Output::VerifyValue {
            height: H1,
            round: p.proposal.round,
            value: p.proposal.value
        }]
    );
    core.handle(Input::ValueVerified {
        height: H1,
        value: p.proposal.value,
        valid,
    })
}
