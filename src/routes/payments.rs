//! Payment routes: `POST /api/v1/orders/{id}/pay`, the WeChat Pay notifies,
//! and the sandbox's stand-in for WeChat's payment page.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use lastmile_actors::domain::PayParams;
use lastmile_actors::wechat::notify::{self, excerpt, RefundNotification};
use lastmile_actors::wechat::pay::NotifyAck;
use lastmile_actors::wechat::sandbox_pay::SandboxPayError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::address::client_address;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{read_limited, ActionBody, Caller, OrderPath};
use crate::state::AppState;

/// The `wx.requestPayment` parameters of an order awaiting payment.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/pay",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Pass these to wx.requestPayment as they are", body = PayParams),
        (status = 403, description = "Not the customer", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Not awaiting payment", body = ErrorBody),
    )
)]
#[tracing::instrument(level = "debug", name = "POST /orders/{id}/pay", skip_all)]
pub async fn pay(
    state: web::Data<AppState>,
    Caller(payer): Caller,
    OrderPath(id): OrderPath,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let params = state.payments.prepay(id, payer).await?;
    Ok(HttpResponse::Ok().json(params))
}

/// Reads a notify body (WeChat's are a few hundred bytes); what cannot be
/// read is answered in WeChat's XML.
async fn notify_body(payload: web::Payload) -> Result<web::BytesMut, HttpResponse> {
    let body = read_limited(payload).await.map_err(|e| match e {
        ApiError::PayloadTooLarge => HttpResponse::PayloadTooLarge()
            .content_type("text/xml")
            .body(NotifyAck::Fail("body too large".into()).to_xml()),
        _ => answer(NotifyAck::Fail("cannot read body".into())),
    })?;
    Ok(body)
}

/// WeChat re-sends on anything but HTTP 200 with SUCCESS, so failures are
/// 200 with FAIL and a reason.
fn answer(ack: NotifyAck) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/xml")
        .body(ack.to_xml())
}

/// A notify that does not verify: logged (bounded, escaped by the log
/// writer), counted, struck against its address, answered FAIL.
fn refused(state: &AppState, address: String, kind: &'static str, reason: &str) -> HttpResponse {
    let reason = excerpt(reason);
    tracing::warn!(kind, %reason, "notify refused");
    metrics::counter!("lastmile_notify_refused_total", "kind" => kind).increment(1);
    state.strikes.strike(address);
    answer(NotifyAck::Fail(reason))
}

/// A callback's sender (as a strikes key) and body: refused at once when
/// that address is barred or the body cannot be read.
async fn received(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<(String, web::BytesMut), HttpResponse> {
    let address = format!("notify {}", client_address(req));
    if let Some(response) = barred(state, &address).await {
        return Err(response);
    }
    Ok((address, notify_body(payload).await?))
}

/// An address whose notifies (or transfer callbacks) keep failing
/// verification is answered 429 for a while without being read (WeChat Pay's own never fail, and it
/// sends again later anyway).
pub(crate) async fn barred(state: &AppState, address: &str) -> Option<HttpResponse> {
    if state.strikes.allows(address.to_owned()).await {
        return None;
    }
    metrics::counter!("lastmile_notify_refused_total", "kind" => "barred").increment(1);
    Some(ApiError::RateLimited.error_response())
}

/// WeChat Pay's payment notify (signed XML; for WeChat, not for clients).
#[utoipa::path(
    post,
    path = "/api/v1/wechat/pay/notify",
    tag = "payments",
    request_body(content = String, content_type = "text/xml", description = "WeChat Pay's signed payment result"),
    responses(
        (status = 200, description = "`<xml><return_code>SUCCESS</return_code>…` when taken, FAIL with a reason otherwise", content_type = "text/xml", body = String),
        (status = 413, description = "Body over 64 KiB", content_type = "text/xml", body = String),
    )
)]
#[tracing::instrument(level = "debug", name = "POST /wechat/pay/notify", skip_all)]
pub async fn pay_notify(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let (address, body) = match received(&req, &state, payload).await {
        Ok(received) => received,
        Err(response) => return response,
    };
    // Verified here, on the worker that received it: a flood of forged
    // notifies costs worker CPU only and never queues at the payments actor.
    let notice = match notify::paid_notice(&state.pay_signer, &body) {
        Ok(notice) => notice,
        Err(refusal) => return refused(&state, address, "pay", &refusal.to_string()),
    };
    answer(state.payments.pay_notify(notice).await)
}

/// WeChat Pay's refund notify (XML with an encrypted `req_info`).
#[utoipa::path(
    post,
    path = "/api/v1/wechat/refund/notify",
    tag = "payments",
    request_body(content = String, content_type = "text/xml", description = "WeChat Pay's refund result, `req_info` encrypted with the API key"),
    responses(
        (status = 200, description = "`<xml><return_code>SUCCESS</return_code>…` when taken, FAIL with a reason otherwise", content_type = "text/xml", body = String),
        (status = 413, description = "Body over 64 KiB", content_type = "text/xml", body = String),
    )
)]
#[tracing::instrument(level = "debug", name = "POST /wechat/refund/notify", skip_all)]
pub async fn refund_notify(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let (address, body) = match received(&req, &state, payload).await {
        Ok(received) => received,
        Err(response) => return response,
    };
    let notice = match notify::refund_notification(&state.pay_signer, &body) {
        Ok(RefundNotification::Result(notice)) => notice,
        Ok(RefundNotification::Failed(message)) => {
            // A FAIL carries no req_info: nothing to decrypt, just record it.
            tracing::warn!(%message, "refund notify with return_code FAIL");
            metrics::counter!("lastmile_refund_notifies_total", "outcome" => "return_fail")
                .increment(1);
            return answer(NotifyAck::Success);
        }
        Err(refusal) => return refused(&state, address, "refund", &refusal.to_string()),
    };
    answer(state.payments.refund_notify(notice).await)
}

/// The sandbox paid an order.
#[derive(Serialize, ToSchema)]
pub struct SandboxPaid {
    /// The order.
    order_id: String,
    /// Always true.
    paid: bool,
}

/// What the simulated WeChat delivered.
#[derive(Serialize, ToSchema)]
pub struct SandboxMessages {
    /// Oldest first: `via` (`subscribe` or `template`), `touser`,
    /// `template_id`, `page`, `data`, `form_id`.
    #[schema(value_type = Vec<Object>)]
    messages: Vec<lastmile_actors::wechat::SentMessage>,
}

/// How many sends will fail.
#[derive(Serialize, ToSchema)]
pub struct FailingSends {
    /// The next this many message sends fail as "system busy".
    failing_sends: u64,
}

/// Sandbox: the simulated customer pays; the simulator sends the signed
/// notify over HTTP. 404 in live mode.
#[utoipa::path(
    post,
    path = "/sandbox/pay/{id}",
    tag = "sandbox",
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "Paid; the notify was acknowledged", body = SandboxPaid),
        (status = 404, description = "Live mode", body = ErrorBody),
        (status = 409, description = "Not prepaid yet, or already paid", body = ErrorBody),
    )
)]
#[tracing::instrument(level = "debug", name = "POST /sandbox/pay/{id}", skip_all)]
pub async fn sandbox_pay(
    state: web::Data<AppState>,
    path: web::Path<String>,
    _body: ActionBody,
) -> Result<HttpResponse, ApiError> {
    let Some(sandbox) = &state.sandbox else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    match sandbox.pay_simulator().pay(&path).await {
        Ok(()) => Ok(HttpResponse::Ok().json(SandboxPaid {
            order_id: path.into_inner(),
            paid: true,
        })),
        Err(e @ (SandboxPayError::NoPrepay | SandboxPayError::AlreadyPaid)) => {
            Err(ApiError::Conflict(e.to_string()))
        }
        Err(e @ SandboxPayError::NotifyRejected(_)) => {
            tracing::warn!(error = %e, "sandbox notify was not acknowledged");
            Err(ApiError::Unavailable)
        }
    }
}

/// Sandbox: the messages the simulated WeChat delivered to users (404 in
/// live mode).
#[utoipa::path(
    get,
    path = "/sandbox/messages",
    tag = "sandbox",
    responses(
        (status = 200, description = "Delivered messages", body = SandboxMessages),
        (status = 404, description = "Live mode", body = ErrorBody),
    )
)]
pub async fn sandbox_messages(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some(sandbox) = &state.sandbox else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    Ok(HttpResponse::Ok().json(SandboxMessages {
        messages: sandbox.sent_messages(),
    }))
}

/// Sandbox: the next `n` message sends fail as "system busy", to watch the
/// outbox retry.
#[utoipa::path(
    post,
    path = "/sandbox/fail-sends/{n}",
    tag = "sandbox",
    params(("n" = u32, Path, description = "How many sends fail")),
    responses(
        (status = 200, description = "Armed", body = FailingSends),
        (status = 404, description = "Live mode", body = ErrorBody),
    )
)]
pub async fn sandbox_fail_sends(
    state: web::Data<AppState>,
    n: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let Some(sandbox) = &state.sandbox else {
        return Err(ApiError::NotFound("no such route".into()));
    };
    let n = u64::from(*n);
    sandbox.fail_next_sends(n);
    Ok(HttpResponse::Ok().json(FailingSends { failing_sends: n }))
}
