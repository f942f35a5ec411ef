//! `POST /api/v1/auth/login`.

use actix_web::{web, HttpResponse};
use lastmile_actors::domain::LoginCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;

/// A `wx.login` code to exchange for a session.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// The code `wx.login` gave the mini-program (used once).
    #[schema(required = true, value_type = String)]
    code: Option<String>,
}

/// A session: the bearer token for every other call.
#[derive(Serialize, ToSchema)]
pub struct LoginReply {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// The user's openid within this app.
    openid: String,
    /// Seconds the token stays valid.
    expires_in: u64,
}

/// Exchanges a `wx.login` code for a bearer token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = LoginReply),
        (status = 401, description = "WeChat rejected the code", body = ErrorBody),
    )
)]
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
