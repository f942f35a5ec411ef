//! Operations: `/metrics`, `/healthz`, `/readyz`, and the JSON fallbacks for
//! unknown routes and methods.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::telemetry::collect_process_metrics();
    state.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Storage takes durable writes (a periodic write probe, and the last
/// flush worked) and every actor is alive.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.orders.is_ready()
        && state.sessions.is_alive()
        && state.payments.is_alive()
        && state.formids.is_alive()
        && state.dispatch.is_alive()
        && state.notifications.is_alive()
        && state.tokens.is_alive()
        && state.share_codes.is_alive()
        && state.rate_limits.as_ref().is_none_or(|r| r.is_alive())
    {
        Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
    } else {
        Err(ApiError::Unavailable)
    }
}

/// Any route that does not exist.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// A route that exists, called with the wrong method.
pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
