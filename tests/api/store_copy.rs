//! `lastmile store copy` against the real binary: a sled store holding
//! every kind of record, copied to PostgreSQL, answers the same there.

use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{create_order_over_http, eventually, BinaryApp};
use crate::uploads::upload_over_http;

const ADMIN: &str = "store-copy-admin-token";

/// `lastmile store copy`, configured as the service was (share images in
/// `files`).
fn copy(from: &str, to: &str, files: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lastmile"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LASTMILE__OBJECTS__LOCAL_DIR", files)
        .args(["store", "copy", "--from", from, "--to", to])
        .output()
        .expect("lastmile store copy runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The report's line for `kind`: (copied, already there).
fn line(report: &str, kind: &str) -> (u64, u64) {
    let words: Vec<&str> = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} line in {report}"))
        .split_whitespace()
        .collect();
    let n = |i: usize| words.get(i).and_then(|w| w.parse().ok()).expect("a number");
    (n(1), n(3))
}

async fn call(
    client: &reqwest::Client,
    app: &BinaryApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect(path);
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(
    client: &reqwest::Client,
    app: &BinaryApp,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, reply) = call(client, app, token, reqwest::Method::POST, path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {reply}");
    reply
}

/// A paid order taken by `courier` and delivered.
async fn delivered(
    client: &reqwest::Client,
    app: &BinaryApp,
    code: &str,
    courier: &str,
) -> (String, String) {
    let (customer, id) = app.sandbox_paid_order(client, code).await;
    let (status, _) = call(
        client,
        app,
        courier,
        reqwest::Method::POST,
        &format!("/api/v1/orders/{id}/grab"),
        None,
    )
    .await;
    if status != 200 {
        // The dispatcher was quicker; there is only this courier.
        let assigned = eventually(Duration::from_secs(10), || async {
            let (_, order) = call(
                client,
                app,
                &customer,
                reqwest::Method::GET,
                &format!("/api/v1/orders/{id}"),
                None,
            )
            .await;
            order["status"] == "assigned"
        })
        .await;
        assert!(assigned, "{id} assigned");
    }
    for step in ["pickup", "deliver"] {
        post(
            client,
            app,
            courier,
            &format!("/api/v1/orders/{id}/{step}"),
            None,
        )
        .await;
    }
    (customer, id)
}

/// Who and what the store holds, to ask the service about.
struct Held {
    customer: String,
    courier: String,
    viewer: String,
    orders: Vec<String>,
    photo: String,
    share: String,
}

/// What the service answers about everything the store holds.
async fn answers(client: &reqwest::Client, app: &BinaryApp, held: &Held) -> Vec<(String, Value)> {
    let Held {
        customer,
        courier,
        viewer,
        orders,
        photo,
        share,
    } = held;
    let (customer, courier, viewer) = (customer.as_str(), courier.as_str(), viewer.as_str());
    let mut out = Vec::new();
    let get = |who: &str, path: String| {
        let (who, path) = (who.to_owned(), path);
        async move {
            let (status, body) = call(client, app, &who, reqwest::Method::GET, &path, None).await;
            (path, json!({"status": status, "body": body}))
        }
    };
    for id in orders {
        out.push(get(customer, format!("/api/v1/orders/{id}")).await);
    }
    for (who, path) in [
        (customer, "/api/v1/orders"),
        (ADMIN, "/api/v1/admin/couriers"),
        (courier, "/api/v1/couriers/me/wallet"),
        (courier, "/api/v1/couriers/me/withdrawals"),
        (ADMIN, "/api/v1/admin/operators"),
        (ADMIN, "/api/v1/admin/withdrawals"),
        (ADMIN, "/api/v1/admin/disputes"),
        (ADMIN, "/api/v1/admin/ledger/check"),
        (viewer, "/api/v1/admin/me"),
    ] {
        out.push(get(who, path.to_owned()).await);
    }
    for (who, path) in [
        (courier, format!("/api/v1/uploads/{photo}")),
        ("", share.to_owned()),
    ] {
        let res = client
            .get(app.url(&path))
            .bearer_auth(who)
            .send()
            .await
            .expect(&path);
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("bytes");
        out.push((path, json!({"status": status, "bytes": bytes.len(), "sum": bytes.iter().map(|b| u64::from(*b)).sum::<u64>()})));
    }
    out
}

#[actix_web::test]
async fn a_sled_store_copied_to_postgres_answers_the_same_there() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let files = dir.path().join("files").display().to_string();
    let env = [
        ("LASTMILE__ADMIN__TOKEN", ADMIN),
        ("LASTMILE__OBJECTS__LOCAL_DIR", files.as_str()),
    ];
    let mut app = BinaryApp::start(&data, &env).await;
    let client = reqwest::Client::new();

    let (courier, _) = app
        .online_courier(&client, "copy-courier", "小王", "cainiao-north")
        .await;
    let (customer, completed) = delivered(&client, &app, "copy-customer", &courier).await;
    post(
        &client,
        &app,
        &customer,
        &format!("/api/v1/orders/{completed}/confirm"),
        None,
    )
    .await;
    let (_, disputed) = delivered(&client, &app, "copy-customer", &courier).await;
    post(
        &client,
        &app,
        &customer,
        &format!("/api/v1/orders/{disputed}/dispute"),
        Some(json!({"reason": "wrong_item", "text": "不是我的"})),
    )
    .await;
    // Nobody on duty: the paid order stays as it is until the copy.
    post(&client, &app, &courier, "/api/v1/couriers/me/offline", None).await;
    let (_, paid) = app.sandbox_paid_order(&client, "copy-customer").await;
    let cancelled = create_order_over_http(&client, &app.url(""), &customer).await;
    post(
        &client,
        &app,
        &customer,
        &format!("/api/v1/orders/{cancelled}/cancel"),
        None,
    )
    .await;
    post(
        &client,
        &app,
        &courier,
        "/api/v1/couriers/me/withdrawals",
        Some(json!({"amount_fen": 100})),
    )
    .await;
    let viewer = post(
        &client,
        &app,
        ADMIN,
        "/api/v1/admin/operators",
        Some(json!({"name": "copy-viewer", "role": "viewer"})),
    )
    .await;
    let viewer = viewer["token"].as_str().expect("operator token").to_owned();
    let photo = upload_over_http(&client, &app, &courier).await;
    let (_, share) = call(
        &client,
        &app,
        &customer,
        reqwest::Method::GET,
        "/api/v1/share-code?scene=copy",
        None,
    )
    .await;
    let share = share["url"]
        .as_str()
        .and_then(|u| u.split_once("/files/"))
        .map(|(_, f)| format!("/files/{f}"))
        .expect("share url");

    let held = Held {
        customer,
        courier,
        viewer,
        orders: vec![completed, disputed, paid, cancelled],
        photo,
        share,
    };
    // What it answers from its store (times kept to the millisecond).
    app.terminate();
    app.launch().await;
    let before = answers(&client, &app, &held).await;
    assert!(
        before.iter().all(|(_, a)| a["status"] == 200),
        "{before:#?}"
    );

    let url = crate::postgres::fresh_database();
    let source = data.display().to_string();
    let in_use = copy(&source, &url, &files);
    assert_eq!(
        in_use.status.code(),
        Some(2),
        "a store in use: {}",
        text(&in_use)
    );
    assert!(
        text(&in_use).contains(&source),
        "names it: {}",
        text(&in_use)
    );

    app.terminate();
    let first = copy(&source, &url, &files);
    let report = text(&first);
    assert_eq!(first.status.code(), Some(0), "{report}");
    assert_eq!(line(&report, "orders"), (4, 0), "{report}");
    assert_eq!(line(&report, "withdrawals"), (1, 0), "{report}");
    assert_eq!(line(&report, "objects").0, 2, "{report}");
    assert!(line(&report, "postings").0 >= 3, "{report}");
    assert!(line(&report, "sessions").0 >= 2, "{report}");
    assert!(report.contains("balanced"), "{report}");

    let again = copy(&source, &url, &files);
    let report = text(&again);
    assert_eq!(again.status.code(), Some(0), "{report}");
    for kind in [
        "orders",
        "postings",
        "withdrawals",
        "sessions",
        "objects",
        "operators",
    ] {
        assert_eq!(line(&report, kind).0, 0, "{kind} copied twice: {report}");
    }

    // The service on PostgreSQL, with an empty directory and no files.
    let elsewhere = dir.path().join("elsewhere");
    let on_postgres = BinaryApp::start_configured(
        &elsewhere,
        None,
        vec![
            ("LASTMILE__ADMIN__TOKEN".into(), ADMIN.into()),
            ("LASTMILE__STORAGE__ENGINE".into(), "postgres".into()),
            ("LASTMILE__STORAGE__POSTGRES__URL".into(), url.clone()),
            (
                "LASTMILE__OBJECTS__LOCAL_DIR".into(),
                elsewhere.join("files").display().to_string(),
            ),
        ],
    )
    .await;
    let after = answers(&client, &on_postgres, &held).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{path} answers the same on PostgreSQL");
    }
}
