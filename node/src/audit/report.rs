//! The audit report, derived from a replay: what the chain's txs, receipts and states say about
//! grants, access requests, civility points and anomalies. Rendered as JSON
//! ([`AuditReport`] is `Serialize`), a text table ([`AuditReport::to_table`]) and HTML
//! ([`super::html`]).
//!
//! [`ReportBuilder`] is a [`ReplayObserver`]: it sees each block after it was verified, with the
//! re-executed receipts and the state after the block. Only successful txs count as events;
//! failed receipts count as failures (and quota failures as anomalies). Memory is bounded by the
//! number of (day, organisation) pairs, not by the chain: expiries are found by scanning the
//! grants of the final state once, at the end. Event lists keep the first [`MAX_EVENTS`] of
//! each kind; totals count them all.

use std::collections::BTreeMap;

use gongzhi_contracts::civility::RecordKind;
use gongzhi_contracts::query::{get_grant, get_record, org_of_signer};
use gongzhi_contracts::{Call, CallOutput, ErrorKind, GrantId, RecordId};
use gongzhi_ledger::{Block, Canonical, Outcome, PublicKey, Receipt, StateReader, Timestamp};
use serde::Serialize;

use super::error::ReplayError;
use super::replay::{ReplayObserver, ReplaySummary};

/// Most events of each anomaly kind listed individually.
pub const MAX_EVENTS: usize = 500;

/// Grant activity of one organisation (as grantor or revoker) in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantCounts {
    /// Grants created (issued directly, by approving a request, or delegated).
    pub issued: u64,
    /// Of which delegated.
    pub delegated: u64,
    /// Grants revoked by this organisation, cascades included.
    pub revoked: u64,
    /// Grants of this grantor that reached their end unrevoked.
    pub expired: u64,
}

/// Access-request activity of one organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Requests it filed.
    pub filed: u64,
    /// Requests it approved (as dataset owner).
    pub approved: u64,
    /// Requests it rejected (as dataset owner).
    pub rejected: u64,
}

/// Civility points of one issuer for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CivilityCounts {
    /// Awards made.
    pub awards: u64,
    /// Points awarded.
    pub points_awarded: u64,
    /// Awards reversed.
    pub reversals: u64,
    /// Points reversed.
    pub points_reversed: u64,
}

/// Redemptions at one service point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedemptionCounts {
    /// Redemptions.
    pub redemptions: u64,
    /// Points redeemed.
    pub points: u64,
}

/// One notable event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Block height.
    pub height: u64,
    /// Tx index in the block.
    pub tx_index: usize,
    /// Block time (UTC).
    pub time: String,
    /// The signer's organisation.
    pub org: String,
    /// What happened.
    pub detail: String,
}

/// Anomalies: breaches, reversals, cascades.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Anomalies {
    /// Awards refused because the issuer's quota was exhausted (total).
    pub quota_breaches: u64,
    /// Award reversals (total).
    pub reversals: u64,
    /// Revocations that cascaded to delegated grants (total).
    pub revocation_cascades: u64,
    /// Grants revoked by cascade (total).
    pub grants_revoked_by_cascade: u64,
    /// The first quota breaches.
    pub quota_breach_events: Vec<Event>,
    /// The first reversals.
    pub reversal_events: Vec<Event>,
    /// The first cascades.
    pub cascade_events: Vec<Event>,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditReport {
    /// The replay that verified the chain.
    pub summary: Option<ReplaySummary>,
    /// Time of the first block (UTC).
    pub first_block_time: String,
    /// Time of the last block (UTC).
    pub last_block_time: String,
    /// Grant totals per organisation.
    pub grants_by_agency: BTreeMap<String, GrantCounts>,
    /// Grant counts per day (`YYYY-MM-DD`) and organisation.
    pub grants_by_day: BTreeMap<String, BTreeMap<String, GrantCounts>>,
    /// Access requests per organisation.
    pub requests_by_agency: BTreeMap<String, RequestCounts>,
    /// Civility points per issuer, then reason.
    pub civility_by_issuer: BTreeMap<String, BTreeMap<String, CivilityCounts>>,
    /// Redemptions per service point.
    pub redemptions_by_service_point: BTreeMap<String, RedemptionCounts>,
    /// Failed txs per error name.
    pub failures_by_error: BTreeMap<String, u64>,
    /// Successful txs per call.
    pub calls: BTreeMap<String, u64>,
    /// Anomalies.
    pub anomalies: Anomalies,
}

/// Builds an [`AuditReport`] while a replay runs.
#[derive(Debug, Default)]
pub struct ReportBuilder {
    report: AuditReport,
    signers: BTreeMap<PublicKey, String>,
    last_time: Timestamp,
    /// The last day a grant was counted on: its number since the epoch and `YYYY-MM-DD`.
    last_day: Option<(u64, String)>,
}

/// Milliseconds in a UTC day.
const DAY_MS: u64 = 86_400_000;

/// `YYYY-MM-DD` of `time` (UTC).
fn day(time: Timestamp) -> String {
    time.to_string().chars().take(10).collect()
}

impl ReportBuilder {
    /// An empty builder.
    pub fn new() -> ReportBuilder {
        ReportBuilder::default()
    }

    /// The finished report, with the replay's summary.
    pub fn finish(mut self, summary: ReplaySummary) -> AuditReport {
        self.report.summary = Some(summary);
        self.report.last_block_time = self.last_time.to_string();
        self.report
    }

    fn org_of(
        &mut self,
        state: &dyn StateReader,
        signer: &PublicKey,
    ) -> Result<String, ReplayError> {
        if let Some(org) = self.signers.get(signer) {
            return Ok(org.clone());
        }
        let org = org_of_signer(state, signer)
            .map_err(|e| ReplayError::Execution {
                height: 0,
                reason: format!("report: reading the signer's organisation: {e}"),
            })?
            .map_or_else(
                || format!("unknown key {}", &signer.to_hex()[..12]),
                |id| id.0,
            );
        self.signers.insert(*signer, org.clone());
        Ok(org)
    }

    fn grants(&mut self, time: Timestamp, org: &str) -> (&mut GrantCounts, &mut GrantCounts) {
        let total = self
            .report
            .grants_by_agency
            .entry(org.to_string())
            .or_default();
        // Formatted once per day rather than once per grant (blocks come in time order).
        let day_number = time.0 / DAY_MS;
        let today = match &self.last_day {
            Some((number, text)) if *number == day_number => text.clone(),
            _ => {
                let text = day(time);
                self.last_day = Some((day_number, text.clone()));
                text
            }
        };
        let daily = self
            .report
            .grants_by_day
            .entry(today)
            .or_default()
            .entry(org.to_string())
            .or_default();
        (total, daily)
    }

    fn event(
        &self,
        height: u64,
        tx_index: usize,
        time: Timestamp,
        org: &str,
        detail: String,
    ) -> Event {
        Event {
            height,
            tx_index,
            time: time.to_string(),
            org: org.to_string(),
            detail,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_success(
        &mut self,
        state: &dyn StateReader,
        height: u64,
        tx_index: usize,
        time: Timestamp,
        org: &str,
        call: &Call,
        output: &CallOutput,
    ) -> Result<(), ReplayError> {
        *self
            .report
            .calls
            .entry(call.name().to_string())
            .or_default() += 1;
        match (call, output) {
            (
                Call::IssueGrant(_) | Call::ApproveRequest { .. } | Call::DelegateGrant(_),
                CallOutput::Grant(_),
            ) => {
                let delegated = matches!(call, Call::DelegateGrant(_));
                let (total, daily) = self.grants(time, org);
                for counts in [total, daily] {
                    counts.issued += 1;
                    counts.delegated += u64::from(delegated);
                }
                if let Call::ApproveRequest { .. } = call {
                    self.report
                        .requests_by_agency
                        .entry(org.to_string())
                        .or_default()
                        .approved += 1;
                }
            }
            (Call::RevokeGrant { grant, .. }, CallOutput::Revoked(count)) => {
                let (total, daily) = self.grants(time, org);
                total.revoked += count;
                daily.revoked += count;
                if *count > 1 {
                    let anomalies = &mut self.report.anomalies;
                    anomalies.revocation_cascades += 1;
                    anomalies.grants_revoked_by_cascade += count - 1;
                    if anomalies.cascade_events.len() < MAX_EVENTS {
                        let detail = format!(
                            "revoking {grant} also revoked {} delegated grant(s)",
                            count - 1
                        );
                        let event = self.event(height, tx_index, time, org, detail);
                        self.report.anomalies.cascade_events.push(event);
                    }
                }
            }
            (Call::RequestAccess(_), _) => {
                self.report
                    .requests_by_agency
                    .entry(org.to_string())
                    .or_default()
                    .filed += 1;
            }
            (Call::RejectRequest { .. }, _) => {
                self.report
                    .requests_by_agency
                    .entry(org.to_string())
                    .or_default()
                    .rejected += 1;
            }
            (Call::Award { reason, points, .. }, _) => {
                let counts = self.civility(org, &reason.0);
                counts.awards += 1;
                counts.points_awarded += points;
            }
            (Call::Redeem { points, .. }, _) => {
                let counts = self
                    .report
                    .redemptions_by_service_point
                    .entry(org.to_string())
                    .or_default();
                counts.redemptions += 1;
                counts.points += points;
            }
            (Call::Reverse { record, why }, CallOutput::Record(_)) => {
                self.on_reversal(state, height, tx_index, time, org, *record, why)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn civility(&mut self, org: &str, reason: &str) -> &mut CivilityCounts {
        self.report
            .civility_by_issuer
            .entry(org.to_string())
            .or_default()
            .entry(reason.to_string())
            .or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn on_reversal(
        &mut self,
        state: &dyn StateReader,
        height: u64,
        tx_index: usize,
        time: Timestamp,
        org: &str,
        award: RecordId,
        why: &str,
    ) -> Result<(), ReplayError> {
        let record = get_record(state, award).map_err(|e| ReplayError::Execution {
            height,
            reason: format!("report: reading reversed {award}: {e}"),
        })?;
        let (reason, points) = match record {
            Some(r) => match r.kind {
                RecordKind::Award { reason, .. } => (reason.0, r.points),
                _ => ("(not an award)".to_string(), r.points),
            },
            None => ("(unknown record)".to_string(), 0),
        };
        let counts = self.civility(org, &reason);
        counts.reversals += 1;
        counts.points_reversed += points;
        self.report.anomalies.reversals += 1;
        if self.report.anomalies.reversal_events.len() < MAX_EVENTS {
            let detail = format!("{award} ({points} points, {reason}) reversed: {why}");
            let event = self.event(height, tx_index, time, org, detail);
            self.report.anomalies.reversal_events.push(event);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_failure(
        &mut self,
        height: u64,
        tx_index: usize,
        time: Timestamp,
        org: &str,
        code: u32,
        name: &str,
        message: &str,
    ) {
        *self
            .report
            .failures_by_error
            .entry(name.to_string())
            .or_default() += 1;
        if code == ErrorKind::QuotaExceeded.code() {
            self.report.anomalies.quota_breaches += 1;
            if self.report.anomalies.quota_breach_events.len() < MAX_EVENTS {
                let event = self.event(height, tx_index, time, org, message.to_string());
                self.report.anomalies.quota_breach_events.push(event);
            }
        }
    }
}

impl ReplayObserver for ReportBuilder {
    fn observe(
        &mut self,
        block: &Block,
        receipts: &[Receipt],
        state: &dyn StateReader,
    ) -> Result<(), ReplayError> {
        let height = block.header.height;
        let time = block.header.time;
        if height == 1 {
            self.report.first_block_time = time.to_string();
        }
        self.last_time = time;
        for (tx_index, (tx, receipt)) in block.txs.iter().zip(receipts).enumerate() {
            let org = self.org_of(state, &tx.body.signer)?;
            match &receipt.outcome {
                Outcome::Success { data } => {
                    // Both decoded by the contracts already; a failure here cannot be a success.
                    let (Ok(call), Ok(output)) =
                        (Call::decode(&tx.body.call), CallOutput::from_data(data))
                    else {
                        continue;
                    };
                    if matches!(call, Call::Propose(_) | Call::Approve(_)) {
                        // Governance may rotate keys: forget cached signers.
                        self.signers.clear();
                    }
                    self.on_success(state, height, tx_index, time, &org, &call, &output)?;
                }
                Outcome::Failure {
                    code,
                    name,
                    message,
                } => {
                    self.on_failure(height, tx_index, time, &org, *code, name, message);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, state: &dyn StateReader) -> Result<(), ReplayError> {
        // Expiries: every grant of the final state that ended unrevoked by the last block.
        let mut id = 1u64;
        loop {
            let grant = get_grant(state, GrantId(id)).map_err(|e| ReplayError::Execution {
                height: 0,
                reason: format!("report: reading grant#{id}: {e}"),
            })?;
            let Some(grant) = grant else { break };
            let ended = grant.valid_until <= self.last_time;
            let revoked_before_end = grant
                .revoked
                .as_ref()
                .is_some_and(|r| r.time < grant.valid_until);
            if ended && !revoked_before_end {
                let (total, daily) = self.grants(grant.valid_until, &grant.grantor.0);
                total.expired += 1;
                daily.expired += 1;
            }
            id += 1;
        }
        Ok(())
    }
}

impl AuditReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as text tables for a terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if let Some(s) = &self.summary {
            out += &format!(
                "Chain {} (genesis {}): {} blocks, {} txs ({} failed), {} signatures, verified in {:.2} s ({:.0} txs/s, {} threads)\n",
                s.chain_id, &s.genesis_hash[..16], s.blocks, s.txs, s.failed_txs, s.signatures, s.seconds, s.txs_per_second, s.threads
            );
            out += &format!(
                "Last block {}  state root {}\n",
                s.last_block_hash, s.final_state_root
            );
        }
        out += &format!(
            "Period: {} .. {}\n\n",
            self.first_block_time, self.last_block_time
        );
        out += &table(
            "Grants per agency",
            &["agency", "issued", "delegated", "revoked", "expired"],
            self.grants_by_agency.iter().map(|(org, c)| {
                vec![
                    org.clone(),
                    n(c.issued),
                    n(c.delegated),
                    n(c.revoked),
                    n(c.expired),
                ]
            }),
        );
        out += &table(
            "Access requests",
            &["agency", "filed", "approved", "rejected"],
            self.requests_by_agency
                .iter()
                .map(|(org, c)| vec![org.clone(), n(c.filed), n(c.approved), n(c.rejected)]),
        );
        out += &table(
            "Civility points per issuer and reason",
            &[
                "issuer",
                "reason",
                "awards",
                "points",
                "reversals",
                "points reversed",
            ],
            self.civility_by_issuer.iter().flat_map(|(org, reasons)| {
                reasons.iter().map(move |(reason, c)| {
                    vec![
                        org.clone(),
                        reason.clone(),
                        n(c.awards),
                        n(c.points_awarded),
                        n(c.reversals),
                        n(c.points_reversed),
                    ]
                })
            }),
        );
        out += &table(
            "Redemptions per service point",
            &["service point", "redemptions", "points"],
            self.redemptions_by_service_point
                .iter()
                .map(|(org, c)| vec![org.clone(), n(c.redemptions), n(c.points)]),
        );
        let a = &self.anomalies;
        out += &table(
            "Anomalies",
            &["kind", "count"],
            [
                vec![
                    "quota breaches (QUOTA_EXCEEDED)".into(),
                    n(a.quota_breaches),
                ],
                vec!["award reversals".into(), n(a.reversals)],
                vec!["revocation cascades".into(), n(a.revocation_cascades)],
                vec![
                    "grants revoked by cascade".into(),
                    n(a.grants_revoked_by_cascade),
                ],
            ],
        );
        out += &table(
            "Failed txs per error",
            &["error", "count"],
            self.failures_by_error
                .iter()
                .map(|(name, count)| vec![name.clone(), n(*count)]),
        );
        out
    }
}

fn n(value: u64) -> String {
    value.to_string()
}

/// A plain-text table with a title; columns sized to their widest cell.
fn table(title: &str, headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w.saturating_sub(c.chars().count());
                if i > 0 && c.parse::<u64>().is_ok() {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = format!("{title}\n");
    out += &line(headers.iter().map(|h| (*h).to_string()).collect());
    out += &line(widths.iter().map(|w| "-".repeat(*w)).collect());
    if rows.is_empty() {
        out += "  (none)\n";
    }
    for row in rows {
        out += &line(row);
    }
    out.push('\n');
    out
}
