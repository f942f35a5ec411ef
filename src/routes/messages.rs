//! Message permissions: `POST /api/v1/form-ids` and `POST /api/v1/subscriptions`.

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::{now_utc, FormId, TemplateId};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::startup::AppState;

/// Most form_ids one request may carry.
const MAX_FORM_IDS: usize = 100;
/// Most template ids one request may carry (`wx.requestSubscribeMessage`
/// asks for at most 3 at a time; allow batching a few calls).
const MAX_TEMPLATE_IDS: usize = 20;

/// `{"form_ids": [...]}` as sent.
#[derive(Debug, Deserialize)]
pub struct FormIdsBody {
    form_ids: Option<Vec<String>>,
}

/// `{"template_ids": [...]}` as sent.
#[derive(Debug, Deserialize)]
pub struct SubscriptionsBody {
    template_ids: Option<Vec<String>>,
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
    Ok(HttpResponse::Ok().json(json!({ "accepted": accepted })))
}

/// Records what `wx.requestSubscribeMessage` granted: one message each.
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
    Ok(HttpResponse::Ok().json(json!({ "granted": granted })))
}
