//! The operator console (`GET /admin`, one embedded page) and its API
//! under `/api/v1/admin/`: the campus map, the dispatcher's board, today's
//! figures, order search with history, and the operator's actions.
//! Every route takes `Authorization: Bearer <admin.token>`; with no token
//! configured none of it exists (404).

use actix_web::{web, HttpResponse};
use base64::Engine;
use lastmile_actors::campus::PlaceKind;
use lastmile_actors::dispatch::{Board, CourierView};
use lastmile_actors::domain::{
    now_utc, parse_text, ChangedBy, ChinaDay, OpenId, Order, OrderId, Status,
};
use lastmile_actors::orders::figures::DayFigures;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Can, Dispatches, JsonBody, Operator, OrderPath, Pays, Reads};
use crate::routes::view::{OrderView, Viewer};
use crate::state::AppState;

/// The console page: plain HTML, CSS and JS, no CDN, no build step.
const CONSOLE_HTML: &str = include_str!("admin.html");
/// Most orders one search returns (a customer's newest).
const SEARCH_LIMIT: usize = 20;
/// Longest operator reason kept in a history.
const MAX_REASON_CHARS: usize = 200;

/// An admin answer: it carries phones, pickup codes and openids, so no
/// cache keeps it and no browser guesses another type for it.
pub(crate) fn private(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .json(body)
}

/// The console's CSP: its one inline script by hash, no other script.
fn console_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        use sha2::Digest;
        let script = CONSOLE_HTML
            .split_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map_or("", |(script, _)| script);
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(script.as_bytes()));
        format!(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' blob:; script-src 'sha256-{hash}'; frame-ancestors 'none'"
        )
    })
}

/// `GET /admin`: the console (404 when `admin.token` is unset; the page
/// itself holds no data, it asks for the token and calls the API).
pub async fn console(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.admin_token.is_none() {
        return Err(ApiError::NotFound("no such route".into()));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        // Its buttons refund money: never inside someone else's frame.
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", console_policy()))
        .body(CONSOLE_HTML))
}

/// A place on the map.
#[derive(Serialize, ToSchema)]
pub struct MapPlace {
    /// Its id (`place_id` everywhere else).
    id: String,
    /// Its name.
    name: String,
    /// What it is.
    kind: PlaceKind,
    /// Metres east of the map's origin.
    x: f64,
    /// Metres north of the map's origin.
    y: f64,
}

impl MapPlace {
    /// A map place as served.
    pub(crate) fn of(p: &lastmile_actors::campus::Place) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            kind: p.kind,
            x: p.x,
            y: p.y,
        }
    }
}

/// The campus map (`config/campus.toml`).
#[derive(Serialize, ToSchema)]
pub struct CampusMap {
    /// The campus.
    campus: String,
    /// Every place.
    places: Vec<MapPlace>,
}

/// The campus an admin request is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampusQuery {
    /// A campus id (default: the first campus the operator covers).
    #[param(value_type = Option<String>)]
    pub campus: Option<String>,
}

/// The campus map: every place with its kind and position.
#[utoipa::path(
    get,
    path = "/api/v1/admin/map",
    tag = "admin",
    security(("bearer" = [])),
    params(CampusQuery),
    responses(
        (status = 200, description = "The campus map", body = CampusMap),
        (status = 403, description = "The campus is not one of the operator's", body = ErrorBody),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn map(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<CampusQuery>,
) -> Result<HttpResponse, ApiError> {
    let campus = can.operator().campus(&state, query.campus.as_deref())?;
    let places = campus.places().iter().map(MapPlace::of).collect();
    Ok(private(CampusMap {
        campus: campus.id().to_owned(),
        places,
    }))
}

/// The dispatcher's board: couriers with their planned routes, and the
/// orders waiting for one.
#[utoipa::path(
    get,
    path = "/api/v1/admin/live",
    tag = "admin",
    security(("bearer" = [])),
    params(CampusQuery),
    responses(
        (status = 200, description = "Couriers with their planned routes, and waiting orders", body = Board),
        (status = 403, description = "The campus is not one of the operator's", body = ErrorBody),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn live(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<CampusQuery>,
) -> Result<HttpResponse, ApiError> {
    let campus = can.operator().campus(&state, query.campus.as_deref())?;
    Ok(private(state.dispatch.board(campus.campus_id()).await?))
}

/// Today's figures, and which day that is.
#[derive(Serialize, ToSchema)]
pub struct Today {
    /// The campus day (UTC+8), `YYYY-MM-DD`.
    day: ChinaDay,
    /// The figures of the orders created that day.
    #[serde(flatten)]
    figures: DayFigures,
}

/// Today's figures: orders created, paid, completed, refunded, revenue,
/// click-to-door percentiles.
#[utoipa::path(
    get,
    path = "/api/v1/admin/today",
    tag = "admin",
    security(("bearer" = [])),
    params(CampusQuery),
    responses(
        (status = 200, description = "Figures of the orders created today (campus time, UTC+8)", body = Today),
        (status = 403, description = "The campus is not one of the operator's", body = ErrorBody),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn today(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<CampusQuery>,
) -> Result<HttpResponse, ApiError> {
    let op = can.operator();
    // Every campus for an operator limited to none who names none.
    let campus = match (query.campus.as_deref(), op.campuses.is_empty()) {
        (None, true) => None,
        (named, _) => Some(state.campus_ref(&*op.campus(&state, named)?)),
    };
    let day = ChinaDay::of(now_utc());
    let figures = state.orders.figures_since(day.start(), campus).await?;
    Ok(private(Today { day, figures }))
}

/// One entry of an order's history.
#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// `create`, `payment_confirmed`, `cancel`, `assign`, `unassign`,
    /// `pick_up`, `deliver`, `confirm`, `refund_confirmed`,
    /// `operator_refund`; null for a note that changed nothing.
    event: Option<&'static str>,
    /// The status after it.
    status: Status,
    /// `customer`, `courier`, `wechat_pay`, `dispatcher`, `timer` or `operator`.
    #[schema(value_type = String)]
    by: &'static str,
    /// The courier's or customer's openid, when a person did it.
    by_openid: Option<String>,
    /// The operator's name, when an operator did it (null for changes
    /// made before operators had names).
    operator: Option<String>,
    /// The operator's reason, or what a note says.
    note: String,
}

/// An order with its whole history, as operators see it.
#[derive(Serialize, ToSchema)]
pub struct AdminOrder {
    /// The order.
    #[serde(flatten)]
    order: OrderView,
    /// Creation first, then every change.
    history: Vec<HistoryEntry>,
    /// WeChat's content check asked operators to look at its texts (or
    /// could not check them).
    flagged: bool,
    /// When WeChat's shipping-info service took the delivery (null until
    /// then, and always without `wechat.shipping_info`).
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "time::serde::rfc3339::option")]
    shipping_reported_at: Option<OffsetDateTime>,
}

impl AdminOrder {
    /// An order with its history, as operators see it.
    pub(crate) async fn of(state: &AppState, order: Order) -> Self {
        let mut history = vec![HistoryEntry {
            at: order.created_at,
            event: Some("create"),
            status: Status::AwaitingPayment,
            by: ChangedBy::Customer.kind(),
            by_openid: Some(order.customer.to_string()),
            operator: None,
            note: String::new(),
        }];
        history.extend(order.history().iter().map(|c| HistoryEntry {
            at: c.at,
            event: c.event.map(|e| e.as_str()),
            status: c.to,
            by: c.by.kind(),
            by_openid: match &c.by {
                ChangedBy::Courier(id) => Some(id.to_string()),
                ChangedBy::Customer => Some(order.customer.to_string()),
                _ => None,
            },
            operator: match &c.by {
                ChangedBy::Operator(name) => name.as_ref().map(|n| n.as_str().to_owned()),
                _ => None,
            },
            note: c.note.clone(),
        }));
        Self {
            flagged: order.extras.flagged,
            shipping_reported_at: order.extras.shipping_reported_at,
            order: OrderView::of(state, order, Viewer::Operator).await,
            history,
        }
    }
}

/// Orders found.
#[derive(Serialize, ToSchema)]
pub struct AdminOrders {
    /// The order with that id, or the customer's newest orders.
    orders: Vec<AdminOrder>,
}

/// What to look for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// An order id or a customer's openid.
    #[param(required = true, value_type = String)]
    q: Option<String>,
}

/// Finds an order by id, or a customer's newest orders by openid, each
/// with its history.
#[utoipa::path(
    get,
    path = "/api/v1/admin/orders",
    tag = "admin",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching orders with their history (empty when none)", body = AdminOrders),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn search(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.q.as_deref().unwrap_or("");
    if OrderId::parse(q).is_err() && OpenId::parse(q).is_err() {
        return Err(ApiError::Validation(
            "q must be an order id or an openid".into(),
        ));
    }
    let mut found = Vec::new();
    if let Ok(id) = OrderId::parse(q) {
        found.extend(state.orders.peek(&id).await?);
    }
    if found.is_empty() {
        if let Ok(customer) = OpenId::parse(q) {
            let (orders, _) = state
                .orders
                .list(customer, None, SEARCH_LIMIT, None)
                .await?;
            found = orders;
        }
    }
    let mut orders = Vec::with_capacity(found.len());
    for order in found
        .into_iter()
        .filter(|o| can.operator().covers_order(&state, o))
    {
        orders.push(AdminOrder::of(&state, order).await);
    }
    Ok(private(AdminOrders { orders }))
}

/// An operator's refund.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundBody {
    /// Why (kept in the order's history), 1–200 characters.
    #[schema(required = true, value_type = String, example = "顾客投诉：餐洒了")]
    reason: Option<String>,
}

/// Refunds a paid order, whatever became of it, or retries a refund that
/// failed (with the same refund number, as WeChat Pay asks); the reason
/// goes into its history.
#[utoipa::path(
    post,
    path = "/api/v1/admin/orders/{id}/refund",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = RefundBody,
    responses(
        (status = 200, description = "Refunding: the money goes back through WeChat Pay", body = AdminOrder),
        (status = 404, description = "No such order (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Not paid, or already refunded", body = ErrorBody),
    )
)]
pub async fn refund(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    OrderPath(id): OrderPath,
    JsonBody(body): JsonBody<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = reason(body.reason)?;
    op.may_act_on(&state, &id).await?;
    let order = state
        .orders
        .operator_refund(id, op.changed_by(), reason)
        .await?;
    acted(&op, "refund");
    Ok(private(AdminOrder::of(&state, order).await))
}

/// Records that a refund WeChat Pay gave up on (`refund_failed`) was
/// settled by hand (cash, a transfer): the order is `refunded`; how goes
/// into its history.
#[utoipa::path(
    post,
    path = "/api/v1/admin/orders/{id}/settle",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = RefundBody,
    responses(
        (status = 200, description = "Refunded (settled by hand)", body = AdminOrder),
        (status = 404, description = "No such order (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Its refund has not failed", body = ErrorBody),
    )
)]
pub async fn settle(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    OrderPath(id): OrderPath,
    JsonBody(body): JsonBody<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = reason(body.reason)?;
    op.may_act_on(&state, &id).await?;
    let order = state
        .orders
        .settle_refund(id, op.changed_by(), reason)
        .await?;
    acted(&op, "settle");
    Ok(private(AdminOrder::of(&state, order).await))
}

pub(crate) fn reason(raw: Option<String>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Validation("reason is required".into()))?;
    Ok(parse_text(&raw, "reason", 1, MAX_REASON_CHARS)?)
}

/// An operator's reassignment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReassignBody {
    /// The openid of the online courier who takes the order.
    #[schema(required = true, value_type = String)]
    courier: Option<String>,
}

/// Hands an order that is not picked up yet to another online courier.
#[utoipa::path(
    post,
    path = "/api/v1/admin/orders/{id}/reassign",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = ReassignBody,
    responses(
        (status = 200, description = "The courier has it now", body = AdminOrder),
        (status = 403, description = "The courier is not online", body = ErrorBody),
        (status = 404, description = "No such order or courier (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Picked up already, not paid, or the courier is full", body = ErrorBody),
    )
)]
pub async fn reassign(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    OrderPath(id): OrderPath,
    JsonBody(body): JsonBody<ReassignBody>,
) -> Result<HttpResponse, ApiError> {
    let courier = body
        .courier
        .ok_or_else(|| ApiError::Validation("courier is required".into()))?;
    let courier = OpenId::parse(&courier)
        .map_err(|_| ApiError::Validation("courier must be an openid".into()))?;
    op.may_act_on(&state, &id).await?;
    let order = state
        .dispatch
        .reassign(id, courier, op.name.clone())
        .await?;
    acted(&op, "reassign");
    Ok(private(AdminOrder::of(&state, order).await))
}

/// Takes a courier offline; each of their open orders notes it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/couriers/{openid}/offline",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The courier's openid")),
    responses(
        (status = 200, description = "Offline; their open orders note it and go back to the pool if untouched", body = CourierView),
        (status = 404, description = "No such courier (or no admin token and no operators)", body = ErrorBody),
    )
)]
pub async fn force_offline(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let courier =
        OpenId::parse(&openid).map_err(|_| ApiError::NotFound("no such courier".into()))?;
    op.may_act_on_courier(&state, &courier)?;
    let (courier, changed) = state
        .dispatch
        .force_offline(courier, op.name.clone())
        .await?;
    if changed {
        acted(&op, "force_offline");
    }
    Ok(private(courier))
}

/// Counts an operator action that took effect.
pub(crate) fn acted(op: &Operator, action: &'static str) {
    metrics::counter!(
        "lastmile_admin_actions_total",
        "action" => action,
        "operator" => op.name.as_str().to_owned()
    )
    .increment(1);
    tracing::info!(operator = op.name.as_str(), role = %op.role, action, "operator action");
}
