//! WeChat Pay 商家转账: its v3 callback, and the sandbox's stand-in for a
//! courier confirming a transfer in WeChat.

use actix_web::{web, HttpRequest, HttpResponse};
use lastmile_actors::ledger::WithdrawalError;
use lastmile_actors::wechat::v3::V3Headers;
use serde::Serialize;
use utoipa::ToSchema;

use crate::address::client_address;
use crate::error::{ApiError, ErrorBody};
use crate::extract::read_limited;
use crate::routes::payments::barred;
use crate::state::AppState;

/// Where WeChat Pay sends transfer callbacks (under `wechat.notify_base`).
pub const TRANSFER_NOTIFY_PATH: &str = "/api/v1/wechat/transfer/notify";

/// WeChat Pay v3's failure answer (it sends the callback again later).
#[derive(Debug, Serialize, ToSchema)]
pub struct V3Failure {
    /// `FAIL`.
    code: &'static str,
    /// Why.
    message: String,
}

fn failure(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(V3Failure {
        code: "FAIL",
        message: message.to_owned(),
    })
}

fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// WeChat Pay's transfer callback (v3: signed headers, an AES-256-GCM
/// encrypted resource). Verified on the worker that received it; a
/// withdrawal moves on only once that is durable.
#[utoipa::path(
    post,
    path = "/api/v1/wechat/transfer/notify",
    tag = "payments",
    request_body(content = String, content_type = "application/json", description = "WeChat Pay's signed v3 notification"),
    responses(
        (status = 204, description = "Taken (also a repeat, or news of no withdrawal here)"),
        (status = 401, description = "The signature does not verify (or is stale)", body = V3Failure),
        (status = 400, description = "The content does not decrypt or parse", body = V3Failure),
        (status = 404, description = "Withdrawals are not paid by transfer here", body = ErrorBody),
        (status = 500, description = "Not stored; WeChat Pay sends it again", body = V3Failure),
    )
)]
pub async fn transfer_notify(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(transfers) = &state.transfers else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    let address = format!("notify {}", client_address(&req));
    if let Some(refused) = barred(&state, &address).await {
        return Ok(refused);
    }
    let body = read_limited(payload).await?;
    let body = String::from_utf8_lossy(&body);
    let headers = V3Headers {
        timestamp: header(&req, "Wechatpay-Timestamp"),
        nonce: header(&req, "Wechatpay-Nonce"),
        signature: header(&req, "Wechatpay-Signature"),
        serial: header(&req, "Wechatpay-Serial"),
    };
    let bill = match transfers.read_callback(&headers, &body) {
        Ok(bill) => bill,
        Err(e) => {
            metrics::counter!("lastmile_notify_refused_total", "kind" => "transfer").increment(1);
            tracing::warn!(error = %e, "transfer callback refused");
            state.strikes.strike(address);
            let status = match e {
                lastmile_actors::wechat::transfer::CallbackError::Signature(_) => {
                    actix_web::http::StatusCode::UNAUTHORIZED
                }
                _ => actix_web::http::StatusCode::BAD_REQUEST,
            };
            return Ok(failure(status, &e.to_string()));
        }
    };
    match state.ledger.transfer_seen(bill).await {
        // An anomaly is counted and logged by the ledger; sending it again
        // would not change it.
        Ok(_) | Err(WithdrawalError::Conflict(_) | WithdrawalError::Anomaly(_)) => {
            Ok(HttpResponse::NoContent().finish())
        }
        Err(WithdrawalError::NotFound | WithdrawalError::Validation(_)) => {
            metrics::counter!("lastmile_payment_anomalies_total", "kind" => "unknown_transfer")
                .increment(1);
            Ok(HttpResponse::NoContent().finish())
        }
        Err(e @ WithdrawalError::Ledger(_)) => {
            tracing::warn!(error = %lastmile_actors::errors::chain(&e), "transfer callback not stored");
            Ok(failure(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "not stored, send it again",
            ))
        }
    }
}

/// What the sandbox's courier did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxConfirmed {
    /// The withdrawal.
    withdrawal_id: String,
    /// Always true: the simulator sent the success callback.
    confirmed: bool,
}

/// Sandbox: the courier confirms a transfer in WeChat; the simulator then
/// sends the signed, encrypted v3 callback over HTTP. 404 in live mode.
#[utoipa::path(
    post,
    path = "/sandbox/transfer/{id}/confirm",
    tag = "sandbox",
    params(("id" = String, Path, description = "Withdrawal id")),
    responses(
        (status = 200, description = "Confirmed; the callback was sent", body = SandboxConfirmed),
        (status = 404, description = "Live mode", body = ErrorBody),
        (status = 409, description = "No transfer of that withdrawal waits for its courier", body = ErrorBody),
    )
)]
pub async fn sandbox_confirm(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(sandbox) = &state.sandbox else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    if !sandbox.transfer_simulator().confirm(&path).await {
        return Err(ApiError::Conflict(
            "no transfer of that withdrawal waits for its courier".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(SandboxConfirmed {
        withdrawal_id: path.into_inner(),
        confirmed: true,
    }))
}
