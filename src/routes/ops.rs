//! Operations: `/metrics`, `/healthz`, `/readyz`, and the JSON fallbacks for
//! unknown routes and methods.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// `{"status"}` of a health check.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` (healthz) or `ready` (readyz).
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::telemetry::collect_process_metrics();
    state.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Storage takes durable writes (a periodic write probe, and the last
/// flush worked) and every actor is alive.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = ErrorBody),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.orders.is_ready()
        && state.sessions.is_alive()
        && state.payments.is_alive()
        && state.ledger.is_consistent()
        && state.formids.is_alive()
        && state.dispatch.is_alive()
        && state.notifications.is_alive()
        && state.tokens.is_alive()
        && state.share_codes.is_alive()
        && state.uploads.is_alive()
        && state.operators.is_alive()
        && state.rate_limits.as_ref().is_none_or(|r| r.is_alive())
    {
        Ok(HttpResponse::Ok().json(Health { status: "ready" }))
    } else {
        Err(ApiError::Unavailable)
    }
}

/// `/docs` → `/docs/` (the UI's assets are relative to the slash).
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}

/// Any route that does not exist.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// The methods a resource answers (the `Allow` header of its 405),
/// attached to the resource when the app is built.
#[derive(Debug, Clone, Copy)]
pub struct Allowed(pub &'static str);

/// A route that exists, called with the wrong method: 405 with the
/// methods it does answer (from the API document).
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = ApiError::MethodNotAllowed.error_response();
    let allow = req.app_data::<Allowed>().map_or("GET", |allowed| allowed.0);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}
