//! WeChat's content check of the texts users write, through the sandbox:
//! a risky text is refused naming its field and changes nothing; one for
//! review, or one WeChat could not check, is accepted and flagged for
//! operators; a refused access_token is refreshed and the check asked again.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{order_body, spawn_app_with};

const TOKEN: &str = "content-operator-token-0123";

#[actix_web::test]
async fn risky_texts_are_refused_by_field_and_change_nothing() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
    })
    .await;
    let (customer, customer_id) = app.login("content-customer").await;
    for (field, pointer) in [
        ("note", "/note"),
        ("pickup.detail", "/pickup/detail"),
        ("dropoff.detail", "/dropoff/detail"),
    ] {
        let mut body = order_body();
        *body.pointer_mut(pointer).expect("field") = json!("这是违禁的内容");
        let reply = app.create_order(&customer, &body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation"),
            "{}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with(&format!("{field} was refused")),
            "{message}"
        );
    }
    assert_eq!(app.count_orders(&customer).await, 0, "nothing was created");

    let (courier, _) = app.login("content-courier").await;
    let named = app
        .post_as(
            &courier,
            "/api/v1/couriers/me",
            Some(json!({"name": "违禁者", "phone": "13800138000"})),
        )
        .await;
    assert_eq!(named.status, StatusCode::BAD_REQUEST, "{}", named.body);
    assert!(named.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("name was refused"));
    let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await;
    assert_eq!(tasks.status, StatusCode::FORBIDDEN, "no courier was made");

    // A dispute's text too, and the order stays delivered.
    let id = app.paid_order(&customer, &customer_id).await;
    let (courier, _) = app
        .online_courier("content-courier-2", "cainiao-north")
        .await;
    for step in ["grab", "pickup", "deliver"] {
        let r = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let disputed = app
        .post_as(
            &customer,
            &format!("/api/v1/orders/{id}/dispute"),
            Some(json!({"reason": "other", "text": "违禁"})),
        )
        .await;
    assert_eq!(
        disputed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        disputed.body
    );
    assert!(disputed.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("text was refused"));
    assert_eq!(app.status_of(&customer, &id).await, "delivered");
    // Other tests share the process's metrics: at least these five.
    assert!(
        app.metric("lastmile_content_checks_total{outcome=\"risky\"}")
            .await
            >= 5.0
    );
}

/// The admin view of one order.
async fn admin_view<S, B>(app: &crate::helpers::TestApp<S>, id: &str) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let found = app
        .send(
            TestRequest::get()
                .uri(&format!("/api/v1/admin/orders?q={id}"))
                .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    found.body["orders"][0].clone()
}

#[actix_web::test]
async fn texts_for_review_or_unchecked_are_accepted_and_flagged_for_operators() {
    let app = spawn_app_with(|s| s.admin.token = Some(Secret::new(TOKEN))).await;
    let (customer, _) = app.login("flag-customer").await;
    let clean = app.create_order(&customer, &order_body()).await;
    assert_eq!(clean.status, StatusCode::CREATED);
    let clean = clean.body["id"].as_str().expect("id").to_owned();
    assert_eq!(admin_view(&app, &clean).await["flagged"], false);

    let mut body = order_body();
    body["note"] = json!("有点可疑的备注");
    let review = app.create_order(&customer, &body).await;
    assert_eq!(review.status, StatusCode::CREATED, "{}", review.body);
    assert!(
        review.body.get("flagged").is_none(),
        "customers never see the flag"
    );
    let review = review.body["id"].as_str().expect("id").to_owned();
    assert_eq!(admin_view(&app, &review).await["flagged"], true);

    // A courier's name for review: accepted, flagged in the review queue.
    let (courier, courier_id) = app.login("flag-courier").await;
    let named = app
        .post_as(
            &courier,
            "/api/v1/couriers/me",
            Some(json!({"name": "可疑的名字", "phone": "13800138000"})),
        )
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.body);
    let listed = app
        .send(
            TestRequest::get()
                .uri("/api/v1/admin/couriers")
                .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
        )
        .await;
    let me = listed.body["couriers"]
        .as_array()
        .expect("couriers")
        .iter()
        .find(|c| c["openid"] == courier_id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(me["name_flagged"], true, "{me}");

    // WeChat down: ordering goes on, flagged.
    app.wechat.set_down(true);
    let down = app.create_order(&customer, &order_body()).await;
    app.wechat.set_down(false);
    assert_eq!(down.status, StatusCode::CREATED, "{}", down.body);
    let down = down.body["id"].as_str().expect("id").to_owned();
    assert_eq!(admin_view(&app, &down).await["flagged"], true);
    assert!(
        app.metric("lastmile_content_checks_total{outcome=\"unavailable\"}")
            .await
            >= 1.0
    );
}

#[actix_web::test]
async fn a_refused_access_token_is_refreshed_and_the_check_asked_again_once() {
    let app = spawn_app_with(|_| {}).await;
    let (customer, _) = app.login("token-customer").await;
    let first = app.create_order(&customer, &order_body()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let (tokens, checks) = (app.wechat.token_calls(), app.wechat.content_checks());
    // WeChat invalidates the token the service holds (40001 on next use).
    app.wechat.revoke_tokens();
    let mut body = order_body();
    body["note"] = json!("违禁");
    let refused = app.create_order(&customer, &body).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(app.wechat.token_calls(), tokens + 1, "one refresh");
    // The three texts asked at once with the old token (refused), at once
    // again with the new one (risky), then one by one to name the field.
    assert_eq!(app.wechat.content_checks(), checks + 5);
}
