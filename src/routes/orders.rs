//! Customer order routes: create, get, list, cancel.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lastmile_actors::campus::{Campus, Campuses};
use lastmile_actors::domain::{
    now_utc, parse_ready_at, parse_text, CampusId, Fen, IdempotencyKey, Location, NewOrder,
    OrderId, OrderKind, PhoneNumber, PlaceId, Status, Tip, MAX_PICKUP_CODE_CHARS, MAX_TEXT_CHARS,
};
use lastmile_actors::wechat::ContentScene;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ActionBody, Caller, JsonBody, OrderPath};
use crate::routes::view::{OrderView, Viewer};
use crate::state::AppState;

/// Page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 20;
/// Largest page.
const MAX_LIMIT: usize = 100;

/// A new order as sent; every field is checked, the first bad one named in the 400.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrderBody {
    /// `express` (a parcel from a station) or `takeout`.
    #[schema(required = true, value_type = OrderKind)]
    kind: Option<String>,
    /// Where the courier picks up.
    #[schema(required = true, value_type = LocationBody)]
    pickup: Option<LocationBody>,
    /// Where the courier delivers.
    #[schema(required = true, value_type = LocationBody)]
    dropoff: Option<LocationBody>,
    /// The code the station or shop asks for, at most 32 characters.
    #[schema(value_type = Option<String>, max_length = 32)]
    pickup_code: Option<String>,
    /// What the customer pays for the errand, in fen (1 yuan = 100 fen),
    /// from the campus's `min_fen` (`GET /api/v1/price`) to 100000.
    #[schema(required = true, value_type = u32, minimum = 1, maximum = 100000)]
    fee_fen: Option<serde_json::Number>,
    /// Added for the courier, in fen, 0–10000 (default 0); paid with the
    /// fee (`total_fee` = fee + tip) and goes to the courier whole.
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 10000)]
    tip_fen: Option<serde_json::Number>,
    /// Free text for the courier, at most 200 characters.
    #[schema(value_type = Option<String>, max_length = 200)]
    note: Option<String>,
    /// When the goods can be picked up (RFC 3339; default now).
    #[schema(value_type = Option<String>, format = DateTime)]
    ready_at: Option<String>,
    /// A mainland mobile number for the courier to call; shown only to the
    /// customer and the assigned courier.
    #[schema(value_type = Option<String>, pattern = "^1[0-9]{10}$", example = "13800138000")]
    contact_phone: Option<String>,
    /// The campus (`GET /api/v1/campuses`); may be left out unless the
    /// place ids are on more than one campus.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9-]{1,16}$", example = "main")]
    campus: Option<String>,
}

/// A location as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LocationBody {
    /// An id from the campus map (`config/campus.toml`).
    #[schema(required = true, value_type = String, example = "dorm-1")]
    place_id: Option<String>,
    /// Directions within the place, 1–200 characters.
    #[schema(required = true, value_type = String, example = "room 302")]
    detail: Option<String>,
}

/// Query of the list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One page of the list endpoint, newest first.
#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    /// The orders.
    orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// A page size: `limit` 1–100, 20 when absent.
pub fn page_limit(text: Option<&str>) -> Result<usize, ApiError> {
    match text {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::Validation(format!(
                    "limit must be an integer between 1 and {MAX_LIMIT}"
                ))
            }),
    }
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Validation(format!("{field} is required")))
}

/// A location as sent: its place id, still to be found on a campus, and
/// its checked directions.
fn parse_location(body: Option<LocationBody>, field: &str) -> Result<(String, String), ApiError> {
    let body = required(body, field)?;
    let place = required(body.place_id, &format!("{field}.place_id"))?;
    let detail = required(body.detail, &format!("{field}.detail"))?;
    let detail = parse_text(&detail, &format!("{field}.detail"), 1, MAX_TEXT_CHARS)?;
    Ok((place, detail))
}

/// A location on `campus`.
fn located(
    campus: &Campus,
    field: &str,
    (place, detail): (String, String),
) -> Result<Location, ApiError> {
    Ok(Location {
        place_id: PlaceId::parse(&place, campus, &format!("{field}.place_id"))?,
        detail,
    })
}

/// Turns the raw body into a [`NewOrder`], naming the first bad field.
pub fn parse_new_order(
    body: CreateOrderBody,
    campuses: &Campuses,
    now: OffsetDateTime,
) -> Result<NewOrder, ApiError> {
    let kind = OrderKind::parse(&required(body.kind, "kind")?)?;
    let pickup = parse_location(body.pickup, "pickup")?;
    let dropoff = parse_location(body.dropoff, "dropoff")?;
    let campus = campuses.resolve(
        body.campus.as_deref(),
        &[
            ("pickup.place_id", pickup.0.as_str()),
            ("dropoff.place_id", dropoff.0.as_str()),
        ],
    )?;
    let pickup = located(campus, "pickup", pickup)?;
    let dropoff = located(campus, "dropoff", dropoff)?;
    let fee_fen = Fen::parse_json(&required(body.fee_fen, "fee_fen")?)?;
    let min_fen = campus.pricing().min_fen;
    if fee_fen.get() < min_fen {
        return Err(ApiError::Validation(format!(
            "fee_fen must be at least {min_fen} (this campus's minimum fee)"
        )));
    }
    let tip_fen = match &body.tip_fen {
        Some(n) => Tip::parse_json(n)?,
        None => Tip::default(),
    };
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
    let contact_phone = match body.contact_phone.as_deref() {
        Some(text) => Some(PhoneNumber::parse(text).map_err(|_| {
            ApiError::Validation(
                "contact_phone must be a mainland mobile number: 11 digits starting with 1".into(),
            )
        })?),
        None => None,
    };
    Ok(NewOrder {
        kind,
        pickup,
        dropoff,
        pickup_code,
        fee_fen,
        tip_fen,
        note,
        ready_at,
        contact_phone,
        flagged: false,
        campus: CampusId::parse(campus.id())?,
    })
}

/// The request's `Idempotency-Key`, if it sent one (1–64 visible ASCII).
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
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

/// Creates an order, awaiting payment.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "1–64 visible ASCII characters; a retry with the same key returns the first order"),
    ),
    request_body = CreateOrderBody,
    responses(
        (status = 201, description = "Created, awaiting payment (a replayed Idempotency-Key answers the first order)", body = OrderView,
         headers(("Location" = String, description = "The order's URL"))),
        (status = 403, description = "An operator blocked this customer", body = ErrorBody),
        (status = 409, description = "Too many unpaid orders", body = ErrorBody),
    )
)]
#[tracing::instrument(level = "debug", name = "POST /orders", skip_all)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Caller(customer): Caller,
    JsonBody(body): JsonBody<CreateOrderBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(reason) = state.sessions.blocked(&customer) {
        return Err(ApiError::Forbidden(format!(
            "an operator blocked this account from ordering: {reason}"
        )));
    }
    let mut new = parse_new_order(body, &state.campuses, now_utc())?;
    let key = idempotency_key(&req)?;
    let texts = [
        ("note", new.note.as_str()),
        ("pickup.detail", new.pickup.detail.as_str()),
        ("dropoff.detail", new.dropoff.detail.as_str()),
    ];
    new.flagged = state
        .content
        .check(&customer, ContentScene::Comment, &texts)
        .await?
        .is_flagged();
    let order = state.orders.create(customer, new, key).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/orders/{}", order.id)))
        .json(OrderView::new(&state, order, None, Viewer::Customer).await))
}

/// One order, as its customer or its courier sees it.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order (customer or its courier)", body = OrderView),
        (status = 404, description = "No such order, or not the caller's", body = ErrorBody),
    )
)]
#[tracing::instrument(level = "debug", name = "GET /orders/{id}", skip_all)]
pub async fn get(
    state: web::Data<AppState>,
    Caller(viewer): Caller,
    OrderPath(id): OrderPath,
) -> Result<HttpResponse, ApiError> {
    let order = state.orders.get(&id, &viewer).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order, Viewer::User(&viewer)).await))
}

/// The customer's orders, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "The caller's orders, newest first", body = OrderPage))
)]
#[tracing::instrument(level = "debug", name = "GET /orders", skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    Caller(customer): Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let status = query.status.as_deref().map(Status::parse).transpose()?;
    let limit = page_limit(query.limit.as_deref())?;
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            OrderId::parse(s).map_err(|_| ApiError::Validation("cursor is not valid".into()))?,
        ),
    };
    let (orders, next) = state.orders.list(customer, status, limit, cursor).await?;
    let mut views = Vec::with_capacity(orders.len());
    for order in orders {
        views.push(OrderView::of(&state, order, Viewer::Customer).await);
    }
    Ok(HttpResponse::Ok().json(OrderPage {
        orders: views,
        next_cursor: next.map(String::from),
    }))
}

/// Cancels an order until pickup (a paid one is refunded).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Cancelled (a paid order is refunded)", body = OrderView),
        (status = 403, description = "Not the customer", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Too late to cancel", body = ErrorBody),
    )
)]
#[tracing::instrument(level = "debug", name = "POST /orders/{id}/cancel", skip_all)]
pub async fn cancel(
    state: web::Data<AppState>,
    Caller(customer): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let order = state.orders.cancel(id, customer).await?;
    Ok(HttpResponse::Ok().json(OrderView::new(&state, order, None, Viewer::Customer).await))
}
