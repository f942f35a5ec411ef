//! Give-back: a courier returns an order they have not picked up; it goes
//! back to dispatch and never to them again, within a daily limit, in the
//! history with the reason — also when the give-back races a dispatch
//! round.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app_with};

const TOKEN: &str = "operator-secret-token";

#[actix_web::test]
async fn a_courier_gives_an_order_back_before_pickup_and_never_gets_it_again() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
    })
    .await;
    let (customer, customer_id) = app.login("release-customer").await;
    let id = app.paid_order(&customer, &customer_id).await;
    let (courier, courier_id) = app.online_courier("release-a", "dorm-1").await;
    let (other, _) = app.online_courier("release-b", "dorm-1").await;
    let (plain, _) = app.login("release-nobody").await;
    let grab = format!("/api/v1/orders/{id}/grab");
    let release = format!("/api/v1/orders/{id}/release");
    assert_eq!(
        app.post_as(&courier, &grab, None).await.status,
        StatusCode::OK
    );

    let why = Some(json!({"reason": "车胎爆了"}));
    assert_eq!(
        app.post_as(&plain, &release, why.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&other, &release, why.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    for bad in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": "x".repeat(201)}),
    ] {
        let reply = app.post_as(&courier, &release, Some(bad)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation"),
            "{}",
            reply.body
        );
    }
    let given = app.post_as(&courier, &release, why.clone()).await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.body);
    assert_eq!(
        (given.body["status"].as_str(), given.body["courier"].clone()),
        (Some("paid"), Value::Null)
    );

    // Not theirs again: neither by grab nor in their open list.
    let again = app.post_as(&courier, &grab, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let open = app
        .get_as(&courier, "/api/v1/orders/open?near=dorm-1")
        .await;
    assert!(!open.body.to_string().contains(&id), "{}", open.body);
    let theirs = app.get_as(&other, "/api/v1/orders/open?near=dorm-1").await;
    assert!(theirs.body.to_string().contains(&id), "{}", theirs.body);

    // Another courier takes it; once picked up it cannot be given back.
    assert_eq!(
        app.post_as(&other, &grab, None).await.status,
        StatusCode::OK
    );
    let pickup = app
        .post_as(&other, &format!("/api/v1/orders/{id}/pickup"), None)
        .await;
    assert_eq!(pickup.status, StatusCode::OK);
    let late = app.post_as(&other, &release, why).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);

    // The history says who gave it back and why.
    let found = app
        .send(
            TestRequest::get()
                .uri(&format!("/api/v1/admin/orders?q={id}"))
                .insert_header(("Authorization", format!("Bearer {TOKEN}"))),
        )
        .await;
    let history = found.body["orders"][0]["history"]
        .as_array()
        .expect("history")
        .clone();
    let gave_back = history
        .iter()
        .find(|h| h["event"] == "unassign")
        .expect("an unassign in the history");
    assert_eq!(
        (
            gave_back["by"].as_str(),
            gave_back["by_openid"].as_str(),
            gave_back["note"].as_str()
        ),
        (Some("courier"), Some(courier_id.as_str()), Some("车胎爆了"))
    );
}

#[actix_web::test]
async fn give_backs_stop_at_the_daily_limit() {
    let app = spawn_app_with(|s| {
        s.dispatch.auto = false;
        s.couriers.releases_per_day = 2;
    })
    .await;
    let (customer, customer_id) = app.login("limit-customer").await;
    let (courier, _) = app.online_courier("limit-courier", "dorm-1").await;
    let why = Some(json!({"reason": "有课"}));
    for n in 0..3 {
        let id = app.paid_order(&customer, &customer_id).await;
        let grabbed = app
            .post_as(&courier, &format!("/api/v1/orders/{id}/grab"), None)
            .await;
        assert_eq!(grabbed.status, StatusCode::OK);
        let reply = app
            .post_as(
                &courier,
                &format!("/api/v1/orders/{id}/release"),
                why.clone(),
            )
            .await;
        if n < 2 {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        } else {
            assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
            assert!(reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains('2')));
            // The refused give-back left the order with them.
            assert_eq!(app.status_of(&customer, &id).await, "assigned");
        }
    }
}

#[actix_web::test]
async fn a_give_back_racing_a_dispatch_round_never_returns_the_order_to_its_courier() {
    let app = spawn_app_with(|s| {
        s.dispatch.tick = Duration::from_millis(50);
        s.couriers.releases_per_day = 10;
    })
    .await;
    let (customer, customer_id) = app.login("race-release-customer").await;
    let (first, first_id) = app.online_courier("race-release-a", "cainiao-north").await;
    let id = app.paid_order(&customer, &customer_id).await;
    let assigned = eventually(Duration::from_secs(10), || async {
        let order = app.get_order(&customer, &id).await;
        order.body["courier"] == first_id.as_str()
    })
    .await;
    assert!(assigned, "the only courier got the order");
    // The give-back and a second courier coming online (a round at once)
    // race; whichever lands first, the order goes to the second courier.
    let uri = format!("/api/v1/orders/{id}/release");
    let release = app.post_as(&first, &uri, Some(json!({"reason": "临时有事"})));
    let second = app.online_courier("race-release-b", "dorm-3");
    let (released, (_, second_id)) = futures::join!(release, second);
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    let moved = eventually(Duration::from_secs(10), || async {
        app.get_order(&customer, &id).await.body["courier"] == second_id.as_str()
    })
    .await;
    assert!(moved, "the order did not go to the other courier");
    // With only the first courier left, it would rather wait than go back.
    let order = app.get_order(&customer, &id).await;
    assert_ne!(order.body["courier"], first_id.as_str());
}
