//! Money in process: prices and tips.

use actix_web::http::StatusCode;
use actix_web::test;
use lastmile_actors::wechat::{SignType, WeChat};
use serde_json::{json, Value};

use crate::helpers::*;

/// The service's answer to a pay notify of `total` fen for `id`.
async fn notify_total<S, B>(app: &TestApp<S>, id: &str, openid: &str, total: u32) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let signer = app.wechat.pay().signer().clone();
    let xml = signed_xml(
        notify_fields(&signer.appid, &signer.mch_id, id, openid, total),
        signer.api_key.expose(),
        SignType::Md5,
    );
    app.post_xml("/api/v1/wechat/pay/notify", xml).await.1
}

#[actix_web::test]
async fn the_price_list_suggests_a_fee_from_kind_and_route_without_sign_in() {
    let app = spawn_app().await;
    // cainiao-north (520, 1250) → dorm-3 (420, 1260): about 100 m.
    let near = app
        .send(
            test::TestRequest::get()
                .uri("/api/v1/price?kind=express&pickup=cainiao-north&dropoff=dorm-3"),
        )
        .await;
    assert_eq!(near.status, StatusCode::OK, "{}", near.body);
    assert_eq!(
        near.body,
        json!({"fee_fen": 200, "min_fen": 1, "breakdown": [{"item": "base", "fen": 200}]})
    );
    // south-gate (600, 0) → cainiao-north: about 1 253 m, one started km more.
    let far = app
        .send(
            test::TestRequest::get().uri(
                "/api/v1/price?kind=takeout&pickup=south-gate&dropoff=cainiao-north&campus=main",
            ),
        )
        .await;
    assert_eq!(far.status, StatusCode::OK, "{}", far.body);
    assert_eq!(far.body["fee_fen"], 400);
    assert_eq!(
        far.body["breakdown"],
        json!([{"item": "base", "fen": 300}, {"item": "distance", "fen": 100}])
    );
    for (query, field) in [
        ("pickup=south-gate&dropoff=dorm-3", "kind"),
        ("kind=bike&pickup=south-gate&dropoff=dorm-3", "kind"),
        ("kind=express&pickup=moon&dropoff=dorm-3", "pickup"),
        ("kind=express&pickup=south-gate", "dropoff"),
        (
            "kind=express&pickup=south-gate&dropoff=dorm-3&campus=other",
            "campus",
        ),
    ] {
        let bad = app
            .send(test::TestRequest::get().uri(&format!("/api/v1/price?{query}")))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(bad.code(), "validation", "{query}");
        let message = bad.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{query}: {message}");
    }
}

#[actix_web::test]
async fn a_tip_is_paid_with_the_fee_and_refunded_with_it() {
    let app = spawn_app().await;
    let (token, openid) = app.login("tipper").await;
    let mut body = order_body();
    body["tip_fen"] = json!(150);
    let created = app.create_order(&token, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        (
            created.body["fee_fen"].clone(),
            created.body["tip_fen"].clone()
        ),
        (json!(300), json!(150))
    );
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(app.pay_order(&token, &id).await.status, StatusCode::OK);
    let sim = app.wechat.pay_simulator();
    sim.suppress_next_notifies(1);
    sim.pay(&id).await.expect("paid at the sandbox");

    // WeChat Pay charged fee + tip: a notify of the fee alone is refused.
    let fee_only = notify_total(&app, &id, &openid, 300).await;
    assert!(fee_only.contains("FAIL"), "{fee_only}");
    assert_eq!(app.status_of(&token, &id).await, "awaiting_payment");
    let total = notify_total(&app, &id, &openid, 450).await;
    assert!(
        total.contains("SUCCESS") && !total.contains("FAIL"),
        "{total}"
    );
    assert_eq!(app.get_order(&token, &id).await.body["tip_fen"], 150);

    // The sandbox refuses a refund of anything but the whole 450.
    assert_eq!(
        app.cancel_order(&token, &id).await.body["status"],
        "refunding"
    );
    let refunded = eventually(std::time::Duration::from_secs(10), || async {
        !sim.refunds().is_empty()
    })
    .await;
    assert!(refunded, "the refund of fee and tip must reach WeChat Pay");

    // An order without a tip shows 0.
    let plain = app.create_order(&token, &order_body()).await;
    assert_eq!(plain.body["tip_fen"], 0);
}

#[actix_web::test]
async fn tips_out_of_range_and_fees_below_the_campus_floor_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = dir.path().join("campus.toml");
    let campus = std::fs::read_to_string("config/campus.toml").expect("campus map");
    assert!(
        campus.contains("\nmin_fen = 1\n"),
        "the shipped map states its floor"
    );
    std::fs::write(&map, campus.replace("\nmin_fen = 1\n", "\nmin_fen = 200\n"))
        .expect("write map");
    let app = spawn_app_with(|s| s.campus.map = map.clone()).await;
    let (token, _) = app.login("floor").await;
    let cases: [(Value, &str); 4] = [
        (json!({"tip_fen": 10_001}), "tip_fen"),
        (json!({"tip_fen": -1}), "tip_fen"),
        (json!({"tip_fen": 1.5}), "tip_fen"),
        (json!({"fee_fen": 199}), "at least 200"),
    ];
    for (change, named) in cases {
        let mut body = order_body();
        for (k, v) in change.as_object().expect("object") {
            body[k] = v.clone();
        }
        let refused = app.create_order(&token, &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{change}");
        let message = refused.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(named), "{change}: {message}");
    }
    assert_eq!(
        app.count_orders(&token).await,
        0,
        "a refused order changes nothing"
    );
    let mut at_floor = order_body();
    at_floor["fee_fen"] = json!(200);
    at_floor["tip_fen"] = json!(10_000);
    assert_eq!(
        app.create_order(&token, &at_floor).await.status,
        StatusCode::CREATED
    );
    let price = app
        .send(
            test::TestRequest::get()
                .uri("/api/v1/price?kind=express&pickup=cainiao-north&dropoff=dorm-3"),
        )
        .await;
    assert_eq!(price.body["min_fen"], 200);
}
