//! `POST /api/v1/auth/login`.

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::LoginCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The login body as sent.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    code: Option<String>,
}

#[derive(Serialize)]
struct LoginReply {
    token: String,
    openid: String,
    expires_in: u64,
}

/// Exchanges a `wx.login` code for a bearer token.
#[tracing::instrument(level = "debug", name = "POST /auth/login", skip_all)]
pub async fn login(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let code = body
        .code
        .as_deref()
        .ok_or_else(|| ApiError::Validation("code is required".into()))
        .and_then(|c| Ok(LoginCode::parse(c)?))?;
    let grant = state.sessions.login(code).await?;
    Ok(HttpResponse::Ok().json(LoginReply {
        token: grant.token,
        openid: grant.openid.to_string(),
        expires_in: grant.expires_in,
    }))
}
