//! Block execution: the deterministic state transition of the chain.
//!
//! [`execute_block`] shifts the validator schedule, then runs each tx in order:
//! 1. wrong chain id, unknown signer, or a nonce other than last + 1 → failure receipt and
//!    *no* change at all (the tx is not the signer's next tx);
//! 2. otherwise the signer's nonce is consumed, whatever follows;
//! 3. a suspended or removed organisation, an undecodable call, or any rule violation →
//!    failure receipt; the call's writes are rolled back to the checkpoint taken before it
//!    ([`Overlay::checkpoint`]);
//! 4. success → the call's writes stay in the block's overlay.
//!
//! Signatures are verified by the caller before execution (in batch). `Err` is returned only
//! for storage failures and corrupt state; then no receipt or change of the block may be used.
//! No clocks, no randomness, no hash maps: the same state and txs give the same receipts and
//! changes on every node.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use gongzhi_ledger::{
    Canonical, Hash, Outcome, Overlay, PublicKey, Receipt, StateChanges, StateReader, Timestamp, Tx,
};

use crate::call::{Call, CallOutput};
use crate::civility;
use crate::error::{CallError, CallResult, ContractError, ErrorKind, TxError};
use crate::governance::{parameters, proposals, validators, Organisation, Parameters};
use crate::grants::{datasets, lifecycle, Dataset};
use crate::keys;
use crate::store::{self, Writes};
use crate::types::{DatasetId, OrgId};

/// The block being executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// This chain's id.
    pub chain_id: String,
    /// Height of the block (≥ 1).
    pub height: u64,
    /// BFT time of the block.
    pub time: Timestamp,
}

/// What a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// One receipt per tx, in order.
    pub receipts: Vec<Receipt>,
    /// All writes of the block.
    pub changes: StateChanges,
}

/// What a call sees of its tx and block.
#[derive(Debug, Clone)]
pub(crate) struct CallContext {
    /// Block time.
    pub time: Timestamp,
    /// Block height.
    pub height: u64,
    /// The signer's organisation (active), shared with the block's [`SignerOrgs`].
    pub org: Arc<Organisation>,
    /// Parameters at the start of the tx.
    pub params: Parameters,
    /// The datasets decoded so far in this block ([`Decoded`]), shared by its txs.
    pub datasets: Rc<RefCell<Decoded<DatasetId, Dataset>>>,
}

/// Execute a block's txs on `state` (the state after the previous block).
pub fn execute_block<S: StateReader>(
    state: &S,
    ctx: &BlockContext,
    txs: &[Tx],
) -> Result<BlockOutcome, ContractError> {
    let tx_hashes: Vec<Hash> = txs.iter().map(Tx::hash).collect();
    execute_block_with_hashes(state, ctx, txs, &tx_hashes)
}

/// [`execute_block`] for a caller that already has each tx's hash ([`Tx::hash`]), which the
/// receipts carry: `tx_hashes[i]` must be `txs[i].hash()`.
///
/// # Panics
///
/// If `tx_hashes` and `txs` differ in length.
pub fn execute_block_with_hashes<S: StateReader>(
    state: &S,
    ctx: &BlockContext,
    txs: &[Tx],
    tx_hashes: &[Hash],
) -> Result<BlockOutcome, ContractError> {
    assert_eq!(txs.len(), tx_hashes.len(), "one hash per tx");
    let mut block: Writes<'_> = Overlay::new(state as &dyn StateReader);
    validators::shift(&mut block)?;
    let mut params = parameters(&block)?;
    let mut receipts = Vec::with_capacity(txs.len());
    let mut signer_orgs = SignerOrgs::default();
    let datasets = Rc::new(RefCell::new(Decoded::default()));
    for (tx, tx_hash) in txs.iter().zip(tx_hashes) {
        let (outcome, governance_applied) =
            execute_tx(&mut block, ctx, &params, &mut signer_orgs, &datasets, tx)?;
        if governance_applied {
            params = parameters(&block)?;
        }
        receipts.push(Receipt {
            tx_hash: *tx_hash,
            outcome,
        });
    }
    Ok(BlockOutcome {
        receipts,
        changes: block.into_changes(),
    })
}

fn failure(kind: ErrorKind, message: String) -> Outcome {
    Outcome::Failure {
        code: kind.code(),
        name: kind.name().to_string(),
        message,
    }
}

/// The last nonce `signer` used (0 if none).
pub fn nonce<S: StateReader + ?Sized>(state: &S, signer: &PublicKey) -> Result<u64, ContractError> {
    Ok(store::read(state, &keys::nonce(signer))?.unwrap_or(0))
}

/// Records decoded during one block, each kept with the stored bytes it was decoded from: the
/// organisations of its signers, the datasets its txs name. A lookup still reads the bytes and
/// decodes again whenever they differ, so it never serves a stale record (governance may
/// rewrite an organisation mid-block, a tx may register a dataset); it only spares decoding the
/// same record for every tx that needs it. Looked up by key, never iterated into a result.
#[derive(Debug)]
pub(crate) struct Decoded<K, V>(BTreeMap<K, (Vec<u8>, Arc<V>)>);

impl<K, V> Default for Decoded<K, V> {
    fn default() -> Self {
        Decoded(BTreeMap::new())
    }
}

impl<K: Ord + Clone, V: DeserializeOwned> Decoded<K, V> {
    /// The record `id` stored at `key` as `state` holds it now (`None`: absent), shared rather
    /// than copied.
    pub(crate) fn load(
        &mut self,
        state: &Writes<'_>,
        id: &K,
        key: &[u8],
    ) -> Result<Option<Arc<V>>, ContractError> {
        /// The stored record: the one decoded before, or new bytes to decode.
        enum Stored<V> {
            Decoded(Arc<V>),
            Changed(Vec<u8>),
        }
        // Compared where the state holds the bytes; copied only when they must be decoded.
        let cached = self.0.get(id);
        let mut found = None;
        state.visit(key, &mut |stored| {
            found = stored.map(|bytes| match cached {
                Some((decoded_from, record)) if decoded_from.as_slice() == bytes => {
                    Stored::Decoded(Arc::clone(record))
                }
                _ => Stored::Changed(bytes.to_vec()),
            });
        })?;
        Ok(match found {
            None => None,
            Some(Stored::Decoded(record)) => Some(record),
            Some(Stored::Changed(bytes)) => {
                let record = Arc::new(store::decode::<V>(key, &bytes)?);
                self.0.insert(id.clone(), (bytes, Arc::clone(&record)));
                Some(record)
            }
        })
    }
}

/// The decoded organisations of a block's signers ([`Decoded`]): each organisation's record,
/// with all its operator keys, is decoded once for every tx its members sign.
type SignerOrgs = Decoded<OrgId, Organisation>;

/// Organisation `id`, the organisation of a signer, as `state` holds it now. Its absence is
/// corruption: a signer key maps only to a stored organisation.
fn signer_org(
    orgs: &mut SignerOrgs,
    state: &Writes<'_>,
    id: &OrgId,
) -> Result<Arc<Organisation>, ContractError> {
    let key = keys::org(id);
    orgs.load(state, id, &key)?
        .ok_or_else(|| store::missing(&key))
}

/// Run one tx; returns its outcome and whether a governance call succeeded.
fn execute_tx(
    block: &mut Writes<'_>,
    ctx: &BlockContext,
    params: &Parameters,
    signer_orgs: &mut SignerOrgs,
    datasets: &Rc<RefCell<Decoded<DatasetId, Dataset>>>,
    tx: &Tx,
) -> Result<(Outcome, bool), ContractError> {
    let body = &tx.body;
    if body.chain_id != ctx.chain_id {
        let message = format!(
            "tx is for chain {:?}, this is {:?}; sign it for this chain",
            body.chain_id, ctx.chain_id
        );
        return Ok((failure(ErrorKind::WrongChain, message), false));
    }
    let Some(org_id) = crate::governance::org_of_signer(block, &body.signer)? else {
        let message = format!(
            "key {} is not an operator key of any organisation; use a registered key",
            body.signer
        );
        return Ok((failure(ErrorKind::UnknownSigner, message), false));
    };
    let last = nonce(block, &body.signer)?;
    if Some(body.nonce) != last.checked_add(1) {
        let message = format!(
            "nonce {} is not the next for this key: the last used is {last}, so use {}",
            body.nonce,
            last.saturating_add(1)
        );
        return Ok((failure(ErrorKind::BadNonce, message), false));
    }
    store::write(block, keys::nonce(&body.signer), &body.nonce);
    let org = signer_org(signer_orgs, block, &org_id)?;
    if !org.is_active() {
        let message = format!(
            "{} is {:?}; its txs are refused until governance reinstates it",
            org.id, org.status
        );
        return Ok((failure(ErrorKind::OrgNotActive, message), false));
    }
    let call = match Call::decode(&body.call) {
        Ok(call) => call,
        Err(e) => {
            let message =
                format!("the call bytes do not decode ({e}); build them with Call::encode");
            return Ok((failure(ErrorKind::MalformedCall, message), false));
        }
    };
    let is_governance = matches!(call, Call::Propose(_) | Call::Approve(_));
    let call_ctx = CallContext {
        time: ctx.time,
        height: ctx.height,
        org,
        params: params.clone(),
        datasets: Rc::clone(datasets),
    };
    // The call writes straight into the block's overlay; a checkpoint drops its writes if it
    // fails (the nonce above stays used).
    block.checkpoint();
    let result = dispatch(block, &call_ctx, call);
    if result.is_ok() {
        block.keep();
    } else {
        block.rollback();
    }
    match result {
        Ok(output) => Ok((
            Outcome::Success {
                data: output.to_data(),
            },
            is_governance,
        )),
        Err(CallError::Rule(TxError { kind, message })) => Ok((failure(kind, message), false)),
        Err(CallError::Fatal(e)) => Err(e),
    }
}

fn dispatch(writes: &mut Writes<'_>, ctx: &CallContext, call: Call) -> CallResult<CallOutput> {
    Ok(match call {
        Call::Propose(action) => CallOutput::Proposal(proposals::propose(writes, ctx, action)?),
        Call::Approve(id) => CallOutput::Proposal(proposals::approve(writes, ctx, id)?),
        Call::RegisterDataset { id, name, fields } => {
            datasets::register_dataset(writes, ctx, id, name, fields)?;
            CallOutput::Done
        }
        Call::RequestAccess(args) => {
            CallOutput::Request(datasets::request_access(writes, ctx, args)?)
        }
        Call::ApproveRequest { request, terms } => {
            CallOutput::Grant(datasets::approve_request(writes, ctx, request, terms)?)
        }
        Call::RejectRequest { request, reason } => {
            datasets::reject_request(writes, ctx, request, reason)?;
            CallOutput::Done
        }
        Call::IssueGrant(new) => CallOutput::Grant(lifecycle::issue_grant(writes, ctx, new)?),
        Call::CoApproveGrant(id) => {
            lifecycle::co_approve(writes, ctx, id)?;
            CallOutput::Done
        }
        Call::DelegateGrant(d) => CallOutput::Grant(lifecycle::delegate(writes, ctx, d)?),
        Call::RevokeGrant { grant, reason } => {
            CallOutput::Revoked(lifecycle::revoke(writes, ctx, grant, reason)?)
        }
        Call::RecordUse(u) => CallOutput::Uses(lifecycle::record_use(writes, ctx, u)?),
        Call::Award {
            resident,
            reason,
            points,
        } => CallOutput::Record(civility::award(writes, ctx, resident, reason, points)?),
        Call::Redeem {
            resident,
            points,
            item,
        } => CallOutput::Record(civility::redeem(writes, ctx, resident, points, item)?),
        Call::Reverse { record, why } => {
            CallOutput::Record(civility::reverse(writes, ctx, record, why)?)
        }
    })
}
