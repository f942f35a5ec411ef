//! Reaching customers: the permits to message them (`POST /api/v1/form-ids`,
//! `POST /api/v1/subscriptions`), sharing the app (`GET /api/v1/share-code`),
//! and `GET /files/{name}` (local object storage).

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::{now_utc, FormId, PagePath, Scene, TemplateId};
use lastmile_actors::objects::valid_key;
use lastmile_actors::sharecode::ShareError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;

/// Most form_ids one request may carry.
const MAX_FORM_IDS: usize = 100;
/// Most template ids one request may carry (`wx.requestSubscribeMessage`
/// asks for at most 3 at a time; allow batching a few calls).
const MAX_TEMPLATE_IDS: usize = 20;

/// `{"form_ids": [...]}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FormIdsBody {
    /// Up to 100 `formId`s (or prepay-free form submits); the devtools'
    /// `the formId is a mock one` is dropped.
    #[schema(required = true, value_type = Vec<String>)]
    form_ids: Option<Vec<String>>,
}

/// `{"template_ids": [...]}` as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionsBody {
    /// Up to 20 template ids the user accepted in `wx.requestSubscribeMessage`.
    #[schema(required = true, value_type = Vec<String>)]
    template_ids: Option<Vec<String>>,
}

/// How many form_ids were pooled.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Pooled (usable, not duplicates, not mock).
    accepted: usize,
}

/// How many one-time subscribe grants were recorded.
#[derive(Serialize, ToSchema)]
pub struct Granted {
    /// Recorded grants.
    granted: usize,
}

/// Where the share code image is.
#[derive(Serialize, ToSchema)]
pub struct ShareCodeReply {
    /// The wxacode PNG's URL.
    url: String,
}

fn bounded(list: Option<Vec<String>>, field: &str, max: usize) -> Result<Vec<String>, ApiError> {
    let list = list.ok_or_else(|| ApiError::Validation(format!("{field} is required")))?;
    if list.len() > max {
        return Err(ApiError::Validation(format!(
            "{field} must hold at most {max} items"
        )));
    }
    Ok(list)
}

/// Pools form_ids for template messages; the devtools' mock one is dropped.
#[utoipa::path(
    post,
    path = "/api/v1/form-ids",
    tag = "messages",
    security(("bearer" = [])),
    request_body = FormIdsBody,
    responses((status = 200, description = "Pooled", body = Accepted))
)]
#[tracing::instrument(level = "debug", name = "POST /form-ids", skip_all)]
pub async fn add_form_ids(
    state: web::Data<AppState>,
    Caller(user): Caller,
    JsonBody(body): JsonBody<FormIdsBody>,
) -> Result<HttpResponse, ApiError> {
    let raw = bounded(body.form_ids, "form_ids", MAX_FORM_IDS)?;
    let ids = raw
        .iter()
        .enumerate()
        .map(|(i, s)| FormId::parse(s, &format!("form_ids[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = state.formids.add_form_ids(user, ids, now_utc()).await?;
    Ok(HttpResponse::Ok().json(Accepted { accepted }))
}

/// Records what `wx.requestSubscribeMessage` granted: one message each.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions",
    tag = "messages",
    security(("bearer" = [])),
    request_body = SubscriptionsBody,
    responses((status = 200, description = "Recorded", body = Granted))
)]
#[tracing::instrument(level = "debug", name = "POST /subscriptions", skip_all)]
pub async fn subscribe(
    state: web::Data<AppState>,
    Caller(user): Caller,
    JsonBody(body): JsonBody<SubscriptionsBody>,
) -> Result<HttpResponse, ApiError> {
    let raw = bounded(body.template_ids, "template_ids", MAX_TEMPLATE_IDS)?;
    let ids = raw
        .iter()
        .enumerate()
        .map(|(i, s)| TemplateId::parse(s, &format!("template_ids[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let granted = state.formids.grant(user, ids).await?;
    Ok(HttpResponse::Ok().json(Granted { granted }))
}

/// Query of the share-code endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShareQuery {
    /// What the code carries to the opened page (≤ 32 visible characters).
    #[param(required = true, value_type = String, example = "inviter=abc")]
    scene: Option<String>,
    /// The page it opens, e.g. `pages/index/index` (default: the home page).
    #[param(value_type = Option<String>, example = "pages/index/index")]
    page: Option<String>,
}

/// The wxacode (mini-program code) PNG for a scene and page: `{"url"}`.
#[utoipa::path(
    get,
    path = "/api/v1/share-code",
    tag = "messages",
    security(("bearer" = [])),
    params(ShareQuery),
    responses((status = 200, description = "The code (made once per scene and page)", body = ShareCodeReply))
)]
#[tracing::instrument(level = "debug", name = "GET /share-code", skip_all)]
pub async fn share_code(
    state: web::Data<AppState>,
    Caller(user): Caller,
    query: web::Query<ShareQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let scene = Scene::parse(query.scene.as_deref().unwrap_or(""))?;
    let page = PagePath::parse(query.page.as_deref().unwrap_or(""))?;
    let url = state
        .share_codes
        .get(scene, page, user)
        .await
        .map_err(|e| match e {
            ShareError::Unavailable(_) => {
                tracing::warn!(error = %e, "share code unavailable");
                ApiError::Unavailable
            }
            ShareError::DailyLimit(_) => ApiError::RateLimited,
        })?;
    Ok(HttpResponse::Ok().json(ShareCodeReply { url }))
}

/// An object of the local storage backend (share-code PNGs).
#[utoipa::path(
    get,
    path = "/files/{name}",
    tag = "messages",
    params(("name" = String, Path, description = "Object key")),
    responses(
        (status = 200, description = "The object (a PNG share code)", content_type = "image/png"),
        (status = 404, description = "No such file", body = ErrorBody),
    )
)]
pub async fn file(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("no such file".into());
    if !valid_key(&name) {
        return Err(not_found());
    }
    let object = state
        .objects
        .get_public(&name)
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .content_type(object.content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(object.bytes))
}
