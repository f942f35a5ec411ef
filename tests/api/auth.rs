//! Login and bearer tokens, in process.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn same_code_gives_same_openid_and_different_codes_differ() {
    let app = spawn_app().await;
    let (t1, a) = app.login("code-alpha").await;
    let (t2, a_again) = app.login("code-alpha").await;
    let (_, b) = app.login("code-beta").await;
    assert_eq!(a, a_again);
    assert_ne!(a, b);
    assert_ne!(t1, t2, "each login gets its own token");
    assert!(t1.len() >= 22, "token must carry at least 128 bits");
}

#[actix_web::test]
async fn rejected_code_is_401_and_bad_body_is_400() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"code": "invalid-code"}),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "WeChat rejects it",
        ),
        (
            json!({}),
            StatusCode::BAD_REQUEST,
            "validation",
            "code missing",
        ),
        (
            json!({"code": ""}),
            StatusCode::BAD_REQUEST,
            "validation",
            "code empty",
        ),
        (
            json!({"code": 42}),
            StatusCode::BAD_REQUEST,
            "bad_request",
            "code of the wrong type",
        ),
    ];
    for (body, status, code, why) in cases {
        let reply = app
            .send(
                TestRequest::post()
                    .uri("/api/v1/auth/login")
                    .set_json(&body),
            )
            .await;
        assert_eq!(reply.status, status, "{why}: {}", reply.body);
        assert_eq!(reply.code(), code, "{why}");
    }
}

#[actix_web::test]
async fn wechat_down_is_503() {
    let app = spawn_app().await;
    app.wechat.set_down(true);
    let reply = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/login")
                .set_json(json!({"code": "c"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code(), "unavailable");
}

#[actix_web::test]
async fn orders_need_a_valid_token() {
    let app = spawn_app().await;
    for header in [
        None,
        Some("Bearer nope"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = TestRequest::get().uri("/api/v1/orders");
        if let Some(h) = header {
            req = req.insert_header(("Authorization", h));
        }
        let reply = app.send(req).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(reply.code(), "unauthorized");
    }
}
