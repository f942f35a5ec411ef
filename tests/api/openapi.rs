//! `/openapi.json` and `/docs`: the document is valid OpenAPI, every
//! documented operation is served, and real answers match their schemas.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::helpers::{
    ensure_python_module, order_body, spawn_app, spawn_app_with, BinaryApp, Reply,
};

/// The admin token of the apps here.
const ADMIN: &str = "admin-token-for-the-document";

/// The document, tightened for checking: an object may carry only the
/// properties its schema names (`unevaluatedProperties`, which sees
/// through `allOf` and `$ref`), so an undocumented field fails too.
struct Spec {
    doc: Value,
}

impl Spec {
    fn new(doc: Value) -> Self {
        let mut doc = doc;
        let in_all_of = all_of_targets(&doc);
        if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
            for (name, schema) in schemas.iter_mut() {
                let object = schema.get("properties").is_some() || schema.get("allOf").is_some();
                if object && !in_all_of.contains(name) {
                    schema["unevaluatedProperties"] = json!(false);
                }
            }
        }
        Self { doc }
    }

    /// The documented path template `uri` falls under (literal segments
    /// win over `{params}`, as in the router).
    fn template(&self, uri: &str) -> String {
        let path = uri.split('?').next().unwrap_or(uri);
        let segments: Vec<&str> = path.split('/').collect();
        let paths = self.doc["paths"].as_object().expect("paths");
        paths
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (p, s) in parts.iter().zip(&segments) {
                    if p.starts_with('{') {
                        continue;
                    }
                    if p != s {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, template.clone()))
            })
            .max()
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("{path} is not documented"))
    }

    /// Fails unless the answer's status is documented for the operation
    /// and its JSON body matches that status's schema.
    fn check(&self, method: &str, uri: &str, reply: &Reply) {
        let template = self.template(uri);
        let operation = &self.doc["paths"][&template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let status = reply.status.as_u16().to_string();
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which is not documented: {}",
            reply.body
        );
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} {status} documents no JSON body, yet answered {}",
            reply.content_type
        );
        // Closed at the top too (a schema used inside another's allOf
        // cannot close itself, but the answer as a whole can).
        let mut root = json!({"allOf": [schema], "unevaluatedProperties": false});
        root["components"] = self.doc["components"].clone();
        if let Err(e) = jsonschema::validate(&root, &reply.body) {
            panic!(
                "{method} {uri} {status} does not match its schema: {e} at {}\n{}",
                e.instance_path(),
                reply.body
            );
        }
    }
}

/// Schemas used as an `allOf` part (their properties are joined with
/// another's, so they cannot close themselves).
fn all_of_targets(doc: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    fn walk(v: &Value, inside_all_of: bool, found: &mut BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                if inside_all_of {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        found.insert(r.rsplit('/').next().unwrap_or("").to_owned());
                    }
                }
                for (k, child) in map {
                    walk(child, k == "allOf", found);
                }
            }
            Value::Array(items) => items.iter().for_each(|c| walk(c, inside_all_of, found)),
            _ => {}
        }
    }
    walk(doc, false, &mut found);
    found
}

async fn fetch_spec<S, B>(app: &crate::helpers::TestApp<S>) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let reply = app.send(TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("application/json"));
    reply.body
}

#[actix_web::test]
async fn the_document_is_valid_openapi_3() {
    let app = spawn_app().await;
    let doc = fetch_spec(&app).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).expect("written");
    ensure_python_module("openapi_spec_validator", "openapi-spec-validator");
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("validator runs");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation says what it answers, errors included.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}"
            );
            assert!(responses.contains_key("503"), "{method} {path}");
        }
    }
}

#[actix_web::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(
            "admin-token-for-routing",
        ));
    })
    .await;
    let doc = fetch_spec(&app).await;
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let uri = path
            .replace("{id}", "A1")
            .replace("{n}", "0")
            .replace("{name}", "none.png");
        for method in item.as_object().expect("path item").keys() {
            let req = match method.as_str() {
                "get" => TestRequest::get(),
                "post" => TestRequest::post(),
                other => panic!("unexpected method {other}"),
            };
            let reply = app.send(req.uri(&uri)).await;
            let unrouted = reply.status == StatusCode::METHOD_NOT_ALLOWED
                || reply.body["error"]["message"] == "no such route";
            assert!(!unrouted, "{method} {path} is documented but not served");
            count += 1;
        }
    }
    assert!(count >= 35, "only {count} operations documented");
}

#[actix_web::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = spawn_app().await;
    let redirect = app.send(TestRequest::get().uri("/docs")).await;
    assert_eq!(redirect.status, StatusCode::PERMANENT_REDIRECT);
    let req = TestRequest::get().uri("/docs/").to_request();
    let res = actix_web::test::call_service(&app.svc, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = String::from_utf8_lossy(&actix_web::test::read_body(res).await).into_owned();
    assert!(html.contains("swagger-ui-bundle.js"));
    assert!(
        !html.contains("https://"),
        "the page must not load from a CDN"
    );
    let init = actix_web::test::call_service(
        &app.svc,
        TestRequest::get()
            .uri("/docs/swagger-initializer.js")
            .to_request(),
    )
    .await;
    let init = String::from_utf8_lossy(&actix_web::test::read_body(init).await).into_owned();
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    let bundle = app
        .send(TestRequest::get().uri("/docs/swagger-ui-bundle.js"))
        .await;
    assert_eq!(bundle.status, StatusCode::OK);
}

#[actix_web::test]
async fn real_answers_match_their_schemas() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(ADMIN));
    })
    .await;
    let spec = Spec::new(fetch_spec(&app).await);
    let mut checked = 0;
    let mut check = |method: &str, uri: &str, reply: &Reply| {
        spec.check(method, uri, reply);
        checked += 1;
    };

    // Customer: login, create, read, list, pay.
    let login = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/login")
                .set_json(json!({"code": "schema-customer"})),
        )
        .await;
    check("post", "/api/v1/auth/login", &login);
    let token = login.body["token"].as_str().expect("token").to_owned();
    let openid = login.body["openid"].as_str().expect("openid").to_owned();
    let created = app.create_order(&token, &order_body()).await;
    check("post", "/api/v1/orders", &created);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let order_uri = format!("/api/v1/orders/{id}");
    check("get", &order_uri, &app.get_order(&token, &id).await);
    check(
        "get",
        "/api/v1/orders?limit=5",
        &app.list_orders(&token, "limit=5").await,
    );
    let pay_uri = format!("/api/v1/orders/{id}/pay");
    check("post", &pay_uri, &app.pay_order(&token, &id).await);

    // Errors: validation, no token, unknown order, wrong media type, conflict.
    let mut bad = order_body();
    bad["fee_fen"] = json!(0);
    check(
        "post",
        "/api/v1/orders",
        &app.create_order(&token, &bad).await,
    );
    check(
        "get",
        &order_uri,
        &app.send(TestRequest::get().uri(&order_uri)).await,
    );
    check(
        "get",
        "/api/v1/orders/Nope1",
        &app.get_order(&token, "Nope1").await,
    );
    let text = app
        .send(
            TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("kind=express"),
        )
        .await;
    check("post", "/api/v1/orders", &text);

    // Paid, then a courier takes it through to completion.
    let paid = app.paid_order(&token, &openid).await;
    let (courier, _) = app.online_courier("schema-courier", "cainiao-north").await;
    check(
        "get",
        "/api/v1/orders/open?near=cainiao-north",
        &app.get_as(&courier, "/api/v1/orders/open?near=cainiao-north")
            .await,
    );
    assert!(
        app.reaches(&token, &paid, "assigned", Duration::from_secs(10))
            .await
    );
    check(
        "get",
        "/api/v1/couriers/me/tasks",
        &app.get_as(&courier, "/api/v1/couriers/me/tasks").await,
    );
    let grab = format!("/api/v1/orders/{paid}/grab");
    check("post", &grab, &app.post_as(&courier, &grab, None).await);
    for step in ["pickup", "deliver"] {
        let uri = format!("/api/v1/orders/{paid}/{step}");
        check("post", &uri, &app.post_as(&courier, &uri, None).await);
    }
    let confirm = format!("/api/v1/orders/{paid}/confirm");
    check("post", &confirm, &app.post_as(&token, &confirm, None).await);
    let cancel = format!("/api/v1/orders/{paid}/cancel");
    check("post", &cancel, &app.post_as(&token, &cancel, None).await);
    for (uri, body) in [
        (
            "/api/v1/couriers/me/location",
            json!({"place_id": "dorm-3"}),
        ),
        ("/api/v1/couriers/me/offline", json!({})),
        (
            "/api/v1/couriers/me",
            json!({"name": "王五", "phone": "13900139000"}),
        ),
    ] {
        check("post", uri, &app.post_as(&courier, uri, Some(body)).await);
    }

    // Messages, sharing, sandbox, operations.
    check(
        "post",
        "/api/v1/form-ids",
        &app.post_as(
            &token,
            "/api/v1/form-ids",
            Some(json!({"form_ids": ["f1", "f2"]})),
        )
        .await,
    );
    check(
        "post",
        "/api/v1/subscriptions",
        &app.post_as(
            &token,
            "/api/v1/subscriptions",
            Some(json!({"template_ids": ["tmpl-1"]})),
        )
        .await,
    );
    let share = "/api/v1/share-code?scene=a%3D1&page=pages/index/index";
    check("get", share, &app.get_as(&token, share).await);
    check(
        "get",
        "/sandbox/messages",
        &app.send(TestRequest::get().uri("/sandbox/messages")).await,
    );
    check(
        "post",
        "/sandbox/fail-sends/0",
        &app.send(TestRequest::post().uri("/sandbox/fail-sends/0"))
            .await,
    );
    let unpaid = app.create_order(&token, &order_body()).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sandbox_pay = format!("/sandbox/pay/{unpaid}");
    check(
        "post",
        &sandbox_pay,
        &app.send(TestRequest::post().uri(&sandbox_pay)).await,
    );
    for uri in ["/healthz", "/readyz"] {
        check("get", uri, &app.send(TestRequest::get().uri(uri)).await);
    }

    // The admin API: reads, a refund, a refused second one, a wrong token.
    let admin = |req: TestRequest| req.insert_header(("Authorization", format!("Bearer {ADMIN}")));
    for uri in [
        "/api/v1/admin/map".to_owned(),
        "/api/v1/admin/live".to_owned(),
        "/api/v1/admin/today".to_owned(),
        format!("/api/v1/admin/orders?q={openid}"),
    ] {
        check(
            "get",
            &uri,
            &app.send(admin(TestRequest::get().uri(&uri))).await,
        );
    }
    let refund = format!("/api/v1/admin/orders/{paid}/refund");
    for _ in 0..2 {
        let req = admin(TestRequest::post().uri(&refund)).set_json(json!({"reason": "测试"}));
        check("post", &refund, &app.send(req).await);
    }
    check(
        "get",
        "/api/v1/admin/live",
        &app.send(TestRequest::get().uri("/api/v1/admin/live")).await,
    );
    assert!(checked >= 34, "only {checked} answers checked");

    // The checker bites: an undocumented field, a wrong type, an
    // undocumented status.
    let mut extra = app.get_order(&token, &id).await;
    extra.body["secret"] = json!("x");
    let mut wrong = app.get_order(&token, &id).await;
    wrong.body["fee_fen"] = json!("300");
    let mut teapot = app.get_order(&token, &id).await;
    teapot.status = StatusCode::IM_A_TEAPOT;
    for reply in [extra, wrong, teapot] {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spec.check("get", &order_uri, &reply)
        }));
        assert!(caught.is_err(), "accepted {} {}", reply.status, reply.body);
    }
}

/// What "a front-end developer can generate a client" means: Python's
/// openapi-python-client (PyPI) generates one from the running binary's
/// document, and `tests/fixtures/openapi_client_flow.py` runs login →
/// create → pay → sandbox pay → courier → deliver → confirm → admin search
/// with it, each answer parsed into its generated type.
#[actix_web::test]
async fn a_client_generated_from_the_document_runs_the_sandbox_flow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__ADMIN__TOKEN", ADMIN)],
    )
    .await;
    let doc = reqwest::get(app.url("/openapi.json"))
        .await
        .expect("document")
        .text()
        .await
        .expect("text");
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, doc).expect("written");
    ensure_python_module("openapi_python_client", "openapi-python-client");
    let generated = dir.path().join("generated");
    let out = Command::new("python3")
        .args([
            "-m",
            "openapi_python_client",
            "generate",
            "--meta",
            "none",
            "--path",
        ])
        .arg(&spec)
        .arg("--output-path")
        .arg(generated.join("client"))
        .output()
        .expect("generator runs");
    assert!(
        out.status.success(),
        "generation failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openapi_client_flow.py"
    );
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(app.url(""))
        .arg(ADMIN)
        .env("PYTHONPATH", &generated)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the flow finished in time")
        .expect("python runs");
    assert!(
        run.status.success(),
        "the generated client failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("generated client flow: ok"));
}

/// Schemathesis (PyPI), an independent fuzzer, against the release binary
/// with the served document: examples, coverage, fuzzing and stateful
/// phases (following the links from a created order), every check, a
/// fixed seed — zero failures. `tests/fixtures/schemathesis/` holds its
/// config (the user's and the operator's tokens) and the one hook a
/// clock-relative rule needs.
#[actix_web::test]
async fn schemathesis_finds_nothing_to_fault() {
    ensure_python_module("schemathesis", "schemathesis");
    let dir = tempfile::tempdir().expect("temp dir");
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN),
            // The fuzzer guesses tokens by the thousand from one address;
            // the throttle itself is tested in `ops`.
            ("LASTMILE__HTTP__FAILED_ATTEMPTS_PER_MINUTE", "1000000"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let (token, _) = app.login(&client, "schemathesis").await;
    // A photo of the fuzzing user's own, for the bodies that name one.
    let photo = crate::uploads::upload_over_http(&client, &app, &token).await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemathesis");
    let run = tokio::process::Command::new("python3")
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(format!("{fixtures}/schemathesis.toml"))
        .arg("run")
        .arg(app.url("/openapi.json"))
        .args(["--seed", "1", "--max-examples", "15", "--no-color"])
        .args(["--generation-database", "none", "--workers", "1"])
        .current_dir(dir.path())
        .env("PYTHONPATH", fixtures)
        .env("SCHEMATHESIS_HOOKS", "lastmile_hooks")
        .env("LASTMILE_USER_TOKEN", &token)
        .env("LASTMILE_USER_PHOTO", &photo)
        .env("LASTMILE_BASE_URL", app.url(""))
        .env("LASTMILE_ADMIN_TOKEN", ADMIN)
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finished in time")
        .expect("schemathesis runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "schemathesis found faults:\n{said}");
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(
            said.contains(&format!("✅ {phase}")),
            "{phase} did not pass:\n{said}"
        );
    }
    let generated: u64 = said
        .lines()
        .find_map(|l| l.trim().split_once(" generated,"))
        .map(|(n, _)| n)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(generated >= 300, "only {generated} cases:\n{said}");
}

#[actix_web::test]
async fn a_wrong_method_names_the_allowed_ones_and_live_mode_documents_no_sandbox() {
    let app = spawn_app().await;
    let res = actix_web::test::call_service(
        &app.svc,
        TestRequest::delete().uri("/api/v1/orders").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, POST")
    );
    let campus = lastmile_actors::campus::Campuses::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/campus.toml"
    )))
    .expect("campus");
    let live = lastmile::openapi::document(&campus, false, 100);
    let paths: Vec<&String> = live["paths"].as_object().expect("paths").keys().collect();
    assert!(!paths.is_empty());
    assert!(
        paths.iter().all(|p| !p.starts_with("/sandbox/")),
        "{paths:?}"
    );
    assert!(
        !live.to_string().contains("~1sandbox"),
        "no link leads to a route live mode lacks"
    );
    let sandbox = lastmile::openapi::document(&campus, true, 100);
    assert!(sandbox["paths"]["/sandbox/pay/{id}"].is_object());
    assert!(sandbox.to_string().contains("~1sandbox~1pay~1{id}"));
}
