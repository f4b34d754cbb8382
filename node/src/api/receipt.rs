//! Decision receipts: a check's answer that anyone holding the genesis file can verify offline.
//!
//! A [`DecisionReceipt`] holds the question, the evaluation time, the decision, the header of
//! the evaluated height with its commit certificate, the validator set that signed it (plus
//! the hand-overs from the genesis set to it, if validators changed), and every state value the
//! decision read — or the absence of the key — with its Merkle proof against the header's
//! state root. The node records the keys by evaluating through [`RecordingState`], so the
//! proven set is exactly what [`gongzhi_contracts::check`] read.
//!
//! [`verify_receipt`] trusts only the genesis document:
//! 1. the genesis validator set is trusted; each hand-over moves trust to the next set only
//!    when its header is certified by the set trusted so far and commits to the next set's
//!    hash (`next_validator_set_hash`), exactly as a light client follows a chain;
//! 2. the receipt's validator set must be the one trusted at `height` and hash to the header's
//!    `validator_set_hash`; the certificate must carry > 2/3 of its power for the header's hash;
//! 3. every proof must verify against the header's state root;
//! 4. `check` is re-run over a state made of exactly the proven values (proven absences
//!    absent) at the recorded evaluation time; it must read only proven keys (all of them) and
//!    give the recorded decision.
//!
//! Trust assumption: more than 2/3 of the voting power of every validator set from genesis to
//! `height` was honest. The evaluation time is the answering node's claim (bounded below by
//! the block time): the receipt proves "at that time, over that committed state, the rules give
//! this decision". A digest over the body catches corrupted or edited copies early (a forger
//! could recompute it; the proofs and the certificate are what a forger cannot redo).
//!
//! Encoding: canonical (version byte ‖ postcard), like every signed or hashed object.

use std::cell::RefCell;
use std::collections::BTreeSet;

use gongzhi_contracts::{check, Decision, DenyReason, Genesis, GrantId};
use gongzhi_contracts::{DatasetId, OrgId, PurposeCode};
use gongzhi_ledger::codec::to_bytes;
use gongzhi_ledger::state::apply_changes;
use gongzhi_ledger::{
    validator_set_hash, verify_state_proof, Canonical, CommitCertificate, Hash, Header,
    LedgerError, MemoryState, StateProof, StateReader, Timestamp, ValidatorSet,
};
use serde::{Deserialize, Serialize};

/// Domain tag of the receipt digest.
pub const RECEIPT_TAG: &str = "gongzhi/decision-receipt/v1";

/// A state reader that remembers every key read through it.
#[derive(Debug)]
pub struct RecordingState<S> {
    inner: S,
    keys: RefCell<BTreeSet<Vec<u8>>>,
}

impl<S: StateReader> RecordingState<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        RecordingState {
            inner,
            keys: RefCell::new(BTreeSet::new()),
        }
    }

    /// The keys read so far, sorted.
    pub fn into_keys(self) -> BTreeSet<Vec<u8>> {
        self.keys.into_inner()
    }
}

impl<S: StateReader> StateReader for RecordingState<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.keys.borrow_mut().insert(key.to_vec());
        self.inner.get(key)
    }
}

/// The question a check answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckQuestion {
    /// Organisation that wants to use the data.
    pub grantee: OrgId,
    /// Dataset.
    pub dataset: DatasetId,
    /// Requested fields, as asked.
    pub fields: Vec<String>,
    /// Purpose code.
    pub purpose: PurposeCode,
}

/// A decision in its stable form: allowed, or the denial's code, plus the grant ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedDecision {
    /// Whether it allows.
    pub allowed: bool,
    /// The denial's stable code ([`DenyReason::code`]); 0 when allowed.
    pub reason_code: u32,
    /// Allowing grants, or the closest grant of a denial.
    pub grants: Vec<GrantId>,
}

impl RecordedDecision {
    /// The stable form of a contract decision.
    pub fn of(decision: &Decision) -> RecordedDecision {
        match decision {
            Decision::Allow { grants } => RecordedDecision {
                allowed: true,
                reason_code: 0,
                grants: grants.clone(),
            },
            Decision::Deny(denial) => RecordedDecision {
                allowed: false,
                reason_code: denial.reason.code(),
                grants: denial.grant.into_iter().collect(),
            },
        }
    }

    /// The denial reason, if denied with a known code.
    pub fn reason(&self) -> Option<DenyReason> {
        DenyReason::ALL
            .iter()
            .copied()
            .find(|r| r.code() == self.reason_code)
    }
}

/// One state key the decision read: its value (or absence) and the proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenRead {
    /// State key.
    pub key: Vec<u8>,
    /// Its value at the height; `None` when absent.
    pub value: Option<Vec<u8>>,
    /// Merkle proof against the header's state root.
    pub proof: StateProof,
}

/// A validator-set change: `header` (certified by the set trusted so far) commits to
/// `next_set` through its `next_validator_set_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    /// Header of the last block committed by the outgoing set.
    pub header: Header,
    /// Its commit certificate (signed by the outgoing set).
    pub certificate: CommitCertificate,
    /// The set that commits the following block.
    pub next_set: ValidatorSet,
}

/// Everything the digest covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// Chain id.
    pub chain_id: String,
    /// The question.
    pub question: CheckQuestion,
    /// The moment the validity windows were evaluated at.
    pub evaluation_time: Timestamp,
    /// The decision.
    pub decision: RecordedDecision,
    /// Evaluated height (≥ 1).
    pub height: u64,
    /// Header of that height.
    pub header: Header,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The validator set that signed the certificate.
    pub validator_set: ValidatorSet,
    /// Validator-set changes from genesis up to `height`, oldest first (empty if none).
    pub handovers: Vec<Handover>,
    /// Every key the decision read, sorted by key.
    pub reads: Vec<ProvenRead>,
}

/// A decision receipt: the body and a digest of it. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionReceipt {
    /// The receipt's content.
    pub body: ReceiptBody,
    /// blake3 under [`RECEIPT_TAG`] of the body's postcard bytes.
    pub digest: Hash,
}

impl Canonical for DecisionReceipt {
    const KIND: &'static str = "decision receipt";
    const MAX_BYTES: usize = 4 * 1024 * 1024;
}

impl DecisionReceipt {
    /// Seal a body with its digest.
    pub fn seal(body: ReceiptBody) -> DecisionReceipt {
        let digest = body_digest(&body);
        DecisionReceipt { body, digest }
    }

    /// Hash of the canonical bytes (the `receipt_hash` of the API).
    pub fn hash(&self) -> Hash {
        Hash::tagged(RECEIPT_TAG, &self.encode())
    }
}

fn body_digest(body: &ReceiptBody) -> Hash {
    Hash::tagged(RECEIPT_TAG, &to_bytes(body))
}

/// Why a receipt is not trustworthy.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The genesis file cannot anchor trust.
    #[error("the genesis document is unusable: {0}")]
    Genesis(String),
    /// The bytes are not a decision receipt.
    #[error("not a decision receipt: {0}")]
    Malformed(String),
    /// The digest does not match the body.
    #[error("the receipt was altered or corrupted: its digest does not match its content")]
    DigestMismatch,
    /// The receipt is for another chain.
    #[error("the receipt is for chain {found:?}, the genesis is for {expected:?}")]
    WrongChain {
        /// Genesis chain id.
        expected: String,
        /// Receipt chain id.
        found: String,
    },
    /// Header, certificate and height disagree.
    #[error("inconsistent receipt: {0}")]
    Inconsistent(String),
    /// The validator set is not the one trusted at the height.
    #[error("untrusted validator set: {0}")]
    UntrustedValidatorSet(String),
    /// A hand-over does not verify.
    #[error("validator-set hand-over #{index} (height {height}) does not verify: {reason}")]
    Handover {
        /// Position in the list.
        index: usize,
        /// Its header height.
        height: u64,
        /// What failed.
        reason: String,
    },
    /// The commit certificate does not verify.
    #[error("the commit certificate of height {height} does not verify: {reason}")]
    Certificate {
        /// Height.
        height: u64,
        /// What failed.
        reason: String,
    },
    /// A Merkle proof does not verify.
    #[error("the proof of state key {key} does not verify against the state root: {reason}")]
    Proof {
        /// The key, readable.
        key: String,
        /// What failed.
        reason: String,
    },
    /// The keys are not strictly sorted, or one is listed twice.
    #[error("state reads are not sorted by key or repeat key {0}")]
    UnsortedReads(String),
    /// Re-evaluation read a key without a proof.
    #[error("re-evaluation reads state key {0}, which the receipt does not prove")]
    UnprovenRead(String),
    /// A proven key is not read by the decision.
    #[error("the receipt proves state key {0}, which the decision does not read")]
    UnusedRead(String),
    /// The evaluation time is before the block time.
    #[error("evaluation time {evaluation} is before the block time {block}")]
    TimeBeforeBlock {
        /// Recorded evaluation time.
        evaluation: Timestamp,
        /// Block time.
        block: Timestamp,
    },
    /// Re-evaluation gives another decision.
    #[error("re-evaluation gives {recomputed}, the receipt claims {recorded}")]
    DecisionMismatch {
        /// What the receipt says.
        recorded: String,
        /// What the rules give.
        recomputed: String,
    },
    /// Re-evaluation failed on the proven values.
    #[error("re-evaluation failed: {0}")]
    Evaluation(String),
}

/// A receipt that verified, with what makes it trustworthy.
#[derive(Debug, Clone)]
pub struct VerifiedDecision {
    /// The question.
    pub question: CheckQuestion,
    /// The decision (re-derived).
    pub decision: Decision,
    /// Evaluated height.
    pub height: u64,
    /// Block hash at that height.
    pub block_hash: Hash,
    /// Block time.
    pub block_time: Timestamp,
    /// State root the proofs verified against.
    pub state_root: Hash,
    /// Evaluation time.
    pub evaluation_time: Timestamp,
    /// Power that signed the certificate.
    pub signed_power: u64,
    /// Total power of the set.
    pub total_power: u64,
    /// Validators in the set.
    pub validators: usize,
    /// Validator-set changes followed from genesis.
    pub handovers: usize,
    /// Proven state keys.
    pub proven_keys: usize,
}

/// Describe a recorded decision for messages.
fn describe(decision: &RecordedDecision) -> String {
    let grants: Vec<String> = decision.grants.iter().map(ToString::to_string).collect();
    if decision.allowed {
        format!("ALLOW by [{}]", grants.join(", "))
    } else {
        let name = decision.reason().map_or("UNKNOWN_REASON", DenyReason::name);
        format!("DENY {name} [{}]", grants.join(", "))
    }
}

/// The validator set that commits block 1, from the genesis document.
pub fn genesis_validator_set(genesis: &Genesis) -> Result<ValidatorSet, ReceiptError> {
    let changes = gongzhi_contracts::genesis_changes(genesis)
        .map_err(|e| ReceiptError::Genesis(e.to_string()))?;
    let mut state = MemoryState::new();
    apply_changes(&mut state, &changes);
    gongzhi_contracts::validator_set_for_next_block(&state)
        .map_err(|e| ReceiptError::Genesis(e.to_string()))
}

/// Verify receipt bytes offline against a genesis document. See the module docs.
pub fn verify_receipt(bytes: &[u8], genesis: &Genesis) -> Result<VerifiedDecision, ReceiptError> {
    let receipt =
        DecisionReceipt::decode(bytes).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    if body_digest(&receipt.body) != receipt.digest {
        return Err(ReceiptError::DigestMismatch);
    }
    let body = &receipt.body;
    if body.chain_id != genesis.chain_id {
        return Err(ReceiptError::WrongChain {
            expected: genesis.chain_id.clone(),
            found: body.chain_id.clone(),
        });
    }
    let header = &body.header;
    if header.chain_id != body.chain_id || header.height != body.height || body.height == 0 {
        return Err(ReceiptError::Inconsistent(format!(
            "header is for chain {:?} height {}, the receipt for {:?} height {}",
            header.chain_id, header.height, body.chain_id, body.height
        )));
    }

    // 1–2: trust moves from the genesis set along the hand-overs to the set at `height`.
    let mut trusted = genesis_validator_set(genesis)?;
    let mut last_handover = 0u64;
    for (index, handover) in body.handovers.iter().enumerate() {
        let fail = |reason: String| ReceiptError::Handover {
            index,
            height: handover.header.height,
            reason,
        };
        let h = &handover.header;
        if h.height <= last_handover || h.height >= body.height || h.chain_id != body.chain_id {
            return Err(fail(
                "hand-overs must be for increasing heights below the receipt's".into(),
            ));
        }
        last_handover = h.height;
        if h.validator_set_hash != validator_set_hash(&trusted) {
            return Err(fail(
                "its header was not committed by the set trusted at that height".into(),
            ));
        }
        if handover.certificate.height != h.height || handover.certificate.block_hash != h.hash() {
            return Err(fail("its certificate is for another block".into()));
        }
        handover
            .certificate
            .verify(&body.chain_id, &trusted)
            .map_err(|e| fail(e.to_string()))?;
        if validator_set_hash(&handover.next_set) != h.next_validator_set_hash {
            return Err(fail(
                "the next set does not match the header's next_validator_set_hash".into(),
            ));
        }
        trusted = handover.next_set.clone();
    }
    if body.validator_set != trusted {
        return Err(ReceiptError::UntrustedValidatorSet(
            if body.handovers.is_empty() {
                "it is not the genesis validator set, and the receipt shows no validator-set change"
                    .into()
            } else {
                "it is not the set the hand-overs lead to".into()
            },
        ));
    }
    if validator_set_hash(&body.validator_set) != header.validator_set_hash {
        return Err(ReceiptError::UntrustedValidatorSet(format!(
            "the header at height {} was committed by another validator set (its validator_set_hash differs)",
            body.height
        )));
    }
    let certificate = &body.certificate;
    if certificate.height != body.height || certificate.block_hash != header.hash() {
        return Err(ReceiptError::Certificate {
            height: body.height,
            reason: "it certifies another block than the receipt's header".into(),
        });
    }
    certificate
        .verify(&body.chain_id, &body.validator_set)
        .map_err(|e| ReceiptError::Certificate {
            height: body.height,
            reason: e.to_string(),
        })?;
    let signed_power = certificate.check_quorum(&body.validator_set).unwrap_or(0);

    // 3: proofs against the certified state root.
    let mut state = MemoryState::new();
    let mut proven = BTreeSet::new();
    let mut previous: Option<&[u8]> = None;
    for read in &body.reads {
        let key = gongzhi_contracts::keys::display(&read.key);
        if previous.is_some_and(|p| p >= read.key.as_slice()) {
            return Err(ReceiptError::UnsortedReads(key));
        }
        previous = Some(read.key.as_slice());
        verify_state_proof(
            header.state_root,
            &read.key,
            read.value.as_deref(),
            &read.proof,
        )
        .map_err(|e| ReceiptError::Proof {
            key,
            reason: e.to_string(),
        })?;
        if let Some(value) = &read.value {
            state.insert(read.key.clone(), value.clone());
        }
        proven.insert(read.key.clone());
    }

    // 4: re-evaluate over exactly the proven values.
    if body.evaluation_time < header.time {
        return Err(ReceiptError::TimeBeforeBlock {
            evaluation: body.evaluation_time,
            block: header.time,
        });
    }
    let question = &body.question;
    let recording = RecordingState::new(&state);
    let decision = check(
        &recording,
        &question.grantee,
        &question.dataset,
        &question.fields,
        &question.purpose,
        body.evaluation_time,
    )
    .map_err(|e| ReceiptError::Evaluation(e.to_string()))?;
    let read_keys = recording.into_keys();
    if let Some(key) = read_keys.iter().find(|k| !proven.contains(*k)) {
        return Err(ReceiptError::UnprovenRead(
            gongzhi_contracts::keys::display(key),
        ));
    }
    if let Some(key) = proven.iter().find(|k| !read_keys.contains(*k)) {
        return Err(ReceiptError::UnusedRead(gongzhi_contracts::keys::display(
            key,
        )));
    }
    let recomputed = RecordedDecision::of(&decision);
    if recomputed != body.decision {
        return Err(ReceiptError::DecisionMismatch {
            recorded: describe(&body.decision),
            recomputed: describe(&recomputed),
        });
    }
    Ok(VerifiedDecision {
        question: question.clone(),
        decision,
        height: body.height,
        block_hash: header.hash(),
        block_time: header.time,
        state_root: header.state_root,
        evaluation_time: body.evaluation_time,
        signed_power,
        total_power: body.validator_set.total_power(),
        validators: body.validator_set.len(),
        handovers: body.handovers.len(),
        proven_keys: body.reads.len(),
    })
}

/// Heights at which the validator set changed (`validator_set_hash != next_validator_set_hash`),
/// found by scanning headers once and remembered, so receipts can carry their hand-overs.
#[derive(Debug, Default)]
pub struct HandoverIndex {
    /// (last height scanned, change heights found so far).
    scanned: std::sync::Mutex<(u64, Vec<u64>)>,
}

impl HandoverIndex {
    /// Change heights strictly below `height`.
    fn heights_below(
        &self,
        chain: &crate::chain::Chain,
        height: u64,
    ) -> Result<Vec<u64>, LedgerError> {
        let mut guard = self
            .scanned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (scanned, changes) = &mut *guard;
        let store = chain.store();
        while *scanned + 1 < height {
            let next = *scanned + 1;
            let header = store.block(next)?.header;
            if header.validator_set_hash != header.next_validator_set_hash {
                changes.push(next);
            }
            *scanned = next;
        }
        Ok(changes.iter().copied().filter(|h| *h < height).collect())
    }
}

/// Evaluate `question` over the committed state at `height` (≥ 1) at `time`, recording every
/// key read, and build its receipt.
pub fn build_receipt(
    chain: &crate::chain::Chain,
    handovers: &HandoverIndex,
    question: &CheckQuestion,
    time: Timestamp,
    height: u64,
) -> Result<(Decision, DecisionReceipt), String> {
    let store = chain.store();
    let recording = RecordingState::new(store.state_at(height).map_err(|e| e.to_string())?);
    let decision = check(
        &recording,
        &question.grantee,
        &question.dataset,
        &question.fields,
        &question.purpose,
        time,
    )
    .map_err(|e| e.to_string())?;
    let mut reads = Vec::new();
    for key in recording.into_keys() {
        let (value, proof) = store
            .get_with_proof(&key, height)
            .map_err(|e| e.to_string())?;
        reads.push(ProvenRead { key, value, proof });
    }
    let header = store.block(height).map_err(|e| e.to_string())?.header;
    let certificate = store.certificate(height).map_err(|e| e.to_string())?;
    let validator_set = chain
        .validator_set_at(height)
        .map_err(|e| format!("{e:#}"))?;
    let mut steps = Vec::new();
    for k in handovers
        .heights_below(chain, height)
        .map_err(|e| e.to_string())?
    {
        steps.push(Handover {
            header: store.block(k).map_err(|e| e.to_string())?.header,
            certificate: store.certificate(k).map_err(|e| e.to_string())?,
            next_set: chain
                .validator_set_at(k + 1)
                .map_err(|e| format!("{e:#}"))?,
        });
    }
    let body = ReceiptBody {
        chain_id: chain.chain_id().to_string(),
        question: question.clone(),
        evaluation_time: time,
        decision: RecordedDecision::of(&decision),
        height,
        header,
        certificate,
        validator_set,
        handovers: steps,
        reads,
    };
    Ok((decision, DecisionReceipt::seal(body)))
}
