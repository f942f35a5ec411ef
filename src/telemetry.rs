//! Logs and metrics: the tracing subscriber, the Prometheus recorder, and
//! the middleware that counts requests and dresses framework errors as JSON.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use dashmap::DashSet;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::error::ApiError;

/// Latency buckets in seconds: fine below 10 ms, where the service lives.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Installs the log subscriber once (`RUST_LOG` overrides the `info`
/// default), as human lines or one JSON object per line.
pub fn init_tracing(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes are control characters too: the writer escapes them.
        .with_ansi(false)
        .with_writer(|| Escaping(std::io::stdout()));
    let _ = match format {
        crate::config::LogFormat::Text => builder.try_init(),
        crate::config::LogFormat::Json => builder.json().try_init(),
    };
}

/// A log writer that escapes control characters inside a line, so text
/// from outside (a callback's `return_msg`, a header, a path) can never
/// start a forged line or drive a terminal. The formatter hands over one
/// whole event per write, ending in its newline, which is kept.
pub struct Escaping<W>(pub W);

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (line, end) = match buf.split_last() {
            Some((b'\n', line)) => (line, &buf[line.len()..]),
            _ => (buf, &buf[buf.len()..]),
        };
        if !line.iter().copied().any(is_control) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &byte in line {
            if is_control(byte) {
                out.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
            } else {
                out.push(byte);
            }
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// ASCII control characters but the tab (which formatters never emit and
/// terminals render harmlessly).
fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

/// The process-wide Prometheus recorder (the `metrics` facade is global).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets(&LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // A second install (another app in the same test process) keeps the first.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            process_collector().describe();
            metrics::gauge!("lastmile_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The metric label of a route: its path pattern, attached to the resource
/// when the app is built (`startup::resource`), so counting a request
/// neither walks the router a second time nor allocates.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

impl RouteLabel {
    /// The label of `pattern`, interned: one allocation per route for the
    /// life of the process, however many apps (workers, tests) are built.
    pub fn of(pattern: &str) -> Self {
        static SEEN: OnceLock<DashSet<&'static str>> = OnceLock::new();
        let seen = SEEN.get_or_init(DashSet::new);
        if let Some(known) = seen.get(pattern) {
            return Self(*known);
        }
        let interned: &'static str = Box::leak(pattern.to_owned().into_boxed_str());
        seen.insert(interned);
        Self(interned)
    }
}

/// The request counter and latency histogram of one route, method and
/// status, looked up in the recorder once per worker thread and then kept:
/// the labels are all static, so the handles are too.
fn request_metrics(
    route: &'static str,
    method: &'static str,
    status: &'static str,
) -> (metrics::Counter, metrics::Histogram) {
    type Label = (usize, usize);
    type Handles =
        std::collections::HashMap<(Label, Label, Label), (metrics::Counter, metrics::Histogram)>;
    thread_local! {
        static HANDLES: std::cell::RefCell<Handles> = std::cell::RefCell::default();
    }
    // Static, interned labels: the same label is the same slice.
    let label = |s: &'static str| (s.as_ptr() as usize, s.len());
    let key = (label(route), label(method), label(status));
    HANDLES.with(|handles| {
        handles
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| {
                (
                    metrics::counter!(
                        "lastmile_http_requests_total",
                        "route" => route,
                        "method" => method,
                        "status" => status
                    ),
                    metrics::histogram!("lastmile_http_request_duration_seconds", "route" => route),
                )
            })
            .clone()
    })
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_label(status: StatusCode) -> &'static str {
    const KNOWN: [&str; 13] = [
        "200", "201", "400", "401", "403", "404", "405", "409", "413", "415", "429", "500", "503",
    ];
    KNOWN
        .iter()
        .find(|k| **k == status.as_str())
        .copied()
        .unwrap_or("other")
}

/// The process metrics (CPU, resident memory, open files, start time) as
/// Prometheus clients conventionally export them.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Reads the process metrics now (before a scrape is rendered).
pub fn collect_process_metrics() {
    process_collector().collect();
}

/// A HELP text (and unit) for every metric the service exports, so that
/// `promtool check metrics` passes and a dashboard author knows what each is.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "lastmile_build_info",
        "Always 1; the version label tells which build runs."
    );
    describe_counter!(
        "lastmile_http_requests_total",
        "HTTP requests answered, by matched route, method and status."
    );
    describe_histogram!(
        "lastmile_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by matched route."
    );
    describe_counter!(
        "lastmile_actor_restarts_total",
        "Actors restarted by their supervisor after a panic, by actor."
    );
    describe_counter!("lastmile_orders_created_total", "Orders created, by kind.");
    describe_counter!(
        "lastmile_admin_actions_total",
        "Operator actions from the console that took effect, by action (refund, settle, reassign, force_offline)."
    );
    describe_counter!(
        "lastmile_order_transitions_total",
        "Order status changes, by the status reached."
    );
    describe_gauge!(
        "lastmile_orders_active",
        "Orders not yet finished held in memory, by status and shard."
    );
    describe_counter!("lastmile_payments_total", "Payment events (prepaid, paid, repeat notify, late payment refunded, refund requested…), by outcome.");
    describe_counter!(
        "lastmile_pay_notify_failures_total",
        "Verified pay notifies that could not be taken (WeChat sends them again)."
    );
    describe_counter!(
        "lastmile_withdrawals_total",
        "Withdrawal changes, by the status reached."
    );
    describe_counter!(
        "lastmile_transfer_failures_total",
        "WeChat Pay transfers that could not be sent or queried (tried again)."
    );
    describe_counter!(
        "lastmile_content_checks_total",
        "Texts through WeChat's content check, by outcome (pass, review, risky, unavailable)."
    );
    describe_counter!(
        "lastmile_disputes_total",
        "Disputes opened and resolved, by outcome (opened, no_refund, part_refund, full_refund)."
    );
    describe_counter!(
        "lastmile_untaken_orders_total",
        "Paid orders nobody took: customers told, orders refunded, by action."
    );
    describe_counter!(
        "lastmile_shipping_reports_total",
        "Deliveries reported to WeChat's shipping-info service, by outcome (reported, given_up: enter by hand)."
    );
    describe_counter!(
        "lastmile_dispatch_releases_total",
        "Orders couriers gave back before pickup."
    );
    metrics::describe_gauge!(
        "lastmile_reconciliation_mismatches",
        "Mismatches between WeChat Pay's trade bill and the ledger at the last reconciliation."
    );
    describe_counter!(
        "lastmile_ledger_postings_total",
        "Money postings made by the ledger (payments, earnings, refunds); a replayed event posts nothing."
    );
    describe_counter!("lastmile_payment_anomalies_total", "Payments that do not add up (second transaction id, amount or refund mismatch), by kind; nothing was changed.");
    describe_counter!(
        "lastmile_refund_notifies_total",
        "Refund notifies, by outcome."
    );
    describe_counter!(
        "lastmile_notify_refused_total",
        "WeChat Pay notifies refused before reaching an actor (bad XML or signature), by kind."
    );
    describe_counter!(
        "lastmile_form_ids_pooled_total",
        "form_ids and prepay_ids added to the pool, by source."
    );
    describe_counter!(
        "lastmile_messages_sent_total",
        "Customer messages sent, by subscribe or template."
    );
    describe_counter!(
        "lastmile_messages_dropped_total",
        "Customer messages given up, by reason."
    );
    describe_gauge!(
        "lastmile_outbox_depth",
        "Customer messages waiting in the outbox."
    );
    describe_gauge!(
        "lastmile_outbox_oldest_seconds",
        Unit::Seconds,
        "Age of the oldest message waiting in the outbox."
    );
    describe_counter!(
        "lastmile_share_codes_made_total",
        "wxacode share codes made and uploaded."
    );
    describe_counter!(
        "lastmile_token_refreshes_total",
        "access_token refreshes, by outcome."
    );
    describe_counter!(
        "lastmile_token_invalidations_total",
        "access_tokens WeChat refused before they expired."
    );
    describe_counter!(
        "lastmile_wechat_calls_total",
        "Calls to WeChat, by API and outcome."
    );
    describe_histogram!(
        "lastmile_wechat_call_seconds",
        Unit::Seconds,
        "Time a WeChat call took, by API."
    );
    describe_histogram!(
        "lastmile_storage_flush_seconds",
        Unit::Seconds,
        "Time one group-commit flush took."
    );
    describe_histogram!(
        "lastmile_storage_commit_batch_size",
        "Writers sharing one group-commit flush."
    );
    describe_counter!(
        "lastmile_storage_flush_failures_total",
        "Group-commit flushes that failed."
    );
    describe_gauge!(
        "lastmile_dispatch_orders_waiting",
        "Paid orders waiting for a courier, per campus."
    );
    describe_gauge!(
        "lastmile_dispatch_couriers_online",
        "Couriers online now, per campus."
    );
    describe_histogram!(
        "lastmile_dispatch_round_seconds",
        Unit::Seconds,
        "Time one planning round took."
    );
    describe_histogram!(
        "lastmile_dispatch_round_distance_metres",
        "Metres couriers sent in a round travel to their pickups."
    );
    describe_histogram!(
        "lastmile_dispatch_assignment_latency_seconds",
        Unit::Seconds,
        "Time from payment to assignment."
    );
}

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// The caller's `X-Request-Id` when it is 1–64 characters of
/// `[A-Za-z0-9._-]` (a proxy's or client's id, kept so logs line up),
/// else a fresh one: this process's random prefix and a counter.
fn request_id(req: &ServiceRequest) -> String {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if let Some(id) = given {
        return id.to_owned();
    }
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Gives every request an id (in its log lines and echoed in the
/// `X-Request-Id` response header), counts requests by route, method and
/// status, times them, and turns any non-JSON error response from the
/// framework into the API's error body.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let id = request_id(&req);
    // At WARN so that every line logged for a request names it, whatever
    // level the log runs at.
    let span = tracing::warn_span!("request", id = %id);
    let res = next.call(req).instrument(span).await?;
    let route = res
        .request()
        .app_data::<RouteLabel>()
        .map_or("unmatched", |r| r.0);
    let status = res.status();
    let (count, latency) = request_metrics(route, method, status_label(status));
    count.increment(1);
    latency.record(started.elapsed().as_secs_f64());
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let is_api_error = status.is_client_error() || status.is_server_error();
    let mut res =
        if is_api_error && !is_json && !res.request().path().starts_with("/api/v1/wechat/") {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, ApiError::from_status(status).error_response())
        } else {
            res.map_into_boxed_body()
        };
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn control_characters_inside_a_line_are_escaped_and_its_end_kept() {
        let mut out = Escaping(Vec::new());
        out.write_all(b"WARN notify refused reason=FAIL\n2026 INFO forged\x1b[2J\r\n")
            .expect("written");
        assert_eq!(
            String::from_utf8(out.0).expect("utf8"),
            "WARN notify refused reason=FAIL\\x0a2026 INFO forged\\x1b[2J\\x0d\n"
        );
        let mut out = Escaping(Vec::new());
        out.write_all("plain line, 中文\tok\n".as_bytes())
            .expect("written");
        assert_eq!(out.0, "plain line, 中文\tok\n".as_bytes());
    }
}
