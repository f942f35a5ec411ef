//! Named operators with roles: every admin route refuses the roles that
//! may not use it (a table over the whole admin API, read from the OpenAPI
//! document so a new route cannot skip it), tokens are shown once and
//! revoked at once, actions carry the operator's name, and the command
//! line manages operators on a stopped service's storage.

use std::process::Command;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, BinaryApp};

const TOKEN: &str = "operator-secret-token";

/// Which role may use each admin operation: read (every role), dispatch
/// (dispatcher), money (finance), manage (admin only). Admins may do all.
fn power_of(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("get", "/api/v1/admin/operators") | ("post", "/api/v1/admin/operators") => "manage",
        ("post", p) if p.starts_with("/api/v1/admin/operators/") => "manage",
        ("get", _) => "read",
        ("post", p)
            if p.ends_with("/reassign")
                || p.ends_with("/offline")
                || p.ends_with("/approve") && p.contains("/couriers/")
                || p.ends_with("/reject") && p.contains("/couriers/")
                || p.ends_with("/suspend")
                || p.ends_with("/reinstate")
                || p.ends_with("/block")
                || p.ends_with("/unblock") =>
        {
            "dispatch"
        }
        ("post", p)
            if p.ends_with("/refund")
                || p.ends_with("/settle")
                || p.ends_with("/resolve")
                || p.contains("/withdrawals/")
                || p == "/api/v1/admin/reconciliation" =>
        {
            "money"
        }
        other => panic!("{other:?}: classify this admin route in power_of"),
    }
}

fn allowed(role: &str, power: &str) -> bool {
    matches!(
        (role, power),
        ("admin", _) | (_, "read") | ("dispatcher", "dispatch") | ("finance", "money")
    )
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "W0000000000000000000000000000000")
        .replace("{openid}", "oNOBODY")
        .replace("{name}", "nobody")
}

#[actix_web::test]
async fn every_admin_route_refuses_the_roles_that_may_not_use_it() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let mut tokens = vec![("admin", TOKEN.to_owned())];
    for role in ["viewer", "dispatcher", "finance"] {
        let added = app
            .send(
                TestRequest::post()
                    .uri("/api/v1/admin/operators")
                    .insert_header(("Authorization", format!("Bearer {TOKEN}")))
                    .set_json(json!({"name": format!("{role}-1"), "role": role})),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
        tokens.push((
            role,
            added.body["token"].as_str().expect("token").to_owned(),
        ));
    }
    let doc: Value = app.send(TestRequest::get().uri("/openapi.json")).await.body;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/admin/") {
            continue;
        }
        for method in item.as_object().expect("item").keys() {
            let power = power_of(method, path);
            for (role, token) in &tokens {
                let uri = concrete(path);
                let req = match method.as_str() {
                    "get" => TestRequest::get().uri(&uri),
                    "post" => TestRequest::post().uri(&uri).set_json(json!({})),
                    other => panic!("{other}"),
                };
                let reply = app
                    .send(req.insert_header(("Authorization", format!("Bearer {token}"))))
                    .await;
                if allowed(role, power) {
                    assert!(
                        reply.status != StatusCode::FORBIDDEN
                            && reply.status != StatusCode::UNAUTHORIZED,
                        "{role} {method} {path}: {} {}",
                        reply.status,
                        reply.body
                    );
                } else {
                    assert_eq!(
                        (reply.status, reply.code()),
                        (StatusCode::FORBIDDEN, "forbidden"),
                        "{role} {method} {path}: {}",
                        reply.body
                    );
                    let message = reply.body["error"]["message"].as_str().unwrap_or("");
                    assert!(message.contains(role), "{role} {method} {path}: {message}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 30, "only {checked} route × role checks");
}

#[actix_web::test]
async fn an_operator_token_is_shown_once_names_its_actions_and_dies_when_revoked() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let as_admin =
        |req: TestRequest| req.insert_header(("Authorization", format!("Bearer {TOKEN}")));
    let added = app
        .send(
            as_admin(TestRequest::post().uri("/api/v1/admin/operators")).set_json(
                json!({"name": "han.meimei", "role": "dispatcher", "campuses": ["main"]}),
            ),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let token = added.body["token"].as_str().expect("token").to_owned();
    let again = app
        .send(
            as_admin(TestRequest::post().uri("/api/v1/admin/operators"))
                .set_json(json!({"name": "han.meimei", "role": "viewer"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    for bad in [
        json!({"name": "admin", "role": "viewer"}),
        json!({"name": "x y", "role": "viewer"}),
        json!({"name": "ok", "role": "root"}),
        json!({"role": "viewer"}),
    ] {
        let reply = app
            .send(as_admin(TestRequest::post().uri("/api/v1/admin/operators")).set_json(bad))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation"),
            "{}",
            reply.body
        );
    }

    let me = app.get_as(&token, "/api/v1/admin/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        (
            me.body["name"].as_str(),
            me.body["role"].as_str(),
            me.body["dispatch"].as_bool(),
            me.body["money"].as_bool()
        ),
        (
            Some("han.meimei"),
            Some("dispatcher"),
            Some(true),
            Some(false)
        )
    );
    // The list never shows a token.
    let list = app
        .send(as_admin(TestRequest::get().uri("/api/v1/admin/operators")))
        .await;
    assert!(!list.body.to_string().contains(&token));
    assert_eq!(list.body["operators"][0]["campuses"], json!(["main"]));

    // An action of theirs is counted under their name.
    // A customer of their campus (one of no campus is not theirs to block).
    let (customer, openid) = app.login("blocked-by-han").await;
    let ordered = app
        .create_order(&customer, &crate::helpers::order_body())
        .await;
    assert_eq!(ordered.status, StatusCode::CREATED, "{}", ordered.body);
    let block = app
        .post_as(
            &token,
            &format!("/api/v1/admin/users/{openid}/block"),
            Some(json!({"reason": "spam"})),
        )
        .await;
    assert_eq!(block.status, StatusCode::OK);
    let metrics = app.send(TestRequest::get().uri("/metrics")).await;
    let _ = metrics;
    let text = {
        let req = actix_web::test::TestRequest::get()
            .uri("/metrics")
            .to_request();
        let res = actix_web::test::call_service(&app.svc, req).await;
        String::from_utf8_lossy(&actix_web::test::read_body(res).await).into_owned()
    };
    assert!(
        text.lines()
            .any(|l| l.starts_with("lastmile_admin_actions_total")
                && l.contains("action=\"block_user\"")
                && l.contains("operator=\"han.meimei\"")),
        "no action counted for the operator"
    );

    let revoked = app
        .send(as_admin(
            TestRequest::post().uri("/api/v1/admin/operators/han.meimei/revoke"),
        ))
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body["revoked_at"].is_string());
    assert_eq!(
        app.get_as(&token, "/api/v1/admin/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let twice = app
        .send(as_admin(
            TestRequest::post().uri("/api/v1/admin/operators/han.meimei/revoke"),
        ))
        .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
}

fn lastmile(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lastmile"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LASTMILE__STORAGE__PATH", data)
        .envs(crate::postgres::engine_env(data))
        .args(args)
        .output()
        .expect("lastmile runs")
}

#[actix_web::test]
async fn the_command_line_adds_lists_and_revokes_operators_on_a_stopped_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let added = lastmile(&data, &["operator", "add", "li.lei", "--role", "finance"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let said = String::from_utf8_lossy(&added.stdout).into_owned();
    let token = said.lines().last().expect("token line").trim().to_owned();
    assert!(token.starts_with("op_"), "{said}");
    let bad = lastmile(&data, &["operator", "add", "x", "--role", "root"]);
    assert_eq!(bad.status.code(), Some(2));
    // A campus nobody serves here is refused, naming those that are.
    let nowhere = lastmile(
        &data,
        &[
            "operator", "add", "y", "--role", "viewer", "--campus", "west",
        ],
    );
    assert_eq!(nowhere.status.code(), Some(2));
    let said_nowhere = String::from_utf8_lossy(&nowhere.stderr).into_owned();
    assert!(
        said_nowhere.contains("\"west\"") && said_nowhere.contains("served: main"),
        "{said_nowhere}"
    );
    let elsewhere = dir.path().join("elsewhere");
    let served = lastmile(
        &elsewhere,
        &[
            "operator", "add", "y", "--role", "viewer", "--campus", "main",
        ],
    );
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    let list = lastmile(&data, &["operator", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(listed.contains("li.lei\tfinance\tall"), "{listed}");
    assert!(!listed.contains(&token), "the list shows no token");
    // The stored record holds the token's hash, never the token.
    let mut stored = Vec::new();
    for entry in walk(&data) {
        stored.extend(std::fs::read(entry).unwrap_or_default());
    }
    assert!(!stored.windows(token.len()).any(|w| w == token.as_bytes()));

    // No admin.token: the operator alone opens the admin API.
    let mut app = BinaryApp::start(&data, &[]).await;
    let client = reqwest::Client::new();
    let me: Value = client
        .get(app.url("/api/v1/admin/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("li.lei"), Some("finance"))
    );
    // While the service holds the storage, the command line says what to do.
    let busy = lastmile(&data, &["operator", "list"]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("/api/v1/admin/operators"));
    app.terminate();

    let revoked = lastmile(&data, &["operator", "revoke", "li.lei"]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    app.launch().await;
    let gone = client
        .get(app.url("/api/v1/admin/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    // No live operator and no admin.token: there is no admin surface.
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
    app.kill9();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
