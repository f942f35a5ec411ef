//! Courier routes: become a courier, presence, tasks; open orders, grab,
//! pickup, deliver, and the customer's confirm.

use actix_web::{web, HttpResponse};
use lastmile_actors::dispatch::Presence;
use lastmile_actors::domain::{
    parse_text, CourierProfile, Location, Order, OrderId, OrderKind, PhoneNumber, PlaceId, Status,
};
use lastmile_actors::orders::Step;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::extract::{ActionBody, Caller, JsonBody, OrderPath};
use crate::routes::view::OrderView;
use crate::state::AppState;

/// `{"name", "phone"}` as sent.
#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    name: Option<String>,
    phone: Option<String>,
}

/// `{"place_id"}` or `{"latitude", "longitude"}` (what `wx.getLocation`
/// gives) as sent.
#[derive(Debug, Deserialize)]
pub struct PlaceBody {
    place_id: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl PlaceBody {
    /// The campus place named, or the one nearest the phone's position.
    fn place(&self, state: &AppState) -> Result<PlaceId, ApiError> {
        match (&self.place_id, self.latitude, self.longitude) {
            (Some(id), _, _) => place(state, Some(id), "place_id"),
            (None, Some(lat), Some(lon)) => {
                let (x, y) = state
                    .campus
                    .locate(lat, lon)
                    .map_err(|e| ApiError::Validation(format!("latitude/longitude: {e}")))?;
                let nearest = state.campus.nearest(x, y).id.clone();
                place(state, Some(&nearest), "place_id")
            }
            _ => Err(ApiError::Validation(
                "place_id, or latitude and longitude, is required".into(),
            )),
        }
    }
}

/// Query of the open-orders list.
#[derive(Debug, Deserialize)]
pub struct NearQuery {
    near: Option<String>,
}

/// An open order as couriers browsing see it: no pickup code, no customer.
#[derive(Serialize)]
struct OpenOrderView {
    id: OrderId,
    kind: OrderKind,
    pickup: Location,
    dropoff: Location,
    fee_fen: u32,
    note: String,
    status: Status,
    #[serde(with = "time::serde::rfc3339")]
    ready_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Order> for OpenOrderView {
    fn from(o: Order) -> Self {
        Self {
            status: o.status(),
            id: o.id,
            kind: o.kind,
            pickup: o.pickup,
            dropoff: o.dropoff,
            fee_fen: o.fee_fen.get(),
            note: o.note,
            ready_at: o.ready_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

fn place(state: &AppState, raw: Option<&str>, field: &str) -> Result<PlaceId, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Validation(format!("{field} is required")))?;
    Ok(PlaceId::parse(raw, &state.campus, field)?)
}

/// `POST /api/v1/couriers/me`
pub async fn register(
    state: web::Data<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let name = body
        .name
        .ok_or_else(|| ApiError::Validation("name is required".into()))?;
    let phone = body
        .phone
        .ok_or_else(|| ApiError::Validation("phone is required".into()))?;
    let profile = CourierProfile {
        openid: me,
        name: parse_text(name.trim(), "name", 1, 32)?,
        phone: PhoneNumber::parse(&phone)?,
    };
    Ok(HttpResponse::Ok().json(state.dispatch.register(profile).await?))
}

/// `POST /api/v1/couriers/me/online`
pub async fn online(
    state: web::Data<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<PlaceBody>,
) -> Result<HttpResponse, ApiError> {
    let at = body.place(&state)?;
    Ok(HttpResponse::Ok().json(state.dispatch.presence(me, Presence::Online(at)).await?))
}

/// `POST /api/v1/couriers/me/offline`
pub async fn offline(
    state: web::Data<AppState>,
    Caller(me): Caller,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.dispatch.presence(me, Presence::Offline).await?))
}

/// `POST /api/v1/couriers/me/location`
pub async fn location(
    state: web::Data<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<PlaceBody>,
) -> Result<HttpResponse, ApiError> {
    let at = body.place(&state)?;
    Ok(HttpResponse::Ok().json(state.dispatch.presence(me, Presence::At(at)).await?))
}

/// `GET /api/v1/couriers/me/tasks`
pub async fn tasks(
    state: web::Data<AppState>,
    Caller(me): Caller,
) -> Result<HttpResponse, ApiError> {
    let list = state.dispatch.tasks_of(me.clone()).await?;
    let mut orders = Vec::with_capacity(list.open.len());
    for (id, order) in list
        .open
        .iter()
        .zip(state.orders.peek_all(&list.open).await?)
    {
        // Gone from this courier since the index answered (cancelled, taken back)?
        let Some(order) = order.filter(|o| o.visible_to(&me)) else {
            continue;
        };
        let eta = list
            .route
            .iter()
            .find(|s| &s.order_id == id && s.action == "dropoff")
            .map(|s| s.eta);
        orders.push(OrderView::new(order, eta));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "orders": orders,
        "route": list.route,
        "withdrawn": list.withdrawn,
    })))
}

/// `GET /api/v1/orders/open?near=place_id`
pub async fn open(
    state: web::Data<AppState>,
    Caller(me): Caller,
    query: web::Query<NearQuery>,
) -> Result<HttpResponse, ApiError> {
    let near = place(&state, query.near.as_deref(), "near")?;
    let ids = state.dispatch.open_orders(me, near).await?;
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(order) = state.orders.peek(&id).await? {
            if order.status() == Status::Paid {
                orders.push(OpenOrderView::from(order));
            }
        }
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "orders": orders })))
}

/// `POST /api/v1/orders/{id}/grab`
pub async fn grab(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let order = state.dispatch.grab(id, me).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order).await))
}

async fn step(
    state: &AppState,
    me: lastmile_actors::domain::OpenId,
    id: OrderId,
    step: Step,
) -> Result<HttpResponse, ApiError> {
    let order = state.orders.step(id, me, step).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(state, order).await))
}

/// `POST /api/v1/orders/{id}/pickup`
pub async fn pickup(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    step(&state, me, id, Step::PickUp).await
}

/// `POST /api/v1/orders/{id}/deliver`
pub async fn deliver(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    step(&state, me, id, Step::Deliver).await
}

/// `POST /api/v1/orders/{id}/confirm`
pub async fn confirm(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    step(&state, me, id, Step::Confirm).await
}
