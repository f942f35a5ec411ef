//! Customer messages through the durable outbox.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{eventually, spawn_app_with};

#[actix_web::test]
async fn each_event_sends_one_subscribe_message_or_a_template_with_the_prepay_id() {
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(50)).await;
    let (granted, granted_id) = app.login("granted").await;
    app.post_as(
        &granted,
        "/api/v1/subscriptions",
        Some(json!({"template_ids": ["SANDBOX_TPL_ASSIGNED", "SANDBOX_TPL_PICKED_UP", "SANDBOX_TPL_DELIVERED"]})),
    )
    .await;
    let (plain, plain_id) = app.login("no-grants").await;
    let a = app.paid_order(&granted, &granted_id).await;
    let b = app.paid_order(&plain, &plain_id).await;
    let (courier, _) = app.online_courier("messenger", "dorm-1").await;
    for id in [&a, &b] {
        let (app, granted, plain) = (&app, &granted, &plain);
        let assigned = eventually(Duration::from_secs(5), || async move {
            app.status_of(granted, id).await == "assigned"
                || app.status_of(plain, id).await == "assigned"
        })
        .await;
        assert!(assigned);
        app.post_as(&courier, &format!("/api/v1/orders/{id}/pickup"), None)
            .await;
        app.post_as(&courier, &format!("/api/v1/orders/{id}/deliver"), None)
            .await;
    }
    let all_sent = eventually(Duration::from_secs(5), || async {
        app.wechat.sent_messages().len() == 6
    })
    .await;
    assert!(all_sent, "{:?}", app.wechat.sent_messages());
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let sent = app.wechat.sent_messages();
    assert_eq!(sent.len(), 6, "one message per event, no more");
    let to_granted: Vec<_> = sent
        .iter()
        .filter(|m| m.message.touser == granted_id)
        .collect();
    assert!(to_granted.iter().all(|m| m.via == "subscribe"));
    assert_eq!(
        to_granted
            .iter()
            .map(|m| m.message.template_id.as_str())
            .collect::<Vec<_>>(),
        [
            "SANDBOX_TPL_ASSIGNED",
            "SANDBOX_TPL_PICKED_UP",
            "SANDBOX_TPL_DELIVERED"
        ]
    );
    let to_plain: Vec<_> = sent
        .iter()
        .filter(|m| m.message.touser == plain_id)
        .collect();
    assert_eq!(to_plain.len(), 3);
    assert!(
        to_plain
            .iter()
            .all(|m| m.via == "template"
                && m.form_id.as_deref().is_some_and(|f| f.starts_with("wx"))),
        "without grants, the paid order's prepay_id carries three messages: {to_plain:?}"
    );
}

#[actix_web::test]
async fn a_transient_failure_is_retried_and_delivered_once() {
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(50)).await;
    let (customer, openid) = app.login("retry-me").await;
    app.post_as(
        &customer,
        "/api/v1/subscriptions",
        Some(json!({"template_ids": ["SANDBOX_TPL_ASSIGNED"]})),
    )
    .await;
    app.wechat.fail_next_sends(1);
    let id = app.paid_order(&customer, &openid).await;
    app.online_courier("retry-courier", "dorm-1").await;
    let delivered = eventually(Duration::from_secs(8), || async {
        !app.wechat.sent_messages().is_empty()
    })
    .await;
    assert!(delivered, "retried after the failure");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let sent = app.wechat.sent_messages();
    assert_eq!(sent.len(), 1, "delivered once");
    assert_eq!(sent[0].message.template_id, "SANDBOX_TPL_ASSIGNED");
    assert!(sent[0].message.page.contains(&id));
}

#[actix_web::test]
async fn a_refund_without_permission_is_dropped_not_retried_forever() {
    let app = spawn_app_with(|_| {}).await;
    let (customer, openid) = app.login("no-permission").await;
    let id = app.paid_order(&customer, &openid).await;
    // The prepay_id's three uses are spent first.
    let user = lastmile_actors::domain::OpenId::parse(&openid).expect("openid");
    for _ in 0..3 {
        app.state
            .formids
            .take_form_id(user.clone(), lastmile_actors::domain::now_utc())
            .await
            .expect("take");
    }
    app.cancel_order(&customer, &id).await;
    let refunded = eventually(Duration::from_secs(5), || {
        let (app, customer, id) = (&app, &customer, &id);
        async move {
            app.post_xml("/api/v1/wechat/refund/notify", refund_notify(app, id))
                .await;
            app.status_of(customer, id).await == "refunded"
        }
    })
    .await;
    assert!(refunded);
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.wechat.sent_messages().is_empty(),
        "no grant, no form_id: dropped"
    );
    assert_eq!(
        app.store.outbox_repo().outbox_len(),
        0,
        "and not kept for ever"
    );
}

fn refund_notify<S>(app: &crate::helpers::TestApp<S>, id: &str) -> String {
    use lastmile_actors::wechat::{pay, WeChat};
    let signer = app.wechat.pay().signer().clone();
    let info = pay::fields([
        ("out_trade_no", id.to_owned()),
        ("out_refund_no", format!("R{id}")),
        ("refund_status", "SUCCESS".to_owned()),
        ("refund_fee", "300".to_owned()),
        ("total_fee", "300".to_owned()),
    ]);
    pay::to_xml(&pay::fields([
        ("return_code", "SUCCESS".to_owned()),
        ("appid", signer.appid.clone()),
        ("mch_id", signer.mch_id.clone()),
        ("nonce_str", "n".to_owned()),
        (
            "req_info",
            pay::encrypt_req_info(&info, signer.api_key.expose()),
        ),
    ]))
}

#[actix_web::test]
async fn one_users_bad_form_ids_delay_nobody_else() {
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(20)).await;
    // Every form_id of this user is refused by WeChat (41028).
    let (bad, bad_id) = app.login("bad-form-ids").await;
    let ids: Vec<String> = (0..100).map(|i| format!("invalid-{i}")).collect();
    app.post_as(&bad, "/api/v1/form-ids", Some(json!({ "form_ids": ids })))
        .await;
    let (good, good_id) = app.login("good-grant").await;
    app.post_as(
        &good,
        "/api/v1/subscriptions",
        Some(json!({"template_ids": ["SANDBOX_TPL_ASSIGNED"]})),
    )
    .await;
    // Couriers who worked here before (their campus is on their
    // profiles), off duty while the orders come in…
    let mut couriers = Vec::new();
    for i in 0..4 {
        let (token, _) = app
            .online_courier(&format!("fair-courier-{i}"), "dorm-1")
            .await;
        app.post_as(&token, "/api/v1/couriers/me/offline", None)
            .await;
        couriers.push(token);
    }
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(app.paid_order(&bad, &bad_id).await);
    }
    let good_order = app.paid_order(&good, &good_id).await;
    // …then all back at once: the four orders are assigned together.
    for token in &couriers {
        let on = app
            .post_as(
                token,
                "/api/v1/couriers/me/online",
                Some(json!({"place_id": "dorm-1"})),
            )
            .await;
        assert_eq!(on.status, actix_web::http::StatusCode::OK, "{}", on.body);
    }

    let delivered = eventually(Duration::from_secs(5), || async {
        app.wechat
            .sent_messages()
            .iter()
            .any(|m| m.message.touser == good_id)
    })
    .await;

    assert!(delivered, "the other user's message went out");
    let attempts = app.wechat.send_attempts();
    let before_good = attempts
        .iter()
        .take_while(|(to, ok)| !(to == &good_id && *ok))
        .filter(|(to, _)| to == &bad_id)
        .count();
    assert!(
        before_good <= 1,
        "at most one of the failing user's sends went first, not {before_good}"
    );
    let _ = (orders, good_order);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let bad_attempts = app
        .wechat
        .send_attempts()
        .iter()
        .filter(|(to, _)| to == &bad_id)
        .count();
    assert!(
        bad_attempts < 20,
        "each failing entry backs off instead of burning every form_id at once: {bad_attempts}"
    );
}
