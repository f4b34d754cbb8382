//! `gongzhi.v1.Civility`: residents' point balances and histories, read from committed state.
//!
//! Residents are 32-byte pseudonyms; a resident with no records has balance 0 and an empty
//! history (not an error). History pages are newest first and pinned to one height (see the
//! paging notes in `registry.rs`): page `k` of a history of `n` records holds the records
//! `n-1-offset` down to `n-offset-limit` of the resident's list at that height.

use gongzhi_contracts::civility::{CivilityRecord as Record, RecordKind};
use gongzhi_contracts::{query, Page, ResidentId};
use gongzhi_proto::v1::civility_server::Civility;
use gongzhi_proto::v1::{
    CivilityRecord, CivilityRecordKind, GetBalanceRequest, GetBalanceResponse, GetHistoryRequest,
    GetHistoryResponse,
};
use tonic::{Request, Response, Status};

use super::consistency::{internal, resolve_height};
use super::convert::hash_field;
use super::registry::{require_synced, wait_budget, PageCursor};
use crate::run::NodeContext;

/// The Civility service.
#[derive(Debug, Clone)]
pub struct CivilityService {
    context: NodeContext,
}

impl CivilityService {
    /// Serve from `context`.
    pub fn new(context: NodeContext) -> CivilityService {
        CivilityService { context }
    }
}

fn resident(bytes: &[u8]) -> Result<ResidentId, Status> {
    Ok(ResidentId(hash_field(bytes, "resident_id")?.0))
}

fn record(r: &Record) -> CivilityRecord {
    let mut out = CivilityRecord {
        record_id: r.id.0,
        points: r.points,
        org_id: r.org.to_string(),
        height: r.height,
        time_ms: r.time.millis(),
        ..CivilityRecord::default()
    };
    match &r.kind {
        RecordKind::Award {
            reason,
            reversed_by,
        } => {
            out.kind = CivilityRecordKind::Award as i32;
            out.reason_code = reason.to_string();
            out.reversed_by_record_id = reversed_by.map_or(0, |id| id.0);
        }
        RecordKind::Redemption { item } => {
            out.kind = CivilityRecordKind::Redemption as i32;
            out.redeemed_item = item.clone();
        }
        RecordKind::Reversal { of, why } => {
            out.kind = CivilityRecordKind::Reversal as i32;
            out.reversed_record_id = of.0;
            out.reversal_reason = why.clone();
        }
    }
    out
}

#[tonic::async_trait]
impl Civility for CivilityService {
    async fn get_balance(
        &self,
        request: Request<GetBalanceRequest>,
    ) -> Result<Response<GetBalanceResponse>, Status> {
        require_synced(&self.context)?;
        let deadline = wait_budget(request.metadata(), &self.context);
        let request = request.into_inner();
        let id = resident(&request.resident_id)?;
        let resolved =
            resolve_height(&self.context, request.consistency.as_ref(), deadline).await?;
        let balance = resolved
            .read(&self.context, move |state| {
                query::balance(state, &id).map_err(internal)
            })
            .await?;
        Ok(Response::new(GetBalanceResponse {
            resident_id: request.resident_id,
            balance,
            state: Some(resolved.to_proto()),
        }))
    }

    async fn get_history(
        &self,
        request: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let id = resident(&request.resident_id)?;
        let cursor = PageCursor::resolve(
            &self.context,
            &metadata,
            request.consistency.as_ref(),
            request.page_size,
            &request.page_token,
        )
        .await?;
        // The list is oldest first; newest first means counting from its end.
        let (total, newest_index, oldest_index, chunk) = cursor
            .state
            .read(&self.context, move |state| {
                let total = query::history(state, &id, Page { start: 0, limit: 0 })
                    .map_err(internal)?
                    .total;
                // One past the newest on this page.
                let newest_index = total.saturating_sub(cursor.offset);
                let oldest_index = newest_index.saturating_sub(cursor.limit);
                let page = Page {
                    start: oldest_index,
                    limit: newest_index - oldest_index,
                };
                let chunk = query::history(state, &id, page).map_err(internal)?;
                Ok((total, newest_index, oldest_index, chunk))
            })
            .await?;
        let records = chunk.items.iter().rev().map(record).collect();
        let next_page_token = if oldest_index > 0 {
            format!(
                "{}.{}",
                cursor.state.height,
                cursor.offset + (newest_index - oldest_index)
            )
        } else {
            String::new()
        };
        Ok(Response::new(GetHistoryResponse {
            records,
            next_page_token,
            state: Some(cursor.state.to_proto()),
            total_size: total,
        }))
    }
}
