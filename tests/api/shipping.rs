//! Shipping info: with `wechat.shipping_info`, each delivered order is
//! reported to WeChat's 发货信息管理 (同城配送, by the merchant's order
//! number, with the payer) through the durable outbox; busy answers are
//! retried, a report WeChat already has counts as done, a refusal is given
//! up and counted for alerting; the admin view shows when it was taken.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;

use crate::helpers::{eventually, spawn_app_with, TestApp};

const TOKEN: &str = "shipping-operator-token-0123";

/// A paid order taken and delivered by a new courier; answers its id and
/// the customer's openid.
async fn delivered<S, B>(app: &TestApp<S>, tag: &str) -> (String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let (customer, customer_id) = app.login(&format!("{tag}-customer")).await;
    let id = app.paid_order(&customer, &customer_id).await;
    let (courier, _) = app
        .online_courier(&format!("{tag}-courier"), "cainiao-north")
        .await;
    for step in ["grab", "pickup", "deliver"] {
        let r = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
    }
    (id, customer_id)
}

async fn reported_at<S, B>(app: &TestApp<S>, id: &str) -> serde_json::Value
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
    found.body["orders"][0]["shipping_reported_at"].clone()
}

#[actix_web::test]
async fn a_delivered_order_is_reported_as_same_city_delivery_with_its_payer() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
        s.wechat.shipping_info = true;
    })
    .await;
    let (id, payer) = delivered(&app, "ship").await;
    let reported = eventually(Duration::from_secs(10), || async {
        reported_at(&app, &id).await.is_string()
    })
    .await;
    assert!(reported, "{:?}", app.wechat.shipping_reports());
    let reports = app.wechat.shipping_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = serde_json::to_value(&reports[0]).expect("json");
    assert_eq!(report["order_key"]["order_number_type"], 1);
    assert_eq!(report["order_key"]["mchid"], "1900000109");
    assert_eq!(report["order_key"]["out_trade_no"], id.as_str());
    assert_eq!(
        (
            report["logistics_type"].clone(),
            report["delivery_mode"].clone()
        ),
        (2.into(), 1.into())
    );
    assert_eq!(report["payer"]["openid"], payer.as_str());
    assert!(report["upload_time"]
        .as_str()
        .unwrap_or("")
        .ends_with("+08:00"));

    // Without the setting nothing is reported.
    let plain = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
    })
    .await;
    let (other, _) = delivered(&plain, "noship").await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(plain.wechat.shipping_reports().is_empty());
    assert_eq!(reported_at(&plain, &other).await, serde_json::Value::Null);
}

#[actix_web::test]
async fn busy_answers_are_retried_a_known_report_is_done_and_a_refusal_is_given_up() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
        s.wechat.shipping_info = true;
    })
    .await;
    // Busy, then the payment not yet in WeChat's system: both retried.
    app.wechat.refuse_shipping(&[-1, 10060001]);
    let (busy, _) = delivered(&app, "busy").await;
    let reported = eventually(Duration::from_secs(15), || async {
        reported_at(&app, &busy).await.is_string()
    })
    .await;
    assert!(reported, "retried until taken");
    assert_eq!(app.wechat.shipping_reports().len(), 1);

    // Already delivered at WeChat (a repeat after a crash): done.
    app.wechat.refuse_shipping(&[10060002]);
    let (known, _) = delivered(&app, "known").await;
    let reported = eventually(Duration::from_secs(10), || async {
        reported_at(&app, &known).await.is_string()
    })
    .await;
    assert!(reported, "10060002 counts as reported");

    // Not in a state WeChat can ship: given up, counted, never marked.
    let before = app
        .metric("lastmile_shipping_reports_total{outcome=\"given_up\"}")
        .await;
    app.wechat.refuse_shipping(&[10060004]);
    let (refused, _) = delivered(&app, "refused").await;
    let given_up = eventually(Duration::from_secs(10), || async {
        app.metric("lastmile_shipping_reports_total{outcome=\"given_up\"}")
            .await
            > before
    })
    .await;
    assert!(given_up, "the refusal is counted for alerting");
    assert_eq!(reported_at(&app, &refused).await, serde_json::Value::Null);
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.wechat.shipping_reports().len(), 1, "never asked again");
}
