//! Customer order routes: create, get, list, cancel.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lastmile_actors::campus::Campus;
use lastmile_actors::domain::{
    now_utc, parse_ready_at, parse_text, Fen, IdempotencyKey, Location, NewOrder, OrderId,
    OrderKind, PlaceId, Status, MAX_PICKUP_CODE_CHARS, MAX_TEXT_CHARS,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::{ActionBody, Caller, JsonBody, OrderPath};
use crate::routes::view::OrderView;
use crate::state::AppState;

/// Page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 20;
/// Largest page.
const MAX_LIMIT: usize = 100;

/// The create-order body as sent; every field is checked in [`parse_new_order`].
#[derive(Debug, Deserialize)]
pub struct CreateOrderBody {
    kind: Option<String>,
    pickup: Option<LocationBody>,
    dropoff: Option<LocationBody>,
    pickup_code: Option<String>,
    fee_fen: Option<serde_json::Number>,
    note: Option<String>,
    ready_at: Option<String>,
}

/// A location as sent.
#[derive(Debug, Deserialize)]
pub struct LocationBody {
    place_id: Option<String>,
    detail: Option<String>,
}

/// Query of the list endpoint.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One page of the list endpoint.
#[derive(Serialize)]
struct OrderPage {
    orders: Vec<OrderView>,
    next_cursor: Option<String>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Validation(format!("{field} is required")))
}

fn parse_location(
    body: Option<LocationBody>,
    field: &str,
    campus: &Campus,
) -> Result<Location, ApiError> {
    let body = required(body, field)?;
    let place = required(body.place_id, &format!("{field}.place_id"))?;
    let detail = required(body.detail, &format!("{field}.detail"))?;
    Ok(Location {
        place_id: PlaceId::parse(&place, campus, &format!("{field}.place_id"))?,
        detail: parse_text(&detail, &format!("{field}.detail"), 1, MAX_TEXT_CHARS)?,
    })
}

/// Turns the raw body into a [`NewOrder`], naming the first bad field.
pub fn parse_new_order(
    body: CreateOrderBody,
    campus: &Campus,
    now: OffsetDateTime,
) -> Result<NewOrder, ApiError> {
    let kind = OrderKind::parse(&required(body.kind, "kind")?)?;
    let pickup = parse_location(body.pickup, "pickup", campus)?;
    let dropoff = parse_location(body.dropoff, "dropoff", campus)?;
    let fee_fen = Fen::parse_json(&required(body.fee_fen, "fee_fen")?)?;
    let pickup_code = parse_text(
        body.pickup_code.as_deref().unwrap_or(""),
        "pickup_code",
        0,
        MAX_PICKUP_CODE_CHARS,
    )?;
    let note = parse_text(
        body.note.as_deref().unwrap_or(""),
        "note",
        0,
        MAX_TEXT_CHARS,
    )?;
    let ready_at = match body.ready_at.as_deref() {
        Some(text) => Some(parse_ready_at(text, now)?),
        None => None,
    };
    Ok(NewOrder {
        kind,
        pickup,
        dropoff,
        pickup_code,
        fee_fen,
        note,
        ready_at,
    })
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().map_err(|_| {
                ApiError::Validation("Idempotency-Key must be 1-64 visible ASCII characters".into())
            })?;
            Ok(Some(IdempotencyKey::parse(text)?))
        }
    }
}

/// `POST /api/v1/orders`
#[tracing::instrument(level = "debug", name = "POST /orders", skip_all)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(customer): Caller,
    JsonBody(body): JsonBody<CreateOrderBody>,
) -> Result<HttpResponse, ApiError> {
    let new = parse_new_order(body, &state.campus, now_utc())?;
    let key = idempotency_key(&req)?;
    let order = state.orders.create(customer, new, key).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/orders/{}", order.id)))
        .json(OrderView::new(order, None)))
}

/// `GET /api/v1/orders/{id}`
#[tracing::instrument(level = "debug", name = "GET /orders/{id}", skip_all)]
pub async fn get(
    state: web::Data<AppState>,
    Caller(viewer): Caller,
    OrderPath(id): OrderPath,
) -> Result<HttpResponse, ApiError> {
    let order = state.orders.get(&id, &viewer).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order).await))
}

/// `GET /api/v1/orders?status=&limit=&cursor=`
#[tracing::instrument(level = "debug", name = "GET /orders", skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    Caller(customer): Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let status = query.status.as_deref().map(Status::parse).transpose()?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::Validation(format!(
                    "limit must be an integer between 1 and {MAX_LIMIT}"
                ))
            })?,
    };
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            OrderId::parse(s).map_err(|_| ApiError::Validation("cursor is not valid".into()))?,
        ),
    };
    let (orders, next) = state.orders.list(customer, status, limit, cursor).await?;
    let mut views = Vec::with_capacity(orders.len());
    for order in orders {
        views.push(OrderView::of(&state, order).await);
    }
    Ok(HttpResponse::Ok().json(OrderPage {
        orders: views,
        next_cursor: next.map(String::from),
    }))
}

/// `POST /api/v1/orders/{id}/cancel`
#[tracing::instrument(level = "debug", name = "POST /orders/{id}/cancel", skip_all)]
pub async fn cancel(
    state: web::Data<AppState>,
    Caller(customer): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let order = state.orders.cancel(id, customer).await?;
    Ok(HttpResponse::Ok().json(OrderView::new(order, None)))
}
