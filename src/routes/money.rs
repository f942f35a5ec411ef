//! Money: a courier's wallet and withdrawals, the operators' withdrawal
//! queue, and their proof that the ledger balances.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lastmile_actors::domain::{
    earning, Check, ChinaDay, Entry, LineKind, PostingKind, Reconciliation, Subject, Withdrawal,
    WithdrawalId, WithdrawalStatus,
};
use lastmile_actors::domain::{json_u32, OrderId};
use lastmile_actors::ledger::{Canceller, Decision, MoneyDay};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Can, JsonBody, Operator, Pays, Reads};
use crate::routes::admin::{acted, private, reason};
use crate::routes::orders::{idempotency_key, page_limit};
use crate::state::AppState;

/// A page of the wallet's statement.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletQuery {
    /// Lines per page, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>, pattern = "^[0-9]{0,19}$")]
    cursor: Option<String>,
}

/// One line of a wallet's statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    /// `earning` (a completed order's pay: fee less commission, and the
    /// tip), `withdrawal` (set aside for a withdrawal), `withdrawal_returned`
    /// (a rejected, failed or cancelled withdrawal back).
    kind: PostingKind,
    /// The order it is about, if any.
    #[schema(value_type = Option<String>)]
    order_id: Option<OrderId>,
    /// The withdrawal it is about, if any.
    #[schema(value_type = Option<String>)]
    withdrawal_id: Option<WithdrawalId>,
    /// Signed fen into what may be withdrawn.
    amount_fen: i64,
}

impl From<Entry> for WalletEntry {
    fn from(e: Entry) -> Self {
        let (order_id, withdrawal_id) = match e.subject {
            Subject::Order(id) => (Some(id), None),
            Subject::Withdrawal(id) => (None, Some(id)),
        };
        Self {
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at_unix_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            kind: e.kind,
            order_id,
            withdrawal_id,
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
    let unsettled = state.orders.unsettled_of(me.clone()).await?;
    let ids = unsettled.iter().map(|o| o.id.clone()).collect();
    let rates = state.ledger.rates_of(ids).await?;
    // Each at the commission its order was paid under.
    let pending: i64 = unsettled
        .iter()
        .zip(rates)
        .map(|(o, rate)| {
            let percent = rate.unwrap_or_else(|| state.commission.on(o.extras.campus.as_ref()));
            i64::from(earning(o.total_fen(), o.tip_fen.get(), percent))
        })
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
        (status = 403, description = "The operator is limited to campuses", body = ErrorBody),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn ledger_check(
    can: Can<Reads>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    can.operator().sees_whole_book()?;
    Ok(HttpResponse::Ok().json(state.ledger.check().await?))
}

/// A withdrawal request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WithdrawalBody {
    /// How much, in fen: at least `money.min_withdrawal_fen`, at most what
    /// is available and what the day's limit leaves.
    #[schema(required = true, value_type = u32, minimum = 1)]
    amount_fen: Option<serde_json::Number>,
}

/// A page of withdrawals.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithdrawalPageQuery {
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    cursor: Option<String>,
}

/// The operators' queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Only withdrawals in this status.
    #[param(value_type = Option<WithdrawalStatus>)]
    status: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    cursor: Option<String>,
}

/// A page of withdrawals, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalPage {
    /// The withdrawals.
    withdrawals: Vec<Withdrawal>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// A withdrawal in the operators' queue: whose it is, too.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedWithdrawal {
    /// The withdrawal.
    #[serde(flatten)]
    withdrawal: Withdrawal,
    /// The courier's openid.
    courier: String,
}

/// The operators' queue page.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePage {
    /// The withdrawals, newest first.
    withdrawals: Vec<QueuedWithdrawal>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// An operator's rejection.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectBody {
    /// Why (the courier sees it), 1–200 characters.
    #[schema(required = true, value_type = String, example = "学生证信息不符")]
    reason: Option<String>,
}

fn cursor(raw: Option<&str>) -> Result<Option<WithdrawalId>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) => WithdrawalId::parse(s)
            .map(Some)
            .map_err(|_| ApiError::Validation("cursor is not valid".into())),
    }
}

/// The page's cursor: the last id when the page is full.
fn next_cursor(page: &[Withdrawal], limit: usize) -> Option<String> {
    (page.len() == limit)
        .then(|| page.last().map(|w| w.id.to_string()))
        .flatten()
}

/// The `{id}` of a withdrawal route; one that cannot exist is not found.
fn withdrawal_path(req: &HttpRequest) -> Result<WithdrawalId, ApiError> {
    req.match_info()
        .get("id")
        .and_then(|raw| WithdrawalId::parse(raw).ok())
        .ok_or_else(|| ApiError::NotFound("no such withdrawal".into()))
}

/// Asks to withdraw from what is available. With `money.withdrawal_review`
/// it waits for an operator (`reviewing`), else it is paid at once
/// (`transferring`). The amount leaves what is available at once and comes
/// back if the withdrawal is rejected, fails or is cancelled.
#[utoipa::path(
    post,
    path = "/api/v1/couriers/me/withdrawals",
    tag = "money",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "1–64 visible ASCII characters; a retry with the same key returns the first withdrawal"),
    ),
    request_body = WithdrawalBody,
    responses(
        (status = 201, description = "Asked for (a replayed Idempotency-Key answers the first one)", body = Withdrawal),
        (status = 409, description = "More than available, or past the day's limit", body = ErrorBody),
    )
)]
pub async fn withdraw(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<WithdrawalBody>,
) -> Result<HttpResponse, ApiError> {
    let amount = body
        .amount_fen
        .ok_or_else(|| ApiError::Validation("amount_fen is required".into()))?;
    let amount = json_u32(&amount).filter(|n| *n > 0).ok_or_else(|| {
        ApiError::Validation("amount_fen must be a positive whole number of fen".into())
    })?;
    let key = idempotency_key(&req)?;
    let withdrawal = state.ledger.request_withdrawal(me, amount, key).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(withdrawal))
}

/// My withdrawals, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/couriers/me/withdrawals",
    tag = "money",
    security(("bearer" = [])),
    params(WithdrawalPageQuery),
    responses((status = 200, description = "The caller's withdrawals", body = WithdrawalPage))
)]
pub async fn my_withdrawals(
    state: web::Data<AppState>,
    Caller(me): Caller,
    query: web::Query<WithdrawalPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit.as_deref())?;
    let before = cursor(query.cursor.as_deref())?;
    let page = state.ledger.withdrawals_of(me, before, limit).await?;
    let next_cursor = next_cursor(&page, limit);
    Ok(HttpResponse::Ok().json(WithdrawalPage {
        withdrawals: page,
        next_cursor,
    }))
}

/// The withdrawal queue, newest first (`status=reviewing`: what waits for
/// a decision).
#[utoipa::path(
    get,
    path = "/api/v1/admin/withdrawals",
    tag = "admin",
    security(("bearer" = [])),
    params(QueueQuery),
    responses(
        (status = 200, description = "Withdrawals", body = QueuePage),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn queue(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    let couriers = can.operator().money_scope(&state);
    let status = query
        .status
        .as_deref()
        .map(WithdrawalStatus::parse)
        .transpose()?;
    let limit = page_limit(query.limit.as_deref())?;
    let before = cursor(query.cursor.as_deref())?;
    let page = state
        .ledger
        .withdrawal_queue(status, before, limit, couriers)
        .await?;
    let next_cursor = next_cursor(&page, limit);
    Ok(private(QueuePage {
        withdrawals: page
            .into_iter()
            .map(|w| QueuedWithdrawal {
                courier: w.courier.to_string(),
                withdrawal: w,
            })
            .collect(),
        next_cursor,
    }))
}

async fn decide(
    state: &AppState,
    op: &Operator,
    req: &HttpRequest,
    decision: Decision,
    action: &'static str,
) -> Result<HttpResponse, ApiError> {
    let id = withdrawal_path(req)?;
    may_act_on_withdrawal(state, op, &id).await?;
    let withdrawal = state.ledger.decide(id, decision).await?;
    acted(op, action);
    Ok(queued(withdrawal))
}

/// Not found unless the operator covers the campus of the withdrawal's
/// courier.
async fn may_act_on_withdrawal(
    state: &AppState,
    op: &Operator,
    id: &WithdrawalId,
) -> Result<(), ApiError> {
    if op.campuses.is_empty() {
        return Ok(());
    }
    let withdrawal = state.ledger.withdrawal(id.clone()).await?;
    op.may_see_money_of(state, &withdrawal.courier)
}

/// A withdrawal as the operators see it (with its courier).
fn queued(withdrawal: Withdrawal) -> HttpResponse {
    private(QueuedWithdrawal {
        courier: withdrawal.courier.to_string(),
        withdrawal,
    })
}

/// Approves a withdrawal that is `reviewing`: it is paid (`transferring`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/withdrawals/{id}/approve",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Withdrawal id")),
    responses(
        (status = 200, description = "Approved", body = QueuedWithdrawal),
        (status = 404, description = "No such withdrawal (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Not reviewing", body = ErrorBody),
    )
)]
pub async fn approve(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    decide(&state, &op, &req, Decision::Approve, "approve_withdrawal").await
}

/// Rejects a withdrawal that is `reviewing`, saying why: the amount is
/// available again.
#[utoipa::path(
    post,
    path = "/api/v1/admin/withdrawals/{id}/reject",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Withdrawal id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "Rejected", body = QueuedWithdrawal),
        (status = 404, description = "No such withdrawal (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Not reviewing", body = ErrorBody),
    )
)]
pub async fn reject(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody<RejectBody>,
) -> Result<HttpResponse, ApiError> {
    let why = reason(body.reason)?;
    decide(
        &state,
        &op,
        &req,
        Decision::Reject(why),
        "reject_withdrawal",
    )
    .await
}

/// Records that a `transferring` withdrawal was paid by hand
/// (`money.payout = "manual"`; 409 with WeChat Pay transfers).
#[utoipa::path(
    post,
    path = "/api/v1/admin/withdrawals/{id}/paid",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Withdrawal id")),
    responses(
        (status = 200, description = "Succeeded", body = QueuedWithdrawal),
        (status = 404, description = "No such withdrawal (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Not transferring, or payouts are WeChat Pay transfers", body = ErrorBody),
    )
)]
pub async fn paid(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    decide(
        &state,
        &op,
        &req,
        Decision::PaidByHand,
        "withdrawal_paid_by_hand",
    )
    .await
}

/// Calls off one of my withdrawals (409 while an operator pays it by
/// hand). One still `reviewing` is cancelled at once; one waiting for my
/// confirmation in WeChat is cancelled through WeChat Pay, and its money
/// comes back when WeChat Pay confirms the cancellation (usually at once;
/// else it stays `wait_user_confirm` until it does — or until it turns out
/// I had confirmed it first).
#[utoipa::path(
    post,
    path = "/api/v1/couriers/me/withdrawals/{id}/cancel",
    tag = "money",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Withdrawal id")),
    responses(
        (status = 200, description = "Cancelled (or being cancelled by WeChat Pay)", body = Withdrawal),
        (status = 404, description = "No such withdrawal of mine", body = ErrorBody),
        (status = 409, description = "Paid, finished, being handed to WeChat Pay, or WeChat Pay would not cancel it", body = ErrorBody),
        (status = 503, description = "WeChat Pay could not be asked; try again", body = ErrorBody),
    )
)]
pub async fn cancel_my_withdrawal(
    state: web::Data<AppState>,
    Caller(me): Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = withdrawal_path(&req)?;
    let withdrawal = state
        .ledger
        .cancel_withdrawal(id, Canceller::Courier(me))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(withdrawal))
}

/// Calls off a withdrawal, saying why (the courier sees it): one
/// `reviewing`, or `transferring` to be paid by hand, at once; one waiting
/// for its courier's confirmation through WeChat Pay (the money comes back
/// when WeChat Pay confirms the cancellation).
#[utoipa::path(
    post,
    path = "/api/v1/admin/withdrawals/{id}/cancel",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Withdrawal id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "Cancelled (or being cancelled by WeChat Pay)", body = QueuedWithdrawal),
        (status = 404, description = "No such withdrawal (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Paid, finished, being handed to WeChat Pay, or WeChat Pay would not cancel it", body = ErrorBody),
        (status = 503, description = "WeChat Pay could not be asked; try again", body = ErrorBody),
    )
)]
pub async fn cancel_withdrawal(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonBody(body): JsonBody<RejectBody>,
) -> Result<HttpResponse, ApiError> {
    let why = reason(body.reason)?;
    let id = withdrawal_path(&req)?;
    may_act_on_withdrawal(&state, &op, &id).await?;
    let withdrawal = state
        .ledger
        .cancel_withdrawal(id, Canceller::Operator(why))
        .await?;
    acted(&op, "cancel_withdrawal");
    Ok(queued(withdrawal))
}

/// A China day.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The China day, `YYYY-MM-DD`.
    #[param(required = true, value_type = String, format = Date)]
    date: Option<String>,
}

fn day(date: Option<&str>) -> Result<ChinaDay, ApiError> {
    let text = date.ok_or_else(|| ApiError::Validation("date is required (YYYY-MM-DD)".into()))?;
    ChinaDay::parse(text)
        .map_err(|_| ApiError::Validation("date must be a day such as 2026-12-02".into()))
}

/// A day's reconciliation with WeChat Pay's trade bill, as it last ran
/// (daily at `money.reconcile_at` for the day before, or on demand).
#[utoipa::path(
    get,
    path = "/api/v1/admin/reconciliation",
    tag = "admin",
    security(("bearer" = [])),
    params(DayQuery),
    responses(
        (status = 200, description = "The report: lines on each side, what matched, each mismatch", body = Reconciliation),
        (status = 403, description = "The operator is limited to campuses", body = ErrorBody),
        (status = 404, description = "Not reconciled yet (or admin.token is not set)", body = ErrorBody),
    )
)]
pub async fn reconciliation(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<DayQuery>,
) -> Result<HttpResponse, ApiError> {
    can.operator().sees_whole_book()?;
    let day = day(query.date.as_deref())?;
    match state.ledger.reconciliation(day).await? {
        Some(report) => Ok(private(report)),
        None => Err(ApiError::NotFound("that day was not reconciled yet".into())),
    }
}

/// Reconciles a day now: downloads WeChat Pay's trade bill (ALL) and
/// compares it line by line with the ledger (a re-run replaces the report).
#[utoipa::path(
    post,
    path = "/api/v1/admin/reconciliation",
    tag = "admin",
    security(("bearer" = [])),
    params(DayQuery),
    responses(
        (status = 200, description = "The report", body = Reconciliation),
        (status = 403, description = "The operator is limited to campuses", body = ErrorBody),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn reconcile(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    query: web::Query<DayQuery>,
) -> Result<HttpResponse, ApiError> {
    op.sees_whole_book()?;
    let day = day(query.date.as_deref())?;
    let report = state.ledger.reconcile(day).await?;
    acted(&op, "reconcile");
    Ok(private(report))
}

/// A China day's money (default: today): customers' payments, refunds,
/// the platform's commission, and every courier's balances now.
#[utoipa::path(
    get,
    path = "/api/v1/admin/money",
    tag = "admin",
    security(("bearer" = [])),
    params(OptionalDayQuery),
    responses(
        (status = 200, description = "The day's money", body = MoneyDay),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn money_day(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<OptionalDayQuery>,
) -> Result<HttpResponse, ApiError> {
    let op = can.operator();
    let date = match query.date.as_deref() {
        Some(_) => day(query.date.as_deref())?,
        None => ChinaDay::of(OffsetDateTime::now_utc()),
    };
    let mut money = state.ledger.money_day(date).await?;
    if let Some(couriers) = op.money_scope(&state) {
        scope_money_day(&state, op, &mut money, &couriers).await?;
    }
    Ok(private(money))
}

/// A limited operator's day: the money of its campuses' orders and the
/// balances of its campuses' couriers.
async fn scope_money_day(
    state: &AppState,
    op: &Operator,
    money: &mut MoneyDay,
    couriers: &std::collections::HashSet<lastmile_actors::domain::OpenId>,
) -> Result<(), ApiError> {
    money.couriers.retain(|c| {
        lastmile_actors::domain::OpenId::parse(&c.openid).is_ok_and(|o| couriers.contains(&o))
    });
    let ids: Vec<OrderId> = money
        .lines
        .keys()
        .filter_map(|(_, order)| OrderId::parse(order).ok())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let found = state.orders.peek_all(&ids).await?;
    let theirs: std::collections::HashSet<&str> = ids
        .iter()
        .zip(&found)
        .filter(|(_, o)| o.as_ref().is_some_and(|o| op.covers_order(state, o)))
        .map(|(id, _)| id.as_str())
        .collect();
    let total = |what: LineKind| -> u64 {
        money
            .lines
            .iter()
            .filter(|((w, order), _)| *w == what && theirs.contains(order.as_str()))
            .map(|(_, fen)| *fen)
            .sum()
    };
    money.payments_fen = total(LineKind::Payment);
    money.refunds_fen = total(LineKind::Refund);
    money.commission_fen = total(LineKind::Commission);
    Ok(())
}

/// An optional China day.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OptionalDayQuery {
    /// The China day, `YYYY-MM-DD` (default today).
    #[param(value_type = Option<String>, format = Date)]
    date: Option<String>,
}
