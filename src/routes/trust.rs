//! Operators' trust decisions: the courier application queue, approve,
//! reject, suspend (optionally until a time) and reinstate; blocking a
//! customer from ordering.

use actix_web::{web, HttpResponse};
use lastmile_actors::dispatch::CourierView;
use lastmile_actors::domain::{now_utc, parse_text, Decision, OpenId, Review};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ActionBody, Can, Dispatches, JsonBody, Operator, Reads};
use crate::routes::admin::{acted, private};
use crate::state::AppState;

/// Longest operator reason.
const MAX_REASON_CHARS: usize = 200;

/// Query of the courier list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// Only couriers in this state: pending, approved, rejected, suspended.
    #[param(value_type = Option<String>, pattern = "^(pending|approved|rejected|suspended)$")]
    review: Option<String>,
    /// Only couriers working on this campus (and those on none yet).
    #[param(value_type = Option<String>)]
    campus: Option<String>,
}

/// Couriers, oldest application first.
#[derive(Serialize, ToSchema)]
pub struct CourierList {
    /// The couriers.
    couriers: Vec<CourierView>,
}

/// `{"reason"}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReasonBody {
    /// Shown to the courier, 1–200 characters.
    #[schema(required = true, value_type = String, example = "学生证照片看不清")]
    reason: Option<String>,
}

/// `{"reason", "until"?}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SuspendBody {
    /// Shown to the courier, 1–200 characters.
    #[schema(required = true, value_type = String, example = "多次超时未取件")]
    reason: Option<String>,
    /// When the suspension ends by itself (RFC 3339, in the future);
    /// absent: until reinstated.
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

fn reason(raw: Option<String>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Validation("reason is required".into()))?;
    Ok(parse_text(&raw, "reason", 1, MAX_REASON_CHARS)?)
}

fn courier_of(raw: &str) -> Result<OpenId, ApiError> {
    OpenId::parse(raw).map_err(|_| ApiError::NotFound("no such user".into()))
}

/// Applies a decision and counts it when it changed something.
async fn decide(
    state: &AppState,
    op: &Operator,
    courier: &str,
    decision: Decision,
) -> Result<HttpResponse, ApiError> {
    let action = decision.action();
    let courier = courier_of(courier)?;
    op.may_act_on_courier(state, &courier)?;
    let (view, changed) = state
        .dispatch
        .decide(courier, decision, op.name.clone())
        .await?;
    if changed {
        acted(op, action);
    }
    Ok(private(view))
}

/// Couriers and their applications (the console's review queue is
/// `?review=pending`), oldest application first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/couriers",
    tag = "admin",
    security(("bearer" = [])),
    params(ReviewQuery),
    responses(
        (status = 200, description = "The couriers", body = CourierList),
        (status = 400, description = "Unknown review state", body = ErrorBody),
    )
)]
pub async fn couriers(
    can: Can<Reads>,
    state: web::Data<AppState>,
    query: web::Query<ReviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let review = match query.review.as_deref() {
        None => None,
        Some(raw) => Some(Review::parse(raw).ok_or_else(|| {
            ApiError::Validation("review must be pending, approved, rejected or suspended".into())
        })?),
    };
    let operator = can.operator();
    let campus = match query.campus.as_deref() {
        Some(id) => Some(operator.campus(&state, Some(id))?),
        None => None,
    };
    // A limited operator sees the couriers of their campuses, and those
    // who work on none yet (applicants to review).
    let couriers = state
        .dispatch
        .couriers(review)
        .await?
        .into_iter()
        .filter(|c| match (&c.campus, &campus) {
            (None, _) => true,
            (Some(on), Some(wanted)) => on.as_str() == wanted.id(),
            (Some(on), None) => operator.covers(on.as_str()),
        })
        .collect();
    Ok(private(CourierList { couriers }))
}

/// Approves a pending (or rejected) application: the courier may work.
#[utoipa::path(
    post,
    path = "/api/v1/admin/couriers/{openid}/approve",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The courier's openid")),
    responses(
        (status = 200, description = "Approved (again: unchanged)", body = CourierView),
        (status = 404, description = "No such courier", body = ErrorBody),
        (status = 409, description = "Suspended: reinstate instead", body = ErrorBody),
    )
)]
pub async fn approve_courier(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    decide(&state, &op, &openid, Decision::Approve).await
}

/// Rejects a pending application with a reason the courier sees.
#[utoipa::path(
    post,
    path = "/api/v1/admin/couriers/{openid}/reject",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The courier's openid")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Rejected", body = CourierView),
        (status = 404, description = "No such courier", body = ErrorBody),
        (status = 409, description = "Not pending (suspend an approved courier)", body = ErrorBody),
    )
)]
pub async fn reject_courier(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = reason(body.reason)?;
    decide(&state, &op, &openid, Decision::Reject(reason)).await
}

/// Suspends a courier: offline at once, the tasks not yet picked up go
/// back to dispatch before the answer, and they cannot go online until
/// reinstated (or `until`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/couriers/{openid}/suspend",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The courier's openid")),
    request_body = SuspendBody,
    responses(
        (status = 200, description = "Suspended", body = CourierView),
        (status = 404, description = "No such courier", body = ErrorBody),
    )
)]
pub async fn suspend_courier(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
    JsonBody(body): JsonBody<SuspendBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = reason(body.reason)?;
    let until = match body.until {
        None => None,
        Some(raw) => {
            let at = OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::Validation("until must be an RFC 3339 time".into()))?;
            if at <= now_utc() {
                return Err(ApiError::Validation("until must be in the future".into()));
            }
            Some(at)
        }
    };
    decide(&state, &op, &openid, Decision::Suspend { reason, until }).await
}

/// Lifts a suspension.
#[utoipa::path(
    post,
    path = "/api/v1/admin/couriers/{openid}/reinstate",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The courier's openid")),
    responses(
        (status = 200, description = "Approved again", body = CourierView),
        (status = 404, description = "No such courier", body = ErrorBody),
        (status = 409, description = "Not suspended", body = ErrorBody),
    )
)]
pub async fn reinstate_courier(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    decide(&state, &op, &openid, Decision::Reinstate).await
}

/// Blocks a customer: their new orders answer 403 with the reason (what
/// they already have runs its course).
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{openid}/block",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The user's openid")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Blocked", body = UserBlock),
        (status = 404, description = "Not an openid", body = ErrorBody),
    )
)]
pub async fn block_user(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let user = courier_of(&openid)?;
    op.may_act_on_user(&state, &user).await?;
    let reason = reason(body.reason)?;
    if state.sessions.block(user.clone(), reason.clone()).await? {
        acted(&op, "block_user");
    }
    Ok(private(UserBlock {
        openid: user,
        blocked: true,
        reason: Some(reason),
    }))
}

/// Lifts a block.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{openid}/unblock",
    tag = "admin",
    security(("bearer" = [])),
    params(("openid" = String, Path, description = "The user's openid")),
    responses(
        (status = 200, description = "Not blocked (any more)", body = UserBlock),
        (status = 404, description = "Not an openid", body = ErrorBody),
    )
)]
pub async fn unblock_user(
    Can(op, _): Can<Dispatches>,
    state: web::Data<AppState>,
    openid: web::Path<String>,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let user = courier_of(&openid)?;
    op.may_act_on_user(&state, &user).await?;
    if state.sessions.unblock(user.clone()).await? {
        acted(&op, "unblock_user");
    }
    Ok(private(UserBlock {
        openid: user,
        blocked: false,
        reason: None,
    }))
}

/// Whether a user may order.
#[derive(Serialize, ToSchema)]
pub struct UserBlock {
    /// The user.
    openid: OpenId,
    /// Blocked from ordering.
    blocked: bool,
    /// The operator's reason.
    reason: Option<String>,
}
