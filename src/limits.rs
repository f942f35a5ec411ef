//! `http.rate_limit`: requests per second per client (bearer token, else
//! address), answered 429 `rate_limited` beyond it. Off by default. WeChat
//! callbacks and operations endpoints are never limited.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use crate::error::ApiError;
use crate::startup::AppState;

/// Paths that are never limited: WeChat must always reach its callbacks,
/// and operators their probes.
const EXEMPT: [&str; 4] = ["/api/v1/wechat/", "/healthz", "/readyz", "/metrics"];

/// The middleware.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.rate_limits.clone());
    let exempt = EXEMPT.iter().any(|p| req.path().starts_with(p));
    if let (Some(limits), false) = (limits, exempt) {
        let client = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                req.connection_info()
                    .realip_remote_addr()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
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
