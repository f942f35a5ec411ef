//! Faults: every actor restarted after a panic and rebuilt from sled, a
//! failed flush, a refund that WeChat Pay does not take at first.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use crate::helpers::{eventually, order_body, spawn_app_with};

/// Makes one actor panic.
type Crash<'a> = Box<dyn Fn() + 'a>;

#[actix_web::test]
async fn every_actor_is_restarted_after_a_panic_and_works_again() {
    let app = spawn_app_with(|s| {
        s.http.rate_limit = Some(10_000);
        s.dispatch.tick = Duration::from_millis(20);
    })
    .await;
    let (customer, openid) = app.login("resilient-customer").await;
    let state = &app.state;
    let limiter = state.rate_limits.clone().expect("rate limiter on");
    let crashes: Vec<(&str, Crash)> = vec![
        ("sessions", Box::new(|| state.sessions.inject_panic())),
        ("payments", Box::new(|| state.payments.inject_panic())),
        ("dispatcher", Box::new(|| state.dispatch.inject_panic())),
        ("notifier", Box::new(|| state.notifications.inject_panic())),
        ("formids", Box::new(|| state.formids.inject_panic())),
        ("token_refresher", Box::new(|| state.tokens.inject_panic())),
        ("share_codes", Box::new(|| state.share_codes.inject_panic())),
        ("rate_limiter", Box::new(move || limiter.inject_panic())),
    ];
    for (actor, crash) in &crashes {
        let series = format!(r#"lastmile_actor_restarts_total{{actor="{actor}"}}"#);
        let before = app.metric(&series).await;

        crash();

        let restarted = eventually(Duration::from_secs(5), || {
            let series = series.clone();
            let app = &app;
            async move { app.metric(&series).await > before }
        })
        .await;
        assert!(restarted, "{actor} panicked and was counted");
        let ready = eventually(Duration::from_secs(5), || async {
            app.send(TestRequest::get().uri("/readyz")).await.status == StatusCode::OK
        })
        .await;
        assert!(ready, "{actor} is back");
    }

    // Each one works again, from what sled holds.
    let (_, same) = app.login("resilient-customer").await;
    assert_eq!(same, openid, "sessions");
    assert_eq!(
        app.get_as(&customer, "/api/v1/orders?limit=1").await.status,
        StatusCode::OK,
        "a token issued before the crash still works"
    );
    app.post_as(
        &customer,
        "/api/v1/subscriptions",
        Some(json!({"template_ids": ["SANDBOX_TPL_ASSIGNED"]})),
    )
    .await;
    let formids = app
        .post_as(
            &customer,
            "/api/v1/form-ids",
            Some(json!({"form_ids": ["f1"]})),
        )
        .await;
    assert_eq!(formids.body, json!({"accepted": 1}), "form-id pool");
    let id = app.paid_order(&customer, &openid).await;
    app.online_courier("resilient-courier", "dorm-1").await;
    let assigned = eventually(Duration::from_secs(5), || {
        let (app, customer, id) = (&app, &customer, &id);
        async move { app.status_of(customer, id).await == "assigned" }
    })
    .await;
    assert!(assigned, "payments and dispatcher");
    let messaged = eventually(Duration::from_secs(5), || async {
        app.wechat
            .sent_messages()
            .iter()
            .any(|m| m.message.touser == openid)
    })
    .await;
    assert!(messaged, "notifier");
    let code = app
        .get_as(&customer, "/api/v1/share-code?scene=after-crash")
        .await;
    assert_eq!(
        code.status,
        StatusCode::OK,
        "token refresher and share codes: {}",
        code.body
    );
}

#[actix_web::test]
async fn a_failed_flush_answers_503_and_readiness_drops_until_writes_work_again() {
    let app = spawn_app_with(|_| {}).await;
    let (token, _) = app.login("flush-victim").await;
    app.store.inject_commit_failures(1);

    let created = app.create_order(&token, &order_body()).await;

    assert_eq!(created.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(created.code(), "unavailable");
    assert_eq!(
        app.send(TestRequest::get().uri("/readyz")).await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready while the last flush failed"
    );
    let ready = eventually(Duration::from_secs(10), || async {
        app.send(TestRequest::get().uri("/readyz")).await.status == StatusCode::OK
    })
    .await;
    assert!(ready, "the write probe's next flush clears it");
    assert_eq!(
        app.create_order(&token, &order_body()).await.status,
        StatusCode::CREATED
    );
}

#[actix_web::test]
async fn a_refund_is_retried_until_wechat_pay_takes_it() {
    let app = spawn_app_with(|_| {}).await;
    let (token, openid) = app.login("patient-refund").await;
    let id = app.paid_order(&token, &openid).await;
    let sim = app.wechat.pay_simulator();
    sim.fail_next_calls(2);

    let cancelled = app.cancel_order(&token, &id).await;

    assert_eq!(cancelled.body["status"], "refunding");
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(sim.refunds().is_empty(), "WeChat Pay is busy");
    let requested = eventually(Duration::from_secs(10), || async {
        !sim.refunds().is_empty()
    })
    .await;
    assert!(
        requested,
        "the refund went through once WeChat Pay was back"
    );
}
