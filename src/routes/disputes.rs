//! Disputes: the customer's complaint about a delivered order, the
//! operators' queue of open ones, and a finance operator's resolution with
//! a refund of nothing, part or all of what was paid.

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::{
    json_u32, parse_text, DisputeReason, NewDispute, OpenId, OrderId, UploadId, MAX_DISPUTE_PHOTOS,
    MAX_TEXT_CHARS,
};
use lastmile_actors::wechat::ContentScene;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Can, JsonBody, OrderPath, Pays, Reads};
use crate::routes::admin::{acted, private, AdminOrder};
use crate::routes::couriers::{attach_evidence, evidence_photo};
use crate::routes::view::{OrderView, Viewer};
use crate::state::AppState;

/// `{"reason", "text", "photos"}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DisputeBody {
    /// What went wrong.
    #[schema(required = true, value_type = DisputeReason)]
    reason: Option<String>,
    /// In the customer's words, at most 200 characters.
    #[schema(value_type = Option<String>, max_length = 200, example = "外卖没有送到")]
    text: Option<String>,
    /// Up to 3 upload ids of the customer's own photos.
    #[schema(value_type = Option<Vec<String>>, max_items = 3)]
    photos: Option<Vec<String>>,
}

/// `{"refund_fen", "note"}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResolveBody {
    /// What goes back to the customer, 0 to the order's `total_fee`, in fen.
    #[schema(required = true, value_type = u32, minimum = 0, maximum = 110000)]
    refund_fen: Option<serde_json::Number>,
    /// The decision, 1–200 characters (kept with the dispute and in the history).
    #[schema(required = true, value_type = String, example = "餐品洒漏，退一半")]
    note: Option<String>,
}

/// Open disputes, oldest first.
#[derive(Serialize, ToSchema)]
pub struct DisputeQueue {
    /// The disputed orders, each with its history.
    orders: Vec<AdminOrder>,
}

async fn dispute_photos(
    state: &AppState,
    me: &OpenId,
    order: &OrderId,
    raw: Vec<String>,
) -> Result<Vec<UploadId>, ApiError> {
    if raw.len() > MAX_DISPUTE_PHOTOS {
        return Err(ApiError::Validation(format!(
            "photos takes at most {MAX_DISPUTE_PHOTOS} photos"
        )));
    }
    let mut photos: Vec<UploadId> = Vec::with_capacity(raw.len());
    for text in raw {
        let id = evidence_photo(state, me, &text, "photos", order).await?;
        if !photos.contains(&id) {
            photos.push(id);
        }
    }
    Ok(photos)
}

/// The customer disputes a delivered order: auto-confirm pauses and the
/// courier's earning is held until an operator resolves it.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/dispute",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = DisputeBody,
    responses(
        (status = 200, description = "Disputed", body = OrderView),
        (status = 400, description = "A bad reason, text or photo", body = ErrorBody),
        (status = 403, description = "Not the customer", body = ErrorBody),
        (status = 404, description = "No such order, or not the caller's", body = ErrorBody),
        (status = 409, description = "Not delivered, or disputed already", body = ErrorBody),
    )
)]
pub async fn open_dispute(
    state: web::Data<AppState>,
    Caller(me): Caller,
    OrderPath(id): OrderPath,
    JsonBody(body): JsonBody<DisputeBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body
        .reason
        .ok_or_else(|| ApiError::Validation("reason is required".into()))?;
    let reason = DisputeReason::parse(&reason)?;
    let text = parse_text(
        body.text.as_deref().unwrap_or(""),
        "text",
        0,
        MAX_TEXT_CHARS,
    )?;
    let photos = dispute_photos(&state, &me, &id, body.photos.unwrap_or_default()).await?;
    let flagged = state
        .content
        .check(&me, ContentScene::Comment, &[("text", text.as_str())])
        .await?
        .is_flagged();
    let dispute = NewDispute {
        reason,
        text,
        photos: photos.clone(),
        flagged,
    };
    let order = state
        .orders
        .open_dispute(id.clone(), me.clone(), dispute)
        .await?;
    for photo in photos {
        attach_evidence(&state, photo, me.clone(), id.clone()).await;
    }
    Ok(HttpResponse::Ok().json(OrderView::of(&state, order, Viewer::Customer).await))
}

/// Every open dispute, oldest first, with the orders' histories.
#[utoipa::path(
    get,
    path = "/api/v1/admin/disputes",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open disputes, oldest first", body = DisputeQueue),
        (status = 404, description = "admin.token is not set", body = ErrorBody),
    )
)]
pub async fn disputes(
    can: Can<Reads>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let open = state.orders.open_disputes().await?;
    let mut orders = Vec::with_capacity(open.len());
    for order in open
        .into_iter()
        .filter(|o| can.operator().covers_order(&state, o))
    {
        orders.push(AdminOrder::of(&state, order).await);
    }
    Ok(private(DisputeQueue { orders }))
}

fn refund_fen(raw: Option<serde_json::Number>) -> Result<u32, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Validation("refund_fen is required".into()))?;
    json_u32(&raw).ok_or_else(|| {
        ApiError::Validation(
            "refund_fen must be a whole number of fen from 0 to the order's total".into(),
        )
    })
}

/// A finance operator settles a dispute: 0 completes the order (the
/// courier is paid), the whole `total_fee` refunds it, a part refunds that
/// part through WeChat Pay and settles the rest.
#[utoipa::path(
    post,
    path = "/api/v1/admin/orders/{id}/resolve",
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "Resolved: completed, or refunding", body = AdminOrder),
        (status = 400, description = "A refund above the total, or no note", body = ErrorBody),
        (status = 403, description = "The role may not move money", body = ErrorBody),
        (status = 404, description = "No such order (or admin.token is not set)", body = ErrorBody),
        (status = 409, description = "Not in dispute (resolved already)", body = ErrorBody),
    )
)]
pub async fn resolve(
    Can(op, _): Can<Pays>,
    state: web::Data<AppState>,
    OrderPath(id): OrderPath,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<HttpResponse, ApiError> {
    let refund = refund_fen(body.refund_fen)?;
    let note = body
        .note
        .ok_or_else(|| ApiError::Validation("note is required".into()))?;
    let note = parse_text(&note, "note", 1, MAX_TEXT_CHARS)?;
    op.may_act_on(&state, &id).await?;
    let order = state
        .orders
        .resolve_dispute(id, refund, note, Some(op.name.clone()))
        .await?;
    acted(&op, "resolve");
    Ok(private(AdminOrder::of(&state, order).await))
}
