//! Money: a courier's wallet, and the operator's proof that the ledger
//! balances.

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::OrderId;
use lastmile_actors::ledger::{earning, Check, Entry, PostingKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Operator};
use crate::routes::orders::page_limit;
use crate::state::AppState;

/// A page of the wallet's statement.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletQuery {
    /// Lines per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>, pattern = "^[0-9]{0,20}$")]
    cursor: Option<String>,
}

/// One line of a wallet's statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    /// `earning`: a completed order's pay (fee less commission, and the tip).
    kind: PostingKind,
    /// The order it is about, if any.
    #[schema(value_type = Option<String>)]
    order_id: Option<OrderId>,
    /// The withdrawal it is about, if any.
    withdrawal_id: Option<String>,
    /// Signed fen into what may be withdrawn.
    amount_fen: i64,
}

impl From<Entry> for WalletEntry {
    fn from(e: Entry) -> Self {
        Self {
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at_unix_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            kind: e.kind,
            order_id: e.order,
            withdrawal_id: None,
            amount_fen: e.amount,
        }
    }
}

/// A courier's money.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    /// What may be withdrawn now.
    available_fen: i64,
    /// What my orders not yet completed will pay me (assigned, picked up,
    /// delivered and not yet confirmed).
    pending_fen: i64,
    /// What I asked to withdraw and is not paid out or returned yet.
    withdrawing_fen: i64,
    /// The statement of what may be withdrawn, newest first.
    entries: Vec<WalletEntry>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// The caller's wallet: what they may withdraw, what their open orders
/// will pay, and the statement. Anyone signed in has one (empty until
/// they deliver).
#[utoipa::path(
    get,
    path = "/api/v1/couriers/me/wallet",
    tag = "money",
    security(("bearer" = [])),
    params(WalletQuery),
    responses((status = 200, description = "The caller's wallet", body = WalletView))
)]
pub async fn wallet(
    state: web::Data<AppState>,
    Caller(me): Caller,
    query: web::Query<WalletQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit.as_deref())?;
    let before = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::Validation("cursor is not valid".into()))?,
        ),
    };
    let percent = state.commission_percent;
    let pending: i64 = state
        .orders
        .unsettled_of(me.clone())
        .await?
        .iter()
        .map(|o| i64::from(earning(o.total_fen(), o.tip_fen.get(), percent)))
        .sum();
    let wallet = state.ledger.wallet(me, before, limit).await?;
    Ok(HttpResponse::Ok().json(WalletView {
        available_fen: wallet.available_fen,
        pending_fen: pending,
        withdrawing_fen: wallet.withdrawing_fen,
        entries: wallet.entries.into_iter().map(WalletEntry::from).collect(),
        next_cursor: wallet.next_before.map(|seq| seq.to_string()),
    }))
}

/// Proves the ledger's invariants: every account sums to zero, none but
/// WeChat Pay's clearing is negative, and no finished order's escrow
/// holds money. Also checked at start (`/readyz` answers 503 while the
/// book does not balance).
#[utoipa::path(
    get,
    path = "/api/v1/admin/ledger/check",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The check (balanced or not)", body = Check),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn ledger_check(
    _: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.ledger.check().await?))
}
