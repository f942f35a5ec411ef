//! The OpenAPI 3 document (`GET /openapi.json`), assembled from the
//! `#[utoipa::path]` annotations on the handlers, and the Swagger UI that
//! renders it at `/docs` (vendored into the binary: no CDN).
//!
//! The routes are registered from the same annotations (see
//! [`crate::startup::app`]), so a path cannot be served under one name and
//! documented under another.

use std::sync::{Arc, OnceLock};

use actix_web::{web, HttpResponse, ResponseError};
use lastmile_actors::campus::Campuses;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::Config;

use crate::error::{ApiError, ErrorBody};
use crate::routes::{
    admin, auth, campuses, couriers, disputes, money, operators, ops, orders, outreach, payments,
    pricing, transfers, trust, uploads,
};
use crate::state::AppState;

mod constraints;

/// The whole HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lastmile",
        description = "Campus last-100-metres delivery for WeChat mini-programs: \
            login, orders, WeChat Pay, couriers and dispatch, messages, share codes. \
            Every error answers `{\"error\": {\"code\", \"message\"}}`; \
            every answer carries `X-Request-Id`."
    ),
    paths(
        auth::login,
        orders::create, orders::list, orders::get, orders::cancel, pricing::price,
        campuses::campuses,
        payments::pay,
        couriers::register, couriers::online, couriers::offline, couriers::location,
        couriers::tasks, couriers::open, couriers::grab, couriers::pickup,
        couriers::deliver, couriers::confirm, couriers::release,
        disputes::open_dispute, disputes::disputes, disputes::resolve,
        uploads::upload, uploads::photo,
        outreach::add_form_ids, outreach::subscribe, outreach::share_code, outreach::file,
        payments::pay_notify, payments::refund_notify,
        payments::sandbox_pay, payments::sandbox_messages, payments::sandbox_fail_sends,
        transfers::transfer_notify, transfers::sandbox_confirm,
        admin::map, admin::live, admin::today, admin::search, admin::refund, admin::settle,
        admin::reassign, admin::force_offline,
        trust::couriers, trust::approve_courier, trust::reject_courier, trust::suspend_courier, trust::reinstate_courier,
        trust::block_user, trust::unblock_user,
        operators::me, operators::operators, operators::add_operator, operators::revoke_operator,
        money::wallet, money::ledger_check, money::withdraw, money::my_withdrawals,
        money::queue, money::approve, money::reject, money::paid, money::cancel_withdrawal,
        money::cancel_my_withdrawal,
        money::reconciliation, money::reconcile, money::money_day,
        ops::metrics, ops::healthz, ops::readyz,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &CommonErrors),
    tags(
        (name = "auth", description = "wx.login → bearer token"),
        (name = "orders", description = "The customer's orders"),
        (name = "payments", description = "WeChat Pay: prepay and notifies"),
        (name = "couriers", description = "Couriers: presence, tasks, grab, pickup, deliver"),
        (name = "messages", description = "Form ids, subscriptions, share codes"),
        (name = "uploads", description = "Private photos: student cards, proof of delivery, dispute evidence"),
        (name = "money", description = "Couriers' wallets"),
        (name = "sandbox", description = "The WeChat simulator (sandbox mode only; 404 in live mode)"),
        (name = "admin", description = "The operator console's API (Bearer admin.token; 404 when unset)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme the annotations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The token of POST /api/v1/auth/login (the admin API takes admin.token)",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The errors any route can answer, added to every operation in one place
/// instead of repeated on each annotation: 503 and 429 everywhere, 401 where
/// a token is required, 400/413/415 where a JSON body is taken.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_errors(operation);
            }
        }
    }
}

fn add_common_errors(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let query = operation.parameters.iter().flatten().any(|p| {
        matches!(
            p.parameter_in,
            utoipa::openapi::path::ParameterIn::Query | utoipa::openapi::path::ParameterIn::Header
        )
    });
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if query && !json_body {
        add(
            "400",
            "A query parameter breaks a rule (the message names it)",
        );
    }
    if json_body {
        add(
            "400",
            "Bad JSON, or a field breaks a rule (the message names it)",
        );
        add("413", "Body over 64 KiB");
        add("415", "Body is not application/json");
    }
    if secured {
        add("401", "Missing or invalid bearer token");
    }
    add("429", "Over http.rate_limit");
    add("503", "Storage, WeChat or an actor is unavailable; retry");
}

fn error_response(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build()
        .into()
}

/// The document as served, finished for `campuses`: in live mode without
/// the sandbox's routes, which do not exist there. The rules are written
/// into the whole document first, so every rule finds its target in
/// either mode.
pub fn document(campuses: &Campuses, sandbox: bool, min_withdrawal_fen: u32) -> serde_json::Value {
    let mut doc = serde_json::to_value(api()).unwrap_or_default();
    constraints::apply(&mut doc, campuses);
    constraints::merge(
        doc.pointer_mut("/components/schemas/WithdrawalBody/properties/amount_fen"),
        serde_json::json!({"minimum": min_withdrawal_fen}),
    );
    if !sandbox {
        without_sandbox(&mut doc);
    }
    doc
}

/// Drops the sandbox's routes, their tag, and the links that lead to them.
fn without_sandbox(doc: &mut serde_json::Value) {
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        paths.retain(|path, _| !path.starts_with("/sandbox/"));
    }
    if let Some(tags) = doc.get_mut("tags").and_then(|t| t.as_array_mut()) {
        tags.retain(|t| t["name"] != "sandbox");
    }
    let created = "/paths/~1api~1v1~1orders/post/responses/201/links";
    if let Some(links) = doc.pointer_mut(created).and_then(|l| l.as_object_mut()) {
        links.retain(|_, link| {
            !link["operationRef"]
                .as_str()
                .is_some_and(|r| r.starts_with("#/paths/~1sandbox"))
        });
    }
}

/// The generated document, built once for the served JSON and the router.
fn api() -> &'static Document {
    static API: OnceLock<Document> = OnceLock::new();
    API.get_or_init(ApiDoc::openapi)
}

/// The methods each documented path answers, for the `Allow` header of a
/// 405 (keyed by the path pattern the router matched).
pub fn allowed_methods(pattern: &str) -> Option<&'static str> {
    static ALLOWED: OnceLock<std::collections::HashMap<String, String>> = OnceLock::new();
    ALLOWED
        .get_or_init(|| {
            api()
                .paths
                .paths
                .iter()
                .map(|(path, item)| {
                    let methods = [
                        ("GET", item.get.is_some()),
                        ("POST", item.post.is_some()),
                        ("PUT", item.put.is_some()),
                        ("DELETE", item.delete.is_some()),
                        ("PATCH", item.patch.is_some()),
                    ];
                    let allow: Vec<&str> = methods
                        .iter()
                        .filter(|(_, on)| *on)
                        .map(|(m, _)| *m)
                        .collect();
                    (path.clone(), allow.join(", "))
                })
                .collect()
        })
        .get(pattern)
        .map(String::as_str)
}

/// The Swagger UI's settings: no call to validator.swagger.io (a request
/// to the internet from an operator's browser), and a pasted token is
/// never kept in the browser's storage.
fn swagger_config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                Config::new(["/openapi.json"])
                    .validator_url("none")
                    .try_it_out_enabled(true)
                    .persist_authorization(false),
            )
        })
        .clone()
}

/// `GET /openapi.json`.
pub async fn spec(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.api_doc.clone())
}

/// `GET /docs/{file}`: the vendored Swagger UI, never framed, scripts
/// from this origin only.
pub async fn docs(file: web::Path<String>) -> HttpResponse {
    match utoipa_swagger_ui::serve(&file, swagger_config()) {
        Ok(Some(found)) => HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header(("X-Frame-Options", "DENY"))
            .insert_header((
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 frame-ancestors 'none'",
            ))
            .body(found.bytes.into_owned()),
        _ => ApiError::NotFound("no such file".into()).error_response(),
    }
}
