//! Health, readiness, metrics and the JSON fallbacks, in process.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;

use crate::helpers::{order_body, spawn_app};

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(
        app.send(TestRequest::get().uri("/healthz")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(TestRequest::get().uri("/readyz")).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let cases = [
        (
            TestRequest::get().uri("/nope"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            TestRequest::get().uri("/api/v1/nope"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            TestRequest::delete().uri("/api/v1/orders"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            TestRequest::get().uri("/api/v1/auth/login"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (req, status, code) in cases {
        let reply = app.send(req).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.code(), code);
        assert!(reply.content_type.starts_with("application/json"));
    }
}

#[actix_web::test]
async fn metrics_count_requests_and_orders() {
    let app = spawn_app().await;
    let (token, _) = app.login("metrics-user").await;
    assert_eq!(
        app.create_order(&token, &order_body()).await.status,
        StatusCode::CREATED
    );
    let order = app
        .get_as(&token, "/api/v1/orders/20260101-000000000-x1")
        .await;
    assert_eq!(order.status, StatusCode::NOT_FOUND);
    app.send(TestRequest::get().uri("/no/such/route")).await;
    let res =
        actix_web::test::call_service(&app.svc, TestRequest::get().uri("/metrics").to_request())
            .await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).expect("utf-8");
    assert!(
        text.contains(
            "lastmile_http_requests_total{route=\"/api/v1/orders\",method=\"POST\",status=\"201\"}"
        ),
        "{text}"
    );
    // Labels are the patterns actix-web matched, not the raw paths.
    assert!(
        text.contains("route=\"/api/v1/orders/{id}\",method=\"GET\",status=\"404\""),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\",method=\"GET\",status=\"404\""));
    assert!(!text.contains("20260101-000000000-x1"));
    assert!(text.contains("lastmile_http_request_duration_seconds_bucket"));
    assert!(text.contains("lastmile_orders_created_total{kind=\"express\"}"));
    assert!(text.contains("lastmile_orders_active{status=\"awaiting_payment\""));
}

#[actix_web::test]
async fn rate_limit_answers_429_when_set_and_never_limits_probes() {
    let app = crate::helpers::spawn_app_with(|s| s.http.rate_limit = Some(3)).await;
    let (token, _) = app.login("hasty").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let reply = app
            .send(
                TestRequest::get()
                    .uri("/api/v1/orders")
                    .insert_header(("Authorization", format!("Bearer {token}"))),
            )
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.code(), "rate_limited");
        }
        statuses.push(reply.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == StatusCode::OK).count() <= 3);
    for _ in 0..10 {
        assert_eq!(
            app.send(TestRequest::get().uri("/healthz")).await.status,
            StatusCode::OK
        );
    }
}

/// How many of `n` requests made by `request(i)` were answered 429.
async fn limited<S, B>(
    app: &crate::helpers::TestApp<S>,
    n: usize,
    request: impl Fn(usize) -> TestRequest,
) -> usize
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let mut count = 0;
    for i in 0..n {
        if app.send(request(i)).await.status == StatusCode::TOO_MANY_REQUESTS {
            count += 1;
        }
    }
    count
}

#[actix_web::test]
async fn a_made_up_or_padded_authorization_opens_no_fresh_bucket() {
    let app = crate::helpers::spawn_app_with(|s| s.http.rate_limit = Some(3)).await;
    // Logins, each with another junk header: one address, one bucket.
    let junk = limited(&app, 40, |i| {
        TestRequest::post()
            .uri("/api/v1/auth/login")
            .insert_header(("Authorization", format!("x{i}")))
            .set_json(serde_json::json!({"code": format!("junk-{i}")}))
    })
    .await;
    assert!(junk >= 30, "only {junk} of 40 junk-header logins limited");

    // One real token padded with 1–40 spaces: one user, one bucket.
    let app = crate::helpers::spawn_app_with(|s| s.http.rate_limit = Some(3)).await;
    let (token, _) = app.login("padded").await;
    let padded = limited(&app, 40, |i| {
        TestRequest::get().uri("/api/v1/orders").insert_header((
            "Authorization",
            format!("Bearer {token}{}", " ".repeat(i + 1)),
        ))
    })
    .await;
    assert!(padded >= 30, "only {padded} of 40 padded tokens limited");
}

#[actix_web::test]
async fn failed_admin_sign_ins_are_throttled_per_address_even_without_a_rate_limit() {
    const TOKEN: &str = "throttle-test-admin-token-42";
    let app = crate::helpers::spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
    })
    .await;
    let guesses = limited(&app, 60, |i| {
        TestRequest::get()
            .uri("/api/v1/admin/today")
            .insert_header(("Authorization", format!("Bearer guess-{i:020}")))
    })
    .await;
    assert!(guesses >= 45, "only {guesses} of 60 guesses limited");
    // Meanwhile the address stays barred, even for the right token.
    let right = app
        .send(
            TestRequest::get()
                .uri("/api/v1/admin/today")
                .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
        )
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(right.code(), "rate_limited");

    // A signed-in operator is never throttled by their own calls.
    let app = crate::helpers::spawn_app_with(|s| {
        s.admin.token = Some(lastmile_actors::wechat::Secret::new(TOKEN));
    })
    .await;
    let calls = limited(&app, 30, |_| {
        TestRequest::get()
            .uri("/api/v1/admin/today")
            .insert_header(("Authorization", format!("Bearer {TOKEN}")))
    })
    .await;
    assert_eq!(calls, 0);
}

#[actix_web::test]
async fn no_rate_limit_by_default() {
    let app = spawn_app().await;
    let (token, _) = app.login("patient").await;
    for _ in 0..50 {
        let reply = app
            .send(
                TestRequest::get()
                    .uri("/api/v1/orders")
                    .insert_header(("Authorization", format!("Bearer {token}"))),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn forwarded_addresses_count_only_through_trusted_proxies() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.http.rate_limit = Some(1);
        s.http.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    let from = |peer: &str, forwarded: &str| {
        TestRequest::get()
            .uri("/api/v1/orders")
            .peer_addr(format!("{peer}:40000").parse().expect("addr"))
            .insert_header(("X-Forwarded-For", forwarded.to_owned()))
    };
    // An untrusted peer cannot dodge the limit by naming new addresses.
    assert_eq!(
        app.send(from("127.0.0.9", "127.0.0.20")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(from("127.0.0.9", "127.0.0.21")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind the trusted proxy each client has its own bucket.
    assert_eq!(
        app.send(from("127.0.0.1", "127.0.0.30")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(from("127.0.0.1", "127.0.0.31")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(from("127.0.0.1", "127.0.0.30")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn every_answer_carries_a_request_id_kept_from_the_caller_or_made() {
    let app = spawn_app().await;
    let id_of = |req: TestRequest| {
        let svc = &app.svc;
        async move {
            let res = actix_web::test::call_service(svc, req.to_request()).await;
            res.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        }
    };

    let kept = id_of(
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("X-Request-Id", "edge-7f3a.1")),
    )
    .await;
    let made = id_of(TestRequest::get().uri("/healthz")).await;
    let made_again = id_of(TestRequest::get().uri("/healthz")).await;
    let unmatched = id_of(TestRequest::get().uri("/no/such/route")).await;
    let bad = id_of(
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("X-Request-Id", "x".repeat(65))),
    )
    .await;

    assert_eq!(kept.as_deref(), Some("edge-7f3a.1"));
    let made = made.expect("made one");
    assert!(!made.is_empty() && made.len() <= 64, "{made}");
    assert_ne!(Some(made), made_again, "a fresh id per request");
    assert!(unmatched.is_some(), "framework errors too");
    let bad = bad.expect("replaced");
    assert_ne!(bad, "x".repeat(65), "an unusable id is replaced");
}

#[actix_web::test]
async fn metrics_pass_promtool_with_help_process_metrics_and_build_info() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    crate::helpers::ensure_tool("promtool", "prometheus");
    let dir = tempfile::tempdir().expect("tmp");
    let app = crate::helpers::BinaryApp::start(&dir.path().join("data"), &[]).await;
    let client = reqwest::Client::new();
    // Some traffic, so that the order, payment and notify series exist.
    app.sandbox_paid_order(&client, "metrics-user").await;
    let text = client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed");
    let out = promtool.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    for series in [
        "lastmile_build_info{version=\"",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "lastmile_http_requests_total{",
        "lastmile_orders_created_total{",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for family in families {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
}
