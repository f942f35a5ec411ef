//! `http.rate_limit`: requests per second per client, answered 429
//! `rate_limited` beyond it. Off by default. A client is its verified
//! identity (a signed-in user's openid, or the operator) once its token
//! checks out, else its address: a made-up or padded `Authorization`
//! header never opens a fresh bucket. WeChat callbacks and operations
//! endpoints are never limited. `X-Forwarded-For` is believed only from
//! `http.trusted_proxies` (anyone else could name a fresh address per
//! request and never be limited). IPv6 clients count by their /64, the
//! block one subscriber holds.
//!
//! Strikes, always on: failed admin sign-ins and refused WeChat callbacks
//! count against the address; past a few a minute it gets 429 there.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::address::client_address;
use crate::error::ApiError;
use crate::extract::{bearer_token, is_admin_token, Caller};
use crate::state::AppState;
/// Paths that are never limited: WeChat must always reach its callbacks,
/// and operators their probes.
const EXEMPT: [&str; 4] = ["/api/v1/wechat/", "/healthz", "/readyz", "/metrics"];
/// Where the operator's token, not a user's, is the identity.
const ADMIN_PREFIX: &str = "/api/v1/admin/";

/// The middleware.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let limits = state.as_ref().and_then(|s| s.rate_limits.clone());
    let exempt = EXEMPT.iter().any(|p| req.path().starts_with(p));
    if let (Some(state), Some(limits), false) = (state, limits, exempt) {
        let client = identity(&req, &state).await;
        if !limits.admit(client).await {
            let (req, _) = req.into_parts();
            return Ok(ServiceResponse::new(
                req,
                ApiError::RateLimited.error_response(),
            ));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Who a request counts against: the verified user or operator, else the
/// address. A verified user is handed on to the handler's [`Caller`], so
/// the token is checked once.
async fn identity(req: &ServiceRequest, state: &AppState) -> String {
    if let Some(token) = bearer_token(req.request()) {
        if req.path().starts_with(ADMIN_PREFIX) {
            if is_admin_token(state, &token) {
                return "operator".into();
            }
        } else if let Ok(openid) = state.sessions.authenticate(&token).await {
            let key = format!("u:{openid}");
            req.extensions_mut().insert(Caller(openid));
            return key;
        }
    }
    client_address(req.request())
}
