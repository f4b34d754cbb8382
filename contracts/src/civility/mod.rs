//! The civility bank (文明银行): points awarded to residents for civic acts, redeemed at
//! service points.
//!
//! Residents appear only as [`ResidentId`]s (keyed hashes computed off chain); nothing here
//! holds personal data. Rules and invariants:
//! - awards: by organisations with the issuer role, for a reason in the catalogue, with
//!   `1..=max_points` points, within the issuer's quota for the current period (period index
//!   = block time / `quota_period_ms`; the quota is the org's own or `default_issuer_quota`);
//! - redemptions: by service points, never taking a balance below zero;
//! - reversals: of an award only, only by the organisation that made it, at most once. A
//!   reversal subtracts the award's points and is *rejected* when the balance is lower than
//!   that (the points were already redeemed): balances never go negative and a reversal never
//!   silently becomes partial; the issuer settles such a case off chain. A reversal does not
//!   give quota back;
//! - a resident's balance always equals their awards − redemptions − reversals;
//! - every record is appended to its resident's history list, in execution order;
//! - balance and history head share one value, `resident/<id>` ([`ResidentAccount`]): every
//!   record changes both, so a block touches one key per resident, not two.

use gongzhi_ledger::{StateReader, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{reject, CallResult, ContractError};
use crate::execute::CallContext;
use crate::governance::{check_text, get_reason, Role};
use crate::grants::datasets::require_role;
use crate::keys;
use crate::store::{self, Writes};
use crate::types::{ChunkedHead, OrgId, Page, PageOf, ReasonCode, RecordId, ResidentId};

const RECORD_SEQUENCE: &str = "record";

/// What a record did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// Points awarded.
    Award {
        /// Catalogue reason.
        reason: ReasonCode,
        /// The reversal of this award, once reversed.
        reversed_by: Option<RecordId>,
    },
    /// Points redeemed.
    Redemption {
        /// What the points bought.
        item: String,
    },
    /// An award taken back.
    Reversal {
        /// The reversed award.
        of: RecordId,
        /// Why.
        why: String,
    },
}

/// One civility-bank entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CivilityRecord {
    /// Sequential id.
    pub id: RecordId,
    /// The resident.
    pub resident: ResidentId,
    /// Issuer or service point that made it.
    pub org: OrgId,
    /// Points moved (always positive; the kind says in which direction).
    pub points: u64,
    /// What happened.
    pub kind: RecordKind,
    /// Block time.
    pub time: Timestamp,
    /// Block height.
    pub height: u64,
}

/// An issuer's use of its quota in one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUse {
    /// Period index.
    pub period: u64,
    /// Points awarded in it.
    pub used: u64,
}

/// A resident's standing (`resident/<id>`): the balance and the head of the history, whose
/// sealed chunks are at [`keys::history_chunk`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentAccount {
    /// Points available.
    pub balance: u64,
    /// The resident's record ids, oldest first.
    pub history: ChunkedHead<RecordId>,
}

/// A resident's account (empty if they have no record).
pub fn account<S: StateReader + ?Sized>(
    state: &S,
    resident: &ResidentId,
) -> Result<ResidentAccount, ContractError> {
    Ok(store::read(state, &keys::resident(resident))?.unwrap_or_default())
}

/// A resident's balance (0 if never awarded).
pub fn balance<S: StateReader + ?Sized>(
    state: &S,
    resident: &ResidentId,
) -> Result<u64, ContractError> {
    Ok(account(state, resident)?.balance)
}

/// A record, if it exists.
pub fn get_record<S: StateReader + ?Sized>(
    state: &S,
    id: RecordId,
) -> Result<Option<CivilityRecord>, ContractError> {
    store::read(state, &keys::record(id))
}

/// A page of a resident's history, oldest first.
pub fn history<S: StateReader + ?Sized>(
    state: &S,
    resident: &ResidentId,
    page: Page,
) -> Result<PageOf<CivilityRecord>, ContractError> {
    let head = account(state, resident)?.history;
    let ids = store::chunked_page(
        state,
        &head,
        |chunk| keys::history_chunk(resident, chunk),
        page,
    )?;
    let mut items = Vec::with_capacity(ids.items.len());
    for id in ids.items {
        items.push(store::read_required(state, &keys::record(id))?);
    }
    Ok(PageOf {
        items,
        total: ids.total,
        next: ids.next,
    })
}

/// Store a new record of `resident`, whose balance becomes `balance`, and append it to their
/// history.
fn append(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    (resident, mut account): (ResidentId, ResidentAccount),
    balance: u64,
    points: u64,
    kind: RecordKind,
) -> CallResult<RecordId> {
    let id = RecordId(store::next_id(writes, RECORD_SEQUENCE)?);
    let record = CivilityRecord {
        id,
        resident,
        org: ctx.org.id.clone(),
        points,
        kind,
        time: ctx.time,
        height: ctx.height,
    };
    store::write(writes, keys::record(id), &record);
    account.balance = balance;
    if let Some((chunk, ids)) = account.history.push(id) {
        store::write(writes, keys::history_chunk(&resident, chunk), &ids);
    }
    store::write(writes, keys::resident(&resident), &account);
    Ok(id)
}

/// Award points.
pub(crate) fn award(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    resident: ResidentId,
    reason: ReasonCode,
    points: u64,
) -> CallResult<RecordId> {
    require_role(ctx, Role::Issuer, "award civility points")?;
    let Some(entry) = get_reason(writes, &reason)? else {
        reject!(
            UnknownReason,
            "reason {reason} is not in the catalogue; list reasons for valid codes"
        );
    };
    if points == 0 || points > entry.max_points {
        reject!(
            PointsOutOfRange,
            "an award for {reason} gives 1 to {} points, not {points}",
            entry.max_points
        );
    }
    let period = ctx.time.millis() / ctx.params.quota_period_ms.max(1);
    let quota = ctx
        .org
        .issuer_quota
        .unwrap_or(ctx.params.default_issuer_quota);
    let quota_key = keys::quota_used(&ctx.org.id);
    let used = match store::read::<QuotaUse, _>(writes, &quota_key)? {
        Some(q) if q.period == period => q.used,
        _ => 0,
    };
    let after = used.saturating_add(points);
    if after > quota {
        reject!(
            QuotaExceeded,
            "{} has awarded {used} of its {quota} points this period; {points} more would exceed it. \
             Wait for the next period or ask governance to raise the quota",
            ctx.org.id
        );
    }
    store::write(
        writes,
        quota_key,
        &QuotaUse {
            period,
            used: after,
        },
    );
    let account = account(writes, &resident)?;
    let new_balance = account.balance.saturating_add(points);
    append(
        writes,
        ctx,
        (resident, account),
        new_balance,
        points,
        RecordKind::Award {
            reason,
            reversed_by: None,
        },
    )
}

/// Redeem points at a service point.
pub(crate) fn redeem(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    resident: ResidentId,
    points: u64,
    item: String,
) -> CallResult<RecordId> {
    require_role(ctx, Role::ServicePoint, "redeem civility points")?;
    check_text(&ctx.params, "item", &item)?;
    if points == 0 {
        reject!(PointsOutOfRange, "redeem at least 1 point");
    }
    let account = account(writes, &resident)?;
    let current = account.balance;
    if current < points {
        reject!(
            InsufficientBalance,
            "resident {resident} has {current} points; cannot redeem {points}"
        );
    }
    append(
        writes,
        ctx,
        (resident, account),
        current - points,
        points,
        RecordKind::Redemption { item },
    )
}

/// Reverse an award.
pub(crate) fn reverse(
    writes: &mut Writes<'_>,
    ctx: &CallContext,
    record: RecordId,
    why: String,
) -> CallResult<RecordId> {
    check_text(&ctx.params, "reversal reason", &why)?;
    let Some(mut original) = get_record(writes, record)? else {
        reject!(
            UnknownRecord,
            "no {record}; see the resident's history for record ids"
        );
    };
    let RecordKind::Award { reversed_by, .. } = &original.kind else {
        reject!(
            NotAnAward,
            "{record} is not an award; only awards can be reversed"
        );
    };
    if original.org != ctx.org.id {
        reject!(
            NotOriginalIssuer,
            "{record} was awarded by {}; only they may reverse it",
            original.org
        );
    }
    if let Some(by) = reversed_by {
        reject!(AlreadyReversed, "{record} was already reversed by {by}");
    }
    let account = account(writes, &original.resident)?;
    let current = account.balance;
    if current < original.points {
        reject!(
            ReversalExceedsBalance,
            "resident {} has {current} points, fewer than the {} of {record} (already redeemed); \
             a reversal may not make a balance negative",
            original.resident,
            original.points
        );
    }
    let reversal = append(
        writes,
        ctx,
        (original.resident, account),
        current - original.points,
        original.points,
        RecordKind::Reversal { of: record, why },
    )?;
    if let RecordKind::Award { reversed_by, .. } = &mut original.kind {
        *reversed_by = Some(reversal);
    }
    store::write(writes, keys::record(record), &original);
    Ok(reversal)
}
