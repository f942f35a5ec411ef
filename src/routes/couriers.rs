//! Courier routes: become a courier, presence, tasks; open orders, grab,
//! pickup, deliver, and the customer's confirm.

use actix_web::{web, HttpResponse};
use lastmile_actors::dispatch::{CourierView, Presence, RouteStop, StopAction, Withdrawn};
use lastmile_actors::domain::{
    parse_text, Application, CampusId, Location, OpenId, Order, OrderId, OrderKind, PhoneNumber,
    PlaceId, Status, Upload, UploadId,
};
use lastmile_actors::orders::Step;
use lastmile_actors::uploads::UploadError;
use lastmile_actors::wechat::ContentScene;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ActionBody, Caller, JsonBody, OptionalJsonBody, OrderPath};
use crate::routes::view::{OrderView, Viewer};
use crate::state::AppState;

/// `{"name", "phone", "student_no", "card_photo"}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    /// 1–32 characters.
    #[schema(required = true, value_type = String, example = "张三")]
    name: Option<String>,
    /// A mainland mobile number (11 digits starting with 1).
    #[schema(required = true, value_type = String, example = "13800138000")]
    phone: Option<String>,
    /// Student number, 1–32 characters (required when couriers are reviewed).
    #[schema(value_type = Option<String>, example = "2023010123")]
    student_no: Option<String>,
    /// An upload id of the caller's: a photo of their student card
    /// (required when couriers are reviewed).
    #[schema(value_type = Option<String>)]
    card_photo: Option<String>,
}

/// `{"place_id"}` or `{"latitude", "longitude"}` (what `wx.getLocation`
/// gives) as sent, with the campus when the place id alone does not say.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceBody {
    /// A place on a campus map; wins over a position.
    #[schema(example = "canteen-1")]
    place_id: Option<String>,
    /// WGS-84 latitude (the nearest place on the map is taken).
    latitude: Option<f64>,
    /// WGS-84 longitude.
    longitude: Option<f64>,
    /// The campus (`GET /api/v1/campuses`); may be left out unless the
    /// place id is on several campuses (a position picks the campus whose
    /// origin is nearest).
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9-]{1,16}$", example = "main")]
    campus: Option<String>,
}

impl PlaceBody {
    /// The campus and place named, or the campus nearest the phone's
    /// position and its place nearest to it.
    fn place(&self, state: &AppState) -> Result<(CampusId, PlaceId), ApiError> {
        let campus = self.campus.as_deref();
        match (&self.place_id, self.latitude, self.longitude) {
            (Some(id), _, _) => {
                let on = state
                    .campuses
                    .resolve(campus, &[("place_id", id.as_str())])?;
                Ok((on.campus_id().clone(), PlaceId::parse(id, on, "place_id")?))
            }
            (None, Some(lat), Some(lon)) => {
                let (on, x, y) = state
                    .campuses
                    .locate(campus, lat, lon)
                    .map_err(|e| ApiError::Validation(format!("latitude/longitude: {e}")))?;
                let nearest = on.nearest(x, y).id.as_str();
                Ok((
                    on.campus_id().clone(),
                    PlaceId::parse(nearest, on, "place_id")?,
                ))
            }
            _ => Err(ApiError::Validation(
                "place_id, or latitude and longitude, is required".into(),
            )),
        }
    }
}

/// Query of the open-orders list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearQuery {
    /// The place the courier is at (required).
    #[param(required = true, value_type = String)]
    near: Option<String>,
}

/// An open order as couriers browsing see it: no pickup code, no customer.
#[derive(Serialize, ToSchema)]
pub struct OpenOrderView {
    /// Its id.
    id: OrderId,
    /// Express or takeout.
    kind: OrderKind,
    /// Where to pick up.
    pickup: Location,
    /// Where to deliver.
    dropoff: Location,
    /// The fee in fen.
    fee_fen: u32,
    /// The tip in fen, the courier's whole.
    tip_fen: u32,
    /// The customer's note.
    note: String,
    /// Always `paid`.
    status: Status,
    /// When the goods can be picked up.
    #[serde(with = "time::serde::rfc3339")]
    ready_at: OffsetDateTime,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// Open orders near a place, nearest first.
#[derive(Serialize, ToSchema)]
pub struct OpenOrders {
    /// The orders.
    orders: Vec<OpenOrderView>,
}

/// A courier's work: open tasks, the planned route, recently withdrawn tasks.
#[derive(Serialize, ToSchema)]
pub struct TaskListView {
    /// Assigned or picked up, oldest first, each with its `eta`; then the
    /// courier's deliveries in dispute (their earning held until resolved).
    orders: Vec<OrderView>,
    /// The stops still to make, in order, with predicted times.
    route: Vec<RouteStop>,
    /// Taken away within the last hour (cancelled or reassigned), newest first.
    withdrawn: Vec<Withdrawn>,
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
            tip_fen: o.tip_fen.get(),
            note: o.note,
            ready_at: o.ready_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A place on any campus (the courier's campus checks it is its own).
fn place(state: &AppState, raw: Option<&str>, field: &str) -> Result<PlaceId, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Validation(format!("{field} is required")))?;
    let campus = state
        .campuses
        .with_place(raw)
        .ok_or_else(|| ApiError::Validation(format!("{field} is not a place on the campus map")))?;
    Ok(PlaceId::parse(raw, campus, field)?)
}

/// Applies to be a courier (or updates the profile): name, phone, and —
/// when operators review couriers — student number and student-card photo.
/// The answer's `review` says where the application stands.
#[utoipa::path(
    post,
    path = "/api/v1/couriers/me",
    tag = "couriers",
    security(("bearer" = [])),
    request_body = RegisterBody,
    responses(
        (status = 200, description = "Applied (or updated); starts offline", body = CourierView),
        (status = 400, description = "A field breaks a rule, or card_photo is not an upload of the caller's", body = ErrorBody),
    )
)]
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
    let name = parse_text(&name, "name", 1, 32)?;
    let phone = PhoneNumber::parse(&phone)?;
    let required = |field: &str| ApiError::Validation(format!("{field} is required"));
    let student_no = match body.student_no {
        Some(no) => Some(parse_text(&no, "student_no", 1, 32)?),
        None if state.couriers_reviewed => return Err(required("student_no")),
        None => None,
    };
    let card_photo = match body.card_photo {
        Some(raw) => Some(own_photo(&state, &me, &raw, "card_photo").await?),
        None if state.couriers_reviewed => return Err(required("card_photo")),
        None => None,
    };
    let checked = state
        .content
        .check(&me, ContentScene::Profile, &[("name", name.as_str())])
        .await?;
    let application = Application {
        name_flagged: checked.is_flagged(),
        openid: me,
        name,
        phone,
        student_no,
        card_photo,
    };
    Ok(HttpResponse::Ok().json(state.dispatch.register(application).await?))
}

/// An upload id naming a photo the caller uploaded (else 400 naming the field).
pub async fn own_photo(
    state: &AppState,
    me: &OpenId,
    raw: &str,
    field: &str,
) -> Result<UploadId, ApiError> {
    own_upload(state, me, raw, field).await.map(|u| u.id)
}

/// The caller's upload that `raw` names (else 400 naming the field).
async fn own_upload(
    state: &AppState,
    me: &OpenId,
    raw: &str,
    field: &str,
) -> Result<Upload, ApiError> {
    let not_theirs =
        || ApiError::Validation(format!("{field} must be the id of a photo you uploaded"));
    let id = UploadId::parse(raw).map_err(|_| not_theirs())?;
    match state.uploads.owned_by(id, me.clone()).await {
        Ok(upload) => Ok(upload),
        Err(UploadError::NotFound) => Err(not_theirs()),
        Err(e) => Err(e.into()),
    }
}

/// Goes online at a place, ready for orders.
#[utoipa::path(
    post,
    path = "/api/v1/couriers/me/online",
    tag = "couriers",
    security(("bearer" = [])),
    request_body = PlaceBody,
    responses(
        (status = 200, description = "Online at the place", body = CourierView),
        (status = 403, description = "Not a registered courier", body = ErrorBody),
    )
)]
pub async fn online(
    state: web::Data<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<PlaceBody>,
) -> Result<HttpResponse, ApiError> {
    let (campus, at) = body.place(&state)?;
    let view = state
        .dispatch
        .presence(me, &campus, Presence::Online(at))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Goes offline: no new orders.
#[utoipa::path(
    post,
    path = "/api/v1/couriers/me/offline",
    tag = "couriers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Offline; open tasks are kept a while, then reassigned", body = CourierView),
        (status = 403, description = "Not a registered courier", body = ErrorBody),
    )
)]
pub async fn offline(
    state: web::Data<AppState>,
    Caller(me): Caller,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    // Offline is said to the campus the courier works on.
    let first = state.campuses.first().campus_id().clone();
    let view = state
        .dispatch
        .presence(me, &first, Presence::Offline)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Reports where the courier is (keeps an online courier online).
#[utoipa::path(
    post,
    path = "/api/v1/couriers/me/location",
    tag = "couriers",
    security(("bearer" = [])),
    request_body = PlaceBody,
    responses(
        (status = 200, description = "Position updated", body = CourierView),
        (status = 403, description = "Not a registered courier", body = ErrorBody),
    )
)]
pub async fn location(
    state: web::Data<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<PlaceBody>,
) -> Result<HttpResponse, ApiError> {
    let (campus, at) = body.place(&state)?;
    let view = state
        .dispatch
        .presence(me, &campus, Presence::At(at))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The courier's open tasks, planned route with times, and withdrawn tasks.
#[utoipa::path(
    get,
    path = "/api/v1/couriers/me/tasks",
    tag = "couriers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The courier's tasks and route", body = TaskListView),
        (status = 403, description = "Not a registered courier", body = ErrorBody),
    )
)]
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
            .find(|s| &s.order_id == id && s.action == StopAction::Dropoff)
            .map(|s| s.eta);
        orders.push(OrderView::new(&state, order, eta, Viewer::User(&me)).await);
    }
    // A disputed delivery holds the courier's earning: they see it here
    // until an operator resolves it.
    for order in state.orders.unsettled_of(me.clone()).await? {
        if order.status() == Status::Disputed {
            orders.push(OrderView::new(&state, order, None, Viewer::User(&me)).await);
        }
    }
    Ok(HttpResponse::Ok().json(TaskListView {
        orders,
        route: list.route,
        withdrawn: list.withdrawn,
    }))
}

/// Paid orders nobody has yet, nearest to a place first.
#[utoipa::path(
    get,
    path = "/api/v1/orders/open",
    tag = "couriers",
    security(("bearer" = [])),
    params(NearQuery),
    responses(
        (status = 200, description = "Paid orders nobody has, nearest first", body = OpenOrders),
        (status = 403, description = "Not a registered courier", body = ErrorBody),
    )
)]
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
    Ok(HttpResponse::Ok().json(OpenOrders { orders }))
}

/// Takes an open order (the first courier wins).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/grab",
    tag = "couriers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Assigned to the caller", body = OrderView),
        (status = 403, description = "Not an online courier", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Taken, not paid, or the courier is full", body = ErrorBody),
    )
)]
pub async fn grab(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let order = state.dispatch.grab(id, me.clone()).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order, Viewer::User(&me)).await))
}

/// `{"reason"}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReleaseBody {
    /// Why, 1–200 characters (kept in the order's history).
    #[schema(required = true, value_type = String, example = "车胎爆了")]
    reason: Option<String>,
}

/// Gives back an order the caller was assigned and has not picked up: it
/// goes back to dispatch and is never offered to them again; at most
/// `couriers.releases_per_day` a (China) day.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/release",
    tag = "couriers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "Back in dispatch", body = OrderView),
        (status = 403, description = "Not a courier", body = ErrorBody),
        (status = 404, description = "No such order, or not the caller's", body = ErrorBody),
        (status = 409, description = "Picked up already, or over the daily limit", body = ErrorBody),
    )
)]
pub async fn release(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body
        .reason
        .ok_or_else(|| ApiError::Validation("reason is required".into()))?;
    let reason = parse_text(&reason, "reason", 1, 200)?;
    let order = state.dispatch.release(id, me.clone(), reason).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order, Viewer::User(&me)).await))
}

async fn step(
    state: &AppState,
    me: lastmile_actors::domain::OpenId,
    id: OrderId,
    step: Step,
) -> Result<HttpResponse, ApiError> {
    let order = state.orders.step(id, me.clone(), step).await?;
    Ok(HttpResponse::Ok().json(OrderView::of(state, order, Viewer::User(&me)).await))
}

/// The assigned courier has the goods.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/pickup",
    tag = "couriers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Picked up (the assigned courier)", body = OrderView),
        (status = 403, description = "Not the caller's to do", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Not in a status that allows it", body = ErrorBody),
    )
)]
pub async fn pickup(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    step(&state, me, id, Step::PickUp).await
}

/// The assigned courier handed them over.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/deliver",
    tag = "couriers",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = Option<DeliverBody>,
    responses(
        (status = 200, description = "Delivered (the assigned courier)", body = OrderView),
        (status = 400, description = "A photo that is not the caller's, or none where one is required", body = ErrorBody),
        (status = 403, description = "Not the caller's to do", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Not in a status that allows it", body = ErrorBody),
    )
)]
pub async fn deliver(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    OptionalJsonBody(body): OptionalJsonBody<DeliverBody>,
) -> Result<HttpResponse, ApiError> {
    let photo = match body.photo.as_deref() {
        Some(raw) => Some(evidence_photo(&state, &me, raw, "photo", &id).await?),
        None => None,
    };
    let order = state
        .orders
        .step(id.clone(), me.clone(), Step::Deliver(photo.clone()))
        .await?;
    if let Some(photo) = photo {
        attach_evidence(&state, photo, me.clone(), id).await;
    }
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order, Viewer::User(&me)).await))
}

/// What `deliver` may carry.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeliverBody {
    /// An upload id: a photo of the hand-over (required when the campus asks for one).
    #[schema(value_type = Option<String>)]
    photo: Option<String>,
}

/// A photo the caller uploaded that proves nothing else yet (else 400 naming the field).
pub async fn evidence_photo(
    state: &AppState,
    me: &OpenId,
    raw: &str,
    field: &str,
    order: &OrderId,
) -> Result<UploadId, ApiError> {
    let upload = own_upload(state, me, raw, field).await?;
    if upload.order.as_ref().is_some_and(|o| o != order) {
        return Err(ApiError::Validation(format!(
            "{field} already proves another order"
        )));
    }
    Ok(upload.id)
}

/// Lets the order's customer and courier see the photo. The order already
/// names it, so a failure here is logged rather than undoing the step.
pub async fn attach_evidence(state: &AppState, photo: UploadId, me: OpenId, order: OrderId) {
    if let Err(e) = state.uploads.attach(photo, me, order).await {
        tracing::warn!(error = %e, "a photo could not be attached to its order");
    }
}

/// The customer confirms receipt.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/confirm",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Completed (the customer)", body = OrderView),
        (status = 403, description = "Not the caller's to do", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Not in a status that allows it", body = ErrorBody),
    )
)]
pub async fn confirm(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    step(&state, me, id, Step::Confirm).await
}
