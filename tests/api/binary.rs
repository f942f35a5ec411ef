//! The real binary end to end: round trip, kill -9, restarts, SIGTERM, bad config.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{eventually, order_body, BinaryApp};

/// Waits until everything the service wrote so far is on disk: an
/// acknowledged write is flushed by the group commit, and the flush covers
/// every earlier write (sled's log is ordered). Changes no test cares about.
async fn durability_barrier(http: &reqwest::Client, base: &str) {
    let (token, _) = crate::helpers::login_over_http(http, base, "durability-barrier").await;
    let res = http
        .post(format!("{base}/api/v1/form-ids"))
        .bearer_auth(token)
        .json(&serde_json::json!({"form_ids": ["barrier"]}))
        .send()
        .await
        .expect("barrier write");
    assert_eq!(res.status(), 200);
}

/// POSTs (JSON or no body) as `token`; the answer as JSON.
async fn post_json(
    http: &reqwest::Client,
    target: String,
    token: String,
    body: Option<Value>,
) -> Value {
    let mut req = http.post(target).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[actix_web::test]
async fn round_trip_and_errors_on_the_binary() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = BinaryApp::start(&dir.path().join("data"), &[]).await;
    let http = client();
    let (token, openid) = app.login(&http, "bin-user").await;

    let res = http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .json(&order_body())
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.expect("json");
    assert_eq!(order["customer"], openid.as_str());
    let id = order["id"].as_str().expect("id");

    let got: Value = http
        .get(app.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got, order);
    let list: Value = http
        .get(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["orders"][0], order);

    let bad = http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"kind": "express"}))
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["code"], "validation");
    let missing = http
        .get(app.url("/no/such/route"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.expect("json")["error"]["code"],
        "not_found"
    );
}

/// Creates an order as `token` and pays it at the sandbox, all over HTTP.
async fn paid_over_http(http: &reqwest::Client, base: &str, token: &str) -> String {
    let order = post_json(
        http,
        format!("{base}/api/v1/orders"),
        token.to_owned(),
        Some(order_body()),
    )
    .await;
    let id = order["id"].as_str().expect("id").to_owned();
    post_json(
        http,
        format!("{base}/api/v1/orders/{id}/pay"),
        token.to_owned(),
        None,
    )
    .await;
    let paid = http
        .post(format!("{base}/sandbox/pay/{id}"))
        .send()
        .await
        .expect("sandbox pay");
    assert_eq!(paid.status(), 200);
    id
}

/// Registers `token` as a courier and brings them online at `place`.
async fn online_over_http(http: &reqwest::Client, base: &str, token: &str, place: &str) {
    post_json(
        http,
        format!("{base}/api/v1/couriers/me"),
        token.to_owned(),
        Some(serde_json::json!({"name": "骑手", "phone": "13912345678"})),
    )
    .await;
    post_json(
        http,
        format!("{base}/api/v1/couriers/me/online"),
        token.to_owned(),
        Some(serde_json::json!({ "place_id": place })),
    )
    .await;
}

/// True once order `id`, as `token` sees it, has `status` (within `limit`).
async fn reaches_over_http(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    status: &str,
    limit: Duration,
) -> bool {
    eventually(limit, || async {
        let Ok(res) = http
            .get(format!("{base}/api/v1/orders/{id}"))
            .bearer_auth(token)
            .send()
            .await
        else {
            return false;
        };
        res.json::<Value>()
            .await
            .is_ok_and(|o| o["status"] == status)
    })
    .await
}

#[actix_web::test]
async fn acknowledged_orders_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    // One customer makes 200 unpaid orders here: lift the per-customer bound.
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__ORDERS__MAX_UNPAID", "1000")],
    )
    .await;
    let http = client();
    let (token, _) = app.login(&http, "durable-user").await;

    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (http, url, token) = (http.clone(), app.url("/api/v1/orders"), token.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                let mut body = order_body();
                body["note"] = format!("worker {worker} order {i}").into();
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("create");
                assert_eq!(res.status(), 201);
                acked.push(res.json::<Value>().await.expect("json"));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("task"));
    }
    app.kill9();
    assert_eq!(acked.len(), 200);

    app.launch().await;
    for order in &acked {
        let id = order["id"].as_str().expect("id");
        let got: Value = http
            .get(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(&got, order, "order {id} changed or vanished after kill -9");
    }
    let list: Value = http
        .get(app.url("/api/v1/orders?limit=100"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["orders"].as_array().map(Vec::len), Some(100));
    assert!(list["next_cursor"].is_string());
}

#[actix_web::test]
async fn payment_timeout_fires_across_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__ORDERS__PAYMENT_TIMEOUT", "3s")],
    )
    .await;
    let http = client();
    let (token, _) = app.login(&http, "restart-user").await;
    let id = crate::helpers::create_order_over_http(&http, &app.url(""), &token).await;
    app.kill9();
    app.launch().await;
    let url = app.url(&format!("/api/v1/orders/{id}"));
    let status_now = |http: reqwest::Client, url: String, token: String| async move {
        let body: Value = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        body["status"].as_str().unwrap_or("").to_owned()
    };
    assert_eq!(
        status_now(http.clone(), url.clone(), token.clone()).await,
        "awaiting_payment"
    );
    let cancelled = eventually(Duration::from_secs(15), || {
        let fut = status_now(http.clone(), url.clone(), token.clone());
        async move { fut.await == "cancelled" }
    })
    .await;
    assert!(
        cancelled,
        "the timer must be rebuilt from sled after a restart"
    );
}

#[actix_web::test]
async fn sessions_survive_restart_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(&dir.path().join("data"), &[]).await;
    let http = client();
    let (token, openid) = app.login(&http, "sticky-user").await;
    let status = app.terminate().expect("exited");
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must drain, flush and exit 0"
    );
    app.launch().await;
    let res = http
        .get(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list");
    assert_eq!(res.status(), 200, "the token must survive a restart");
    let (_, again) = app.login(&http, "sticky-user").await;
    assert_eq!(again, openid);
}

/// Arguments, environment, and what is wrong.
type ConfigCase = (Vec<String>, Vec<(&'static str, String)>, &'static str);

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let bad_toml = write("bad.toml", "[http\nbind = ");
    let dup_map = write("dup.toml", "[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n[[places]]\nid='a'\nname='B'\nkind='dorm'\nx=1\ny=1\n");
    let kind_map = write(
        "kind.toml",
        "[[places]]\nid='a'\nname='A'\nkind='volcano'\nx=0\ny=0\n",
    );
    let cases: Vec<ConfigCase> = vec![
        (
            vec![
                "--config".into(),
                dir.path().join("missing.toml").display().to_string(),
            ],
            vec![],
            "missing file",
        ),
        (
            vec!["--config".into(), bad_toml.display().to_string()],
            vec![],
            "bad TOML",
        ),
        (
            vec![],
            vec![("LASTMILE__CAMPUS__MAP", dup_map.display().to_string())],
            "duplicate place id",
        ),
        (
            vec![],
            vec![("LASTMILE__CAMPUS__MAP", kind_map.display().to_string())],
            "unknown place kind",
        ),
        (
            vec![],
            vec![("LASTMILE__CAMPUS__MAP", "/nonexistent/campus.toml".into())],
            "missing campus map",
        ),
        (
            vec![],
            vec![("LASTMILE__ORDERS__PAYMENT_TIMEOUT", "soon".into())],
            "bad duration",
        ),
        (
            vec![],
            vec![
                ("LASTMILE__DISPATCH__TARGET", "50m".into()),
                ("LASTMILE__DISPATCH__MAX", "40m".into()),
            ],
            "click-to-door limit below the target",
        ),
        (
            vec![],
            vec![("LASTMILE__ADMIN__TOKEN", "admin".into())],
            "a guessable admin token",
        ),
    ];
    for (args, env, why) in cases {
        crate::helpers::refuses_to_start(&dir.path().join("data"), &args, &env, why);
    }
}

#[test]
fn a_bad_campus_directory_refuses_to_start_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let place = "[[places]]\nid='a'\nname='A'\nkind='dorm'\nx=0\ny=0\n";
    let campus_dir = |name: &str, files: &[(&str, String)]| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        for (file, text) in files {
            std::fs::write(d.join(file), text).expect("write");
        }
        d
    };
    let cases = [
        (
            campus_dir(
                "twice",
                &[
                    ("1.toml", format!("id = 'north'\n{place}")),
                    ("2.toml", format!("id = 'north'\n{place}")),
                ],
            ),
            "2.toml",
            "id: campus id \"north\"",
        ),
        (
            campus_dir(
                "far",
                &[(
                    "far.toml",
                    "[[places]]\nid='moon'\nname='M'\nkind='dorm'\nx=384400000\ny=0\n".into(),
                )],
            ),
            "far.toml",
            "places[0] (moon)",
        ),
        (
            campus_dir("kind", &[("k.toml", place.replace("dorm", "volcano"))]),
            "k.toml",
            "line 4",
        ),
        (
            campus_dir(
                "slow",
                &[("s.toml", format!("[dispatch]\nspeed = 0\n{place}"))],
            ),
            "s.toml",
            "dispatch.speed",
        ),
        (
            campus_dir(
                "share",
                &[("c.toml", format!("commission_percent = 101\n{place}"))],
            ),
            "c.toml",
            "commission_percent",
        ),
        (campus_dir("empty", &[]), "empty", "no *.toml campus file"),
    ];
    for (map, file, key) in cases {
        let line = crate::helpers::refuses_to_start(
            &dir.path().join("data"),
            &[],
            &[("LASTMILE__CAMPUS__MAP", map.display().to_string())],
            key,
        );
        assert!(
            line.contains(file) && line.contains(key),
            "{file} / {key}: {line}"
        );
    }
}

/// The sandbox's API key (config/default.toml), to sign a notify the way
/// WeChat Pay would after a restart wiped the in-process simulator.
const SANDBOX_KEY: &str = "sandboxsandboxsandboxsandbox0000";

#[actix_web::test]
async fn sandbox_payment_notifies_over_http_and_kill_9_before_notify_loses_nothing() {
    use lastmile_actors::wechat::SignType;

    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(&dir.path().join("data"), &[]).await;
    let http = client();
    let (token, openid) = app.login(&http, "bin-payer").await;
    let create = |http: &reqwest::Client, url: String, token: String| {
        let req = http.post(url).bearer_auth(token).json(&order_body()).send();
        async move {
            req.await
                .expect("create")
                .json::<Value>()
                .await
                .expect("json")["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };

    // Paid through the sandbox: the notify reaches the service over HTTP.
    let id = create(&http, app.url("/api/v1/orders"), token.clone()).await;
    let early = http
        .post(app.url(&format!("/sandbox/pay/{id}")))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(early.status(), 409, "no prepay yet");
    let params: Value = http
        .post(app.url(&format!("/api/v1/orders/{id}/pay")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("json");
    assert!(params["package"]
        .as_str()
        .is_some_and(|p| p.starts_with("prepay_id=")));
    let paid = http
        .post(app.url(&format!("/sandbox/pay/{id}")))
        .send()
        .await
        .expect("sandbox pay");
    assert_eq!(paid.status(), 200);
    let order: Value = http
        .get(app.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(order["status"], "paid");
    let metrics = http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("route=\"/api/v1/wechat/pay/notify\",method=\"POST\",status=\"200\""),
        "the notify came over HTTP"
    );

    // kill -9 between prepay and notify: the notify is applied after restart.
    let id2 = create(&http, app.url("/api/v1/orders"), token.clone()).await;
    http.post(app.url(&format!("/api/v1/orders/{id2}/pay")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pay");
    app.kill9();
    app.launch().await;
    let mut fields =
        crate::helpers::notify_fields("wx0000000000sandbox", "1900000109", &id2, &openid, 300);
    fields.insert(
        "transaction_id".into(),
        "4200000000202611250000000777".to_owned(),
    );
    fields.insert("nonce_str".into(), "restartnonce".to_owned());
    let notify = crate::helpers::signed_xml(fields, SANDBOX_KEY, SignType::Md5);
    let answer = http
        .post(app.url("/api/v1/wechat/pay/notify"))
        .body(notify)
        .send()
        .await
        .expect("notify")
        .text()
        .await
        .expect("text");
    assert!(
        answer.contains("SUCCESS") && !answer.contains("FAIL"),
        "{answer}"
    );
    let order: Value = http
        .get(app.url(&format!("/api/v1/orders/{id2}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(order["status"], "paid");
}

#[actix_web::test]
async fn binary_dispatch_flow_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__DISPATCH__TICK", "50ms"),
            ("LASTMILE__DISPATCH__MAX_TASKS", "1"),
        ],
    )
    .await;
    let port = app.port;
    let url = move |p: &str| format!("http://127.0.0.1:{port}{p}");
    let http = client();
    let (customer, _) = app.login(&http, "bin-dispatch-customer").await;
    let (courier, courier_id) = app.login(&http, "bin-dispatch-courier").await;
    let post =
        |target: String, token: String, body: Option<Value>| post_json(&http, target, token, body);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let order = post(url("/api/v1/orders"), customer.clone(), Some(order_body())).await;
        let id = order["id"].as_str().expect("id").to_owned();
        post(
            url(&format!("/api/v1/orders/{id}/pay")),
            customer.clone(),
            None,
        )
        .await;
        assert_eq!(
            http.post(url(&format!("/sandbox/pay/{id}")))
                .send()
                .await
                .expect("pay")
                .status(),
            200
        );
        ids.push(id);
    }
    post(
        url("/api/v1/couriers/me"),
        courier.clone(),
        Some(serde_json::json!({"name": "小李", "phone": "13912345678"})),
    )
    .await;
    post(
        url("/api/v1/couriers/me/online"),
        courier.clone(),
        Some(serde_json::json!({"place_id": "dorm-3"})),
    )
    .await;
    let status = |id: String| {
        let req = http
            .get(url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(customer.clone())
            .send();
        async move {
            req.await.expect("get").json::<Value>().await.expect("json")["status"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        }
    };
    let one_assigned = eventually(Duration::from_secs(5), || {
        let (a, b) = (status(ids[0].clone()), status(ids[1].clone()));
        async move {
            [a.await, b.await]
                .iter()
                .filter(|s| *s == "assigned")
                .count()
                == 1
        }
    })
    .await;
    assert!(one_assigned, "capacity 1: one assigned, one waiting");
    let first = if status(ids[0].clone()).await == "assigned" {
        ids[0].clone()
    } else {
        ids[1].clone()
    };
    let second = if first == ids[0] {
        ids[1].clone()
    } else {
        ids[0].clone()
    };

    // Seeing "assigned" is not durability: wait for a flush first.
    durability_barrier(&http, &url("")).await;
    app.kill9();
    app.launch().await;
    assert_eq!(
        status(first.clone()).await,
        "assigned",
        "the assigned task stays theirs"
    );
    assert_eq!(status(second.clone()).await, "paid");
    let tasks: Value = http
        .get(url("/api/v1/couriers/me/tasks"))
        .bearer_auth(&courier)
        .send()
        .await
        .expect("tasks")
        .json()
        .await
        .expect("json");
    assert_eq!(tasks["orders"][0]["id"], first.as_str());

    post(
        url("/api/v1/couriers/me/online"),
        courier.clone(),
        Some(serde_json::json!({"place_id": "dorm-3"})),
    )
    .await;
    assert_eq!(
        post(
            url(&format!("/api/v1/orders/{first}/pickup")),
            courier.clone(),
            None
        )
        .await["status"],
        "picked_up"
    );
    assert_eq!(
        post(
            url(&format!("/api/v1/orders/{first}/deliver")),
            courier.clone(),
            None
        )
        .await["status"],
        "delivered"
    );
    assert_eq!(
        post(
            url(&format!("/api/v1/orders/{first}/confirm")),
            customer.clone(),
            None
        )
        .await["status"],
        "completed"
    );
    let rematched = eventually(Duration::from_secs(5), || {
        let s = status(second.clone());
        async move { s.await == "assigned" }
    })
    .await;
    assert!(
        rematched,
        "the waiting order is matched again after the restart"
    );
    let order: Value = http
        .get(url(&format!("/api/v1/orders/{second}")))
        .bearer_auth(&customer)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(order["courier"], courier_id.as_str());
}

#[actix_web::test]
async fn tasks_of_a_courier_who_never_returns_go_back_after_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__DISPATCH__TICK", "50ms"),
            ("LASTMILE__DISPATCH__REASSIGN_AFTER", "1s"),
        ],
    )
    .await;
    let http = client();
    let (customer, _) = app.login(&http, "vanished-customer").await;
    let (courier, _) = app.login(&http, "vanished-courier").await;
    let base = app.url("");
    let id = paid_over_http(&http, &base, &customer).await;
    online_over_http(&http, &base, &courier, "dorm-3").await;
    let second = Duration::from_secs(5);
    assert!(reaches_over_http(&http, &base, &customer, &id, "assigned", second).await);
    durability_barrier(&http, &base).await;

    app.kill9();
    app.launch().await;

    // The courier never comes back: presence starts empty after a restart,
    // and their untouched task returns to the pool after reassign_after.
    let back = reaches_over_http(
        &http,
        &base,
        &customer,
        &id,
        "paid",
        Duration::from_secs(10),
    )
    .await;
    assert!(back, "the vanished courier's task went back to the pool");
}

#[actix_web::test]
async fn messages_pending_at_kill_9_are_delivered_after_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__DISPATCH__TICK", "50ms")],
    )
    .await;
    let port = app.port;
    let url = move |p: &str| format!("http://127.0.0.1:{port}{p}");
    let http = client();
    let (customer, openid) = app.login(&http, "bin-messages").await;
    let (courier, _) = app.login(&http, "bin-messenger").await;
    let post =
        |target: String, token: String, body: Option<Value>| post_json(&http, target, token, body);
    post(
        url("/api/v1/subscriptions"),
        customer.clone(),
        Some(serde_json::json!({"template_ids": ["SANDBOX_TPL_ASSIGNED"]})),
    )
    .await;
    // Every send fails until the process dies: the message stays in the outbox.
    http.post(url("/sandbox/fail-sends/1000000"))
        .send()
        .await
        .expect("fail sends");
    let base = url("");
    let id = paid_over_http(&http, &base, &customer).await;
    online_over_http(&http, &base, &courier, "dorm-3").await;
    assert!(
        reaches_over_http(
            &http,
            &base,
            &customer,
            &id,
            "assigned",
            Duration::from_secs(5)
        )
        .await
    );
    let none: Value = http
        .get(url("/sandbox/messages"))
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    assert_eq!(none["messages"], serde_json::json!([]));

    durability_barrier(&http, &url("")).await;
    app.kill9();
    app.launch().await;
    let delivered = eventually(Duration::from_secs(10), || {
        let req = http.get(url("/sandbox/messages")).send();
        async move {
            req.await
                .expect("messages")
                .json::<Value>()
                .await
                .expect("json")["messages"]
                .as_array()
                .map_or(0, Vec::len)
                == 1
        }
    })
    .await;
    assert!(delivered, "the outbox survives kill -9");
    let sent: Value = http
        .get(url("/sandbox/messages"))
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    assert_eq!(sent["messages"][0]["touser"], openid.as_str());
    assert_eq!(sent["messages"][0]["template_id"], "SANDBOX_TPL_ASSIGNED");
    // kill -9 may land between spending the grant and recording it; then
    // the pooled prepay_id carries the message instead.
    assert!(matches!(
        sent["messages"][0]["via"].as_str(),
        Some("subscribe" | "template")
    ));

    // The rest of the flow: one message per event; a transient failure is
    // retried and delivered once.
    post(
        url("/api/v1/couriers/me/online"),
        courier.clone(),
        Some(serde_json::json!({"place_id": "dorm-3"})),
    )
    .await;
    http.post(url("/sandbox/fail-sends/1"))
        .send()
        .await
        .expect("fail once");
    post(
        url(&format!("/api/v1/orders/{id}/pickup")),
        courier.clone(),
        None,
    )
    .await;
    post(
        url(&format!("/api/v1/orders/{id}/deliver")),
        courier.clone(),
        None,
    )
    .await;
    let three = eventually(Duration::from_secs(10), || {
        let req = http.get(url("/sandbox/messages")).send();
        async move {
            req.await
                .expect("messages")
                .json::<Value>()
                .await
                .expect("json")["messages"]
                .as_array()
                .map_or(0, Vec::len)
                >= 3
        }
    })
    .await;
    assert!(
        three,
        "picked up and delivered messages arrive, the failed one after a retry"
    );
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let sent: Value = http
        .get(url("/sandbox/messages"))
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    let templates: Vec<&str> = sent["messages"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["template_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        templates,
        [
            "SANDBOX_TPL_ASSIGNED",
            "SANDBOX_TPL_PICKED_UP",
            "SANDBOX_TPL_DELIVERED"
        ],
        "one per event, none twice"
    );
}

/// What one client saw acknowledged: created orders, and which were paid.
#[derive(Default)]
struct Acked {
    created: Vec<Value>,
    paid: Vec<String>,
}

/// One client creating and paying orders until `stop` or the first error
/// (the process died under it).
async fn create_and_pay_until(
    http: reqwest::Client,
    base: String,
    token: String,
    stop: std::time::Instant,
) -> Acked {
    let mut acked = Acked::default();
    while std::time::Instant::now() < stop {
        let Ok(res) = http
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&token)
            .json(&order_body())
            .send()
            .await
        else {
            break;
        };
        if res.status() != 201 {
            break;
        }
        let Ok(order) = res.json::<Value>().await else {
            break;
        };
        let id = order["id"].as_str().unwrap_or_default().to_owned();
        acked.created.push(order);
        let prepaid = http
            .post(format!("{base}/api/v1/orders/{id}/pay"))
            .bearer_auth(&token)
            .send()
            .await;
        if !prepaid.is_ok_and(|r| r.status() == 200) {
            break;
        }
        let paid = http.post(format!("{base}/sandbox/pay/{id}")).send().await;
        if !paid.is_ok_and(|r| r.status() == 200) {
            break;
        }
        acked.paid.push(id);
    }
    acked
}

#[actix_web::test]
async fn kill_9_under_load_three_times_loses_no_acknowledged_order_or_payment() {
    const CLIENTS: usize = 32;
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__DISPATCH__AUTO", "false")],
    )
    .await;
    let http = client();
    let mut tokens = Vec::new();
    let mut token_of = std::collections::HashMap::new();
    for i in 0..CLIENTS {
        let (token, openid) = app.login(&http, &format!("load-client-{i}")).await;
        token_of.insert(openid, token.clone());
        tokens.push(token);
    }
    let mut all = Acked::default();
    for round in 0..3 {
        let stop = std::time::Instant::now() + Duration::from_secs(3);
        let clients: Vec<_> = tokens
            .iter()
            .map(|token| {
                actix_web::rt::spawn(create_and_pay_until(
                    http.clone(),
                    app.url(""),
                    token.clone(),
                    stop,
                ))
            })
            .collect();
        actix_web::rt::time::sleep(Duration::from_millis(1500)).await;

        app.kill9();

        for client in clients {
            let acked = client.await.expect("client");
            all.created.extend(acked.created);
            all.paid.extend(acked.paid);
        }
        app.launch().await;
        let paid: std::collections::HashSet<&str> = all.paid.iter().map(String::as_str).collect();
        for order in &all.created {
            let id = order["id"].as_str().expect("id");
            let token = &token_of[order["customer"].as_str().expect("customer")];
            let got: Value = http
                .get(app.url(&format!("/api/v1/orders/{id}")))
                .bearer_auth(token)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            for field in [
                "id",
                "customer",
                "kind",
                "pickup",
                "dropoff",
                "fee_fen",
                "created_at",
            ] {
                assert_eq!(
                    got[field], order[field],
                    "round {round}: order {id} {field}"
                );
            }
            let status = got["status"].as_str().unwrap_or("");
            if paid.contains(id) {
                assert_eq!(
                    status, "paid",
                    "round {round}: acknowledged payment of {id} lost"
                );
            } else {
                assert!(
                    matches!(status, "awaiting_payment" | "paid"),
                    "round {round}: {id} is {status}"
                );
            }
        }
        println!(
            "kill -9 round {round}: {} orders and {} payments acknowledged so far, all present",
            all.created.len(),
            all.paid.len()
        );
    }
    assert!(
        all.paid.len() > CLIENTS,
        "the load did something: {}",
        all.paid.len()
    );
}

/// The value of a `series` line of `/metrics` (0 when absent).
async fn scrape(http: &reqwest::Client, app: &BinaryApp, series: &str) -> f64 {
    let text = http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn repeated_online_calls_are_refreshes_not_planning_rounds() {
    let dir = tempfile::tempdir().expect("tmp");
    // No tick within the test: every round counted is an early one.
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[("LASTMILE__DISPATCH__TICK", "1h")],
    )
    .await;
    let http = reqwest::Client::new();
    // One waiting order that nobody can take (its only courier is its
    // customer): every round plans, none assigns.
    let (token, _) = app.sandbox_paid_order(&http, "self-courier").await;
    online_over_http(&http, &app.url(""), &token, "cainiao-north").await;
    let rounds = "lastmile_dispatch_round_seconds_count";
    let first = eventually(Duration::from_secs(5), || async {
        scrape(&http, &app, rounds).await >= 1.0
    })
    .await;
    assert!(first, "a courier coming online is planned for at once");
    let before = scrape(&http, &app, rounds).await;
    for _ in 0..50 {
        post_json(
            &http,
            app.url("/api/v1/couriers/me/online"),
            token.clone(),
            Some(serde_json::json!({"place_id": "cainiao-north"})),
        )
        .await;
    }
    let after = scrape(&http, &app, rounds).await;
    assert_eq!(after, before, "50 refreshes ran {} rounds", after - before);
}

#[actix_web::test]
async fn a_paid_order_whose_place_left_the_map_stays_visible_and_refundable() {
    const ADMIN: &str = "stranded-admin-token-0123";
    async fn board(http: &reqwest::Client, app: &BinaryApp) -> Value {
        http.get(app.url("/api/v1/admin/live"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("live")
            .json()
            .await
            .expect("board")
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut app = BinaryApp::start(&data, &[("LASTMILE__ADMIN__TOKEN", ADMIN)]).await;
    let (_, id) = app.sandbox_paid_order(&http, "stranded-customer").await;
    let paid = eventually(Duration::from_secs(10), || async {
        let board = board(&http, &app).await;
        board["waiting"][0]["order_id"] == id.as_str()
    })
    .await;
    assert!(paid, "the order waits for a courier");
    app.terminate();

    // The operator renames the pickup place in the map and restarts.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/campus.toml"))
            .expect("map");
    let map = dir.path().join("campus.toml");
    std::fs::write(
        &map,
        shipped.replace("id = \"cainiao-north\"", "id = \"cainiao-north-new\""),
    )
    .expect("new map");
    let map = map.display().to_string();
    let app = BinaryApp::start(
        &data,
        &[
            ("LASTMILE__ADMIN__TOKEN", ADMIN),
            ("LASTMILE__CAMPUS__MAP", &map),
        ],
    )
    .await;
    let shown = eventually(Duration::from_secs(10), || async {
        let board = board(&http, &app).await;
        board["waiting"].as_array().is_some_and(|w| {
            w.iter()
                .any(|o| o["order_id"] == id.as_str() && o["on_map"] == false)
        })
    })
    .await;
    assert!(shown, "the stranded order is on the operator's board");
    let refunded: Value = http
        .post(app.url(&format!("/api/v1/admin/orders/{id}/refund")))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"reason": "pickup place removed from the map"}))
        .send()
        .await
        .expect("refund")
        .json()
        .await
        .expect("order");
    assert_eq!(refunded["status"], "refunding", "{refunded}");
    let gone = eventually(Duration::from_secs(10), || async {
        let board = board(&http, &app).await;
        board["waiting"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    assert!(gone, "a refunded order no longer waits");
}

#[actix_web::test]
async fn todays_figures_are_kept_by_the_shards_and_survive_a_restart() {
    const ADMIN: &str = "figures-admin-token-01234";
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut app = BinaryApp::start(&data, &[("LASTMILE__ADMIN__TOKEN", ADMIN)]).await;
    let (token, _) = app.sandbox_paid_order(&http, "figures-customer").await;
    // A second order, cancelled unpaid: finished, so it lives in the archive.
    let id = crate::helpers::create_order_over_http(&http, &app.url(""), &token).await;
    let cancelled = post_json(
        &http,
        app.url(&format!("/api/v1/orders/{id}/cancel")),
        token.clone(),
        None,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let today = |app: &BinaryApp| {
        let (http, url) = (http.clone(), app.url("/api/v1/admin/today"));
        async move {
            let figures: Value = http
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .expect("today")
                .json()
                .await
                .expect("figures");
            (figures["created"].clone(), figures["paid"].clone())
        }
    };
    let counted = eventually(Duration::from_secs(10), || async {
        today(&app).await == (serde_json::json!(2), serde_json::json!(1))
    })
    .await;
    assert!(counted, "two created, one paid: {:?}", today(&app).await);
    app.kill9();
    app.launch().await;
    assert_eq!(
        today(&app).await,
        (serde_json::json!(2), serde_json::json!(1)),
        "the figures are rebuilt from storage at start"
    );
}
